package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/proxy"

	"github.com/rndis-netd/rndis-netd/usb/sim"
)

// unanswered is an address the simulated phone routes nowhere: a dial to
// it is never answered.
var unanswered = netip.MustParseAddrPort("10.9.9.9:80")

// socksConnect sends a SOCKS5 CONNECT to to and reads the method
// selection; the reply to the CONNECT is left to the caller.
func socksConnect(t *testing.T, socks string, to netip.AddrPort) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", socks)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	ip, port := to.Addr().As4(), to.Port()
	fmt.Fprintf(c, "\x05\x01\x00\x05\x01\x00\x01%s%c%c", ip[:], byte(port>>8), byte(port))
	if _, err := io.ReadFull(c, make([]byte, 2)); err != nil {
		t.Fatal(err)
	}
	return c
}

// listener returns the /status entry of the listener on listen.
func (p *daemonProc) listener(t *testing.T, listen string) listenStatus {
	t.Helper()
	var doc statusDoc
	if err := json.Unmarshal([]byte(p.get(t, "/status")), &doc); err != nil {
		t.Fatal(err)
	}
	for _, l := range doc.Listeners {
		if l.Listen == listen {
			return l
		}
	}
	t.Fatalf("no listener %s in /status", listen)
	return listenStatus{}
}

// A client that gives up on a dial cancels it; SIGTERM ends dials in
// progress and relays, releases the lease, halts the device and exits 0,
// well within systemd's stop timeout.
func TestSIGTERMWithDialsInProgress(t *testing.T) {
	socks := freePort(t, "tcp")
	d := runBinary(t, fmt.Sprintf("device: {select: sim}\nsocks5: {listen: %q}\n", socks))
	active := func() int64 { return d.listener(t, socks).Active }

	gaveUp := socksConnect(t, socks, unanswered)
	d.waitFor(t, "the dial to be served", func() bool { return active() == 1 })
	gaveUp.Close()
	d.waitFor(t, "the abandoned dial to end", func() bool { return active() == 0 })

	socksConnect(t, socks, unanswered) // still waiting at SIGTERM
	dialer, _ := proxy.SOCKS5("tcp", socks, nil, proxy.Direct)
	relayed, err := dialer.Dial("tcp", netip.AddrPortFrom(sim.Qualcomm().PhoneAddr, sim.EchoPort).String())
	if err != nil {
		t.Fatal(err)
	}
	defer relayed.Close()
	d.waitFor(t, "a dial and a relay", func() bool { return active() == 2 })

	start := time.Now()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		d.done <- err
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("still running 5 s after SIGTERM")
	}
	t.Logf("exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(d.out.String(), "halts_from_host=1") {
		t.Errorf("the phone did not record one HALT:\n%s", d.out)
	}
}
