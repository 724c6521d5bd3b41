package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/proxy"

	"github.com/rndis-netd/rndis-netd/usb/sim"
)

// TestMemory measures the daemon's resident memory idle and with 1,000
// concurrent proxied TCP connections; `make mem` runs it (RNDIS_NETD_MEM=1).
func TestMemory(t *testing.T) {
	if os.Getenv("RNDIS_NETD_MEM") == "" {
		t.Skip("set RNDIS_NETD_MEM=1 (make mem) to measure memory")
	}
	socks := freePort(t, "tcp")
	d := runBinary(t, fmt.Sprintf("device: {select: sim}\nsocks5: {listen: %q}\nlog: {level: warn}\n", socks))
	time.Sleep(2 * time.Second)
	idle := rss(t, d.cmd.Process.Pid)

	dialer, err := proxy.SOCKS5("tcp", socks, nil, proxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	echo := fmt.Sprintf("%v:%d", sim.Qualcomm().PhoneAddr, sim.EchoPort)
	const n = 1000
	var conns []io.ReadWriteCloser
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	buf := make([]byte, 5)
	for i := range n {
		c, err := dialer.Dial("tcp", echo)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		if _, err := c.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
	}
	busy := rss(t, d.cmd.Process.Pid)
	active := d.metric(t, fmt.Sprintf(`rndis_netd_proxy_connections_active{kind="socks5",listen=%q}`, socks))
	t.Logf("RSS idle %.1f MiB; with %d proxied TCP connections open (%s active) %.1f MiB", idle, n, active, busy)
	t.Logf("with them: %s goroutines, heap in use %s B, stacks %s B", d.metric(t, "go_goroutines"),
		d.metric(t, "go_memstats_heap_inuse_bytes"), d.metric(t, "go_memstats_stack_inuse_bytes"))
	if idle > 30 {
		t.Errorf("idle RSS %.1f MiB exceeds 30 MiB", idle)
	}
	if busy > 100 {
		t.Errorf("RSS with %d connections %.1f MiB exceeds 100 MiB", n, busy)
	}
}

// rss returns the resident set of a process in MiB.
func rss(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatal(err)
			}
			return float64(kb) / 1024
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
