package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rndis-netd/rndis-netd/usb/sim"
)

// Started before its device, the daemon serves: /healthz 503, /status and
// `rndis-netd status` say it waits, the proxies answer "network
// unreachable"; it says once that it waits and what it saw; when the
// device appears the tether comes up.
func TestDaemonStartedBeforeItsDevice(t *testing.T) {
	socks, httpProxy := freePort(t, "tcp"), freePort(t, "tcp")
	d := startBinary(t, fmt.Sprintf("device: {select: \"sim:unplugged\"}\nsocks5: {listen: %q}\nhttp_proxy: {listen: %q}\n", socks, httpProxy))
	d.waitFor(t, "the admin endpoint", func() bool { return d.healthz() != 0 })
	if code := d.healthz(); code != http.StatusServiceUnavailable {
		t.Errorf("healthz without the device: %d, want 503", code)
	}
	var doc statusDoc
	if err := json.Unmarshal([]byte(d.get(t, "/status")), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Link.State != stateWaiting || doc.Device != nil || !strings.Contains(doc.Link.Error, "unplugged") {
		t.Errorf("/status without the device: %+v", doc.Link)
	}
	if out, _ := runCommand(t, "status", "--config", d.config); !strings.Contains(out, "waiting for the device since") ||
		!strings.Contains(out, "device     none yet") {
		t.Errorf("status without the device:\n%s", out)
	}

	phone := netip.AddrPortFrom(sim.Qualcomm().PhoneAddr, sim.HTTPPort)
	c := socksConnect(t, socks, phone)
	reply := make([]byte, 10)
	if _, err := io.ReadFull(c, reply); err != nil || reply[1] != 3 {
		t.Errorf("SOCKS5 reply %x (%v), want 3: network unreachable", reply, err)
	}
	hc, err := net.Dial("tcp", httpProxy)
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	hc.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(hc, "CONNECT %v HTTP/1.1\r\nHost: %v\r\n\r\n", phone, phone)
	if resp, err := http.ReadResponse(bufio.NewReader(hc), nil); err != nil || resp.StatusCode != http.StatusBadGateway {
		t.Errorf("HTTP CONNECT: %v %v, want 502", resp, err)
	}

	// The link looks for the device again after 0.1, 0.3, 0.7 s...: let it
	// look a few times before the device appears.
	time.Sleep(time.Second)
	d.post(t, "/sim/replug")
	d.waitFor(t, "healthy", func() bool { return d.healthz() == http.StatusOK })
	if got := httpGet(t, socksClient(t, socks, nil), "http://"+sim.PhoneName+"/"); got != sim.HomePage {
		t.Errorf("through SOCKS5 once the device is there: %q", got)
	}
	// Counted once the link has looked for the device again and found it.
	if n := strings.Count(d.out.String(), "waiting for the device"); n != 1 || !strings.Contains(d.out.String(), "is unplugged") {
		t.Errorf("the log says %d times that it waits, want once with what it saw:\n%s", n, d.out)
	}
}

// With device.wait: false the daemon exits 1 when its device is not there,
// as probe does whatever the configuration says.
func TestNoWaitingForTheDevice(t *testing.T) {
	path := t.TempDir() + "/rndis-netd.yaml"
	writeFile(t, path, fmt.Sprintf("device: {select: \"sim:unplugged\", wait: false}\nsocks5: {listen: %q}\nadmin: {listen: %q}\n",
		freePort(t, "tcp"), freePort(t, "tcp")))
	for _, args := range [][]string{{"run", "--config", path}, {"probe", "--device.select", "sim:unplugged"}} {
		if out, code := runCommand(t, args...); code != 1 || !strings.Contains(out, "unplugged") {
			t.Errorf("%v: exit %d, want 1 naming the missing device:\n%s", args, code, out)
		}
	}
}

// The admin endpoint starts after the listeners: when /healthz first says
// 200, every listener accepts connections; and a listener that cannot
// start stops the daemon before the admin endpoint serves.
func TestHealthyMeansListening(t *testing.T) {
	socks, httpProxy, fwd := freePort(t, "tcp"), freePort(t, "tcp"), freePort(t, "tcp")
	runBinary(t, fmt.Sprintf("device: {select: sim}\nsocks5: {listen: %q}\nhttp_proxy: {listen: %q}\nforwards:\n  - {proto: tcp, listen: %q, connect: \"192.168.42.129:80\"}\n",
		socks, httpProxy, fwd))
	for _, addr := range []string{socks, httpProxy, fwd} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Errorf("healthy, but %s: %v", addr, err)
			continue
		}
		c.Close()
	}

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	path := t.TempDir() + "/rndis-netd.yaml"
	writeFile(t, path, fmt.Sprintf("device: {select: sim}\nsocks5: {listen: %q}\nadmin: {listen: %q}\n", taken.Addr(), freePort(t, "tcp")))
	if out, code := runCommand(t, "run", "--config", path); code != 1 || !strings.Contains(out, "socks5 listener "+taken.Addr().String()) {
		t.Errorf("with the SOCKS5 port taken: exit %d, want 1 naming the listener:\n%s", code, out)
	}
}
