package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/rndis-netd/rndis-netd/config"
)

// inProcess runs the daemon of yaml in this process, for tests that reach
// into it (the simulated phone, the netstack); it stops with the test.
func inProcess(t *testing.T, yaml string) *daemon {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rndis-netd.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	cmd := &cobra.Command{}
	cmd.SetErr(&syncBuffer{})
	d := newDaemon(cmd, path, cfg)
	if err := d.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := d.net.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	return d
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// From the phone's side of the tether, the host's address answers on the
// ports of the exposes only: not on the proxies', forwards' or admin
// endpoint's ports, nor on any other (the netstack forwards nothing and
// listens on nothing else). UDP 68, the DHCP client's, is bound too and
// answers nothing.
func TestTetherSideSeesOnlyExposes(t *testing.T) {
	local, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	localUDP, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer localUDP.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := localUDP.ReadFrom(buf)
			if err != nil {
				return
			}
			localUDP.WriteTo(buf[:n], from)
		}
	}()
	socks, httpProxy, admin, fwdTCP, fwdUDP := freePort(t, "tcp"), freePort(t, "tcp"), freePort(t, "tcp"), freePort(t, "tcp"), freePort(t, "udp")
	d := inProcess(t, fmt.Sprintf(`device: {select: sim}
log: {level: error}
socks5: {listen: %q}
http_proxy: {listen: %q}
admin: {listen: %q}
forwards:
  - {proto: tcp, listen: %q, connect: "192.168.42.129:80"}
  - {proto: udp, listen: %q, connect: "192.168.42.129:53"}
exposes:
  - {proto: tcp, listen: ":8080", connect: %q}
  - {proto: udp, listen: ":5353", connect: %q}
`, socks, httpProxy, admin, fwdTCP, fwdUDP, local.Addr(), localUDP.LocalAddr()))
	lease, ok := d.net.Lease()
	if !ok {
		t.Fatal("no lease")
	}
	host := lease.Addr.Addr()
	phone := d.device.phone

	// Every port the daemon uses, the first 1024, and in soak all of them.
	ports := map[int]bool{68: true, 8080: true, 5353: true}
	for _, a := range []string{socks, httpProxy, admin, fwdTCP, fwdUDP} {
		ports[portOf(t, a)] = true
	}
	last := 1024
	if os.Getenv("RNDIS_NETD_SOAK") != "" {
		last = 65535
	}
	for p := 1; p <= last; p++ {
		ports[p] = true
	}
	var list []int
	for p := range ports {
		list = append(list, p)
	}
	slices.Sort(list)

	openTCP := scan(list, 32, func(port int) (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := phone.DialTCP(ctx, netip.AddrPortFrom(host, uint16(port)))
		if err == nil {
			c.Close()
			return true, nil
		}
		if strings.Contains(err.Error(), "connection was refused") {
			return false, nil
		}
		return false, err
	})
	if want := []int{8080}; !slices.Equal(openTCP.open, want) || len(openTCP.errs) > 0 {
		t.Errorf("TCP ports open from the tether: %v (errors %v), want %v", openTCP.open, openTCP.errs, want)
	}

	// UDP: a closed port answers ICMP port unreachable, which the netstack
	// sends at most 1,000 times a second: two workers probe at most every
	// 2 ms each, and a probe that hears nothing is tried again later.
	silent := map[int]bool{}
	var silentMu sync.Mutex
	openUDP := scan(list, 2, func(port int) (bool, error) {
		for try := 0; try < 5; try++ {
			time.Sleep(2 * time.Millisecond)
			answered, refused, err := phone.ProbeUDP(netip.AddrPortFrom(host, uint16(port)), 200*time.Millisecond)
			if err != nil || answered || refused {
				return answered, err
			}
		}
		silentMu.Lock()
		silent[port] = true
		silentMu.Unlock()
		return false, nil
	})
	if want := []int{5353}; !slices.Equal(openUDP.open, want) || len(openUDP.errs) > 0 {
		t.Errorf("UDP ports answering from the tether: %v (errors %v), want %v", openUDP.open, openUDP.errs, want)
	}
	if len(silent) != 1 || !silent[68] {
		t.Errorf("UDP ports neither answering nor refusing: %v, want only 68 (the DHCP client)", silent)
	}
	t.Logf("scanned %d TCP and UDP ports of %v from the phone: TCP open %v, UDP answering %v, silent %v",
		len(list), host, openTCP.open, openUDP.open, silent)
}

type scanResult struct {
	open []int
	errs map[int]error // neither open nor refused
}

// scan probes ports with n workers.
func scan(ports []int, n int, probe func(int) (bool, error)) scanResult {
	res := scanResult{errs: map[int]error{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan int)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for port := range next {
				open, err := probe(port)
				mu.Lock()
				switch {
				case err != nil:
					res.errs[port] = err
				case open:
					res.open = append(res.open, port)
				}
				mu.Unlock()
			}
		}()
	}
	for _, p := range ports {
		next <- p
	}
	close(next)
	wg.Wait()
	slices.Sort(res.open)
	return res
}
