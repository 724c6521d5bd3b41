package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/proxy"

	"github.com/rndis-netd/rndis-netd/usb/sim"
)

// echoThroughSOCKS5 sends size pseudo-random bytes to the phone's echo
// server through the proxy while reading them back, all before deadline;
// progress counts the bytes back.
func echoThroughSOCKS5(dialer proxy.Dialer, seed uint64, size int, deadline time.Time, progress *atomic.Int64) error {
	c, err := dialer.Dial("tcp", fmt.Sprintf("%v:%d", sim.Qualcomm().PhoneAddr, sim.EchoPort))
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(deadline)
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(data)
	written := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		written <- err
	}()
	h := sha256.New()
	_, err = io.CopyN(io.MultiWriter(h, counter{progress}), c, int64(size))
	if werr := <-written; werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		return err
	}
	if sum := sha256.Sum256(data); !bytes.Equal(h.Sum(nil), sum[:]) {
		return fmt.Errorf("client %d: the echo's SHA-256 differs", seed)
	}
	return nil
}

type counter struct{ n *atomic.Int64 }

func (c counter) Write(p []byte) (int, error) { c.n.Add(int64(len(p))); return len(p), nil }

// wave runs n clients at once and returns their errors, by client.
func wave(dialer proxy.Dialer, n, size int, within time.Duration, progress *atomic.Int64) (map[int]error, time.Duration) {
	start := time.Now()
	deadline := start.Add(within)
	errs := map[int]error{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := echoThroughSOCKS5(dialer, uint64(i), size, deadline, progress); err != nil {
				mu.Lock()
				errs[i] = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs, time.Since(start)
}

// Many SOCKS5 clients at once move their bytes intact through the
// simulated phone; when the phone halts in the middle of a second wave,
// every client completes or fails by its deadline, and the daemon serves
// new clients once the link is up again.
func TestDaemonUnderLoad(t *testing.T) {
	clients, size := 100, 256<<10
	if os.Getenv("RNDIS_NETD_SOAK") != "" {
		clients, size = 1000, 1<<20
	}
	socks := freePort(t, "tcp")
	d := runBinary(t, fmt.Sprintf("device: {select: sim}\nlog: {level: warn}\nsocks5: {listen: %q}\n", socks))
	dialer, err := proxy.SOCKS5("tcp", socks, nil, proxy.Direct)
	if err != nil {
		t.Fatal(err)
	}

	var progress atomic.Int64
	errs, took := wave(dialer, clients, size, 5*time.Minute, &progress)
	for i, err := range errs {
		t.Errorf("client %d: %v", i, err)
	}
	mb := float64(clients*size) / (1 << 20)
	t.Logf("%d clients × %d KiB echoed intact in %v (%.0f MiB/s each way)", clients, size>>10, took.Round(time.Millisecond), mb/took.Seconds())

	// The second wave: the phone halts once a quarter of the bytes are back.
	progress.Store(0)
	halted := make(chan struct{})
	go func() {
		defer close(halted)
		for progress.Load() < int64(clients*size/4) {
			time.Sleep(time.Millisecond)
		}
		resp, err := http.Post("http://"+d.admin+"/sim/halt", "text/plain", nil)
		if err == nil {
			resp.Body.Close()
		}
	}()
	const within = 60 * time.Second
	errs, took = wave(dialer, clients, size, within, &progress)
	<-halted
	if took > within+5*time.Second {
		t.Errorf("the wave across the halt took %v, past its %v deadline", took, within)
	}
	d.waitFor(t, "the link up after the halt", func() bool { return d.metric(t, "rndis_netd_link_up") == "1" })
	if v := d.metric(t, `rndis_netd_link_events_total{cause="device halt",state="down"}`); v != "1" {
		t.Errorf("device halts seen: %q, want 1", v)
	}
	t.Logf("across a halt: %d of %d clients completed, %d failed by their deadline, in %v", clients-len(errs), clients, len(errs), took.Round(time.Millisecond))

	// The daemon serves new clients.
	if err := echoThroughSOCKS5(dialer, 99999, 64<<10, time.Now().Add(30*time.Second), &progress); err != nil {
		t.Errorf("a new client after the halt: %v", err)
	}
	if got := httpGet(t, socksClient(t, socks, nil), "http://"+sim.PhoneName+"/"); got != sim.HomePage {
		t.Errorf("a page after the halt: %q", got)
	}
}
