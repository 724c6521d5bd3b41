package link

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rndis-netd/rndis-netd/usb"
	"github.com/rndis-netd/rndis-netd/usb/sim"
)

// settledHeap returns the live heap once the connections just closed are
// gone: the least of several samples, past TCP's TIME_WAIT.
func settledHeap() uint64 {
	least := liveHeap()
	for range 5 {
		time.Sleep(20 * time.Millisecond)
		least = min(least, liveHeap())
	}
	return least
}

// peakGoroutines samples the number of goroutines until stop is called,
// which returns the largest number seen.
func peakGoroutines() (stop func() int) {
	var peak atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if n := int64(runtime.NumGoroutine()); n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() int {
		close(done)
		wg.Wait()
		return int(peak.Load()) - 1 // not the sampler
	}
}

// liveHeap returns the bytes of live heap after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC() // the second frees what the first only unlinked (sync.Pool)
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// A hostile device that sends garbage on every pipe while a TCP stream
// flows: the link counts every fault under its cause, drops it, loses no
// byte of the stream, and stays up. Then a device that damages its genuine
// replies (absurd limits, error statuses, lost responses) takes the link
// down; once it behaves again the link comes back by itself.
func TestHostileDevice(t *testing.T) {
	faults := uint64(10_000)
	if soak() {
		faults = 100_000
	}
	var hostile *sim.Hostile
	// Timeouts a starved CPU cannot trip: the first phase must see no link change.
	opts := fastOptions()
	opts.KeepAliveInterval, opts.ControlTimeout = time.Second, time.Second
	tb := newTestbedVia(t, sim.Qualcomm(), opts, func(p *sim.Phone) usb.Opener {
		hostile = sim.NewHostile(p, 1)
		return hostile
	})
	c := tb.dial(t, sim.EchoPort)
	warm := startEcho(c, 1)
	warm.waitProgress(t, 1<<20, 30*time.Second, tb.state)
	heapBefore, goroutinesBefore := liveHeap(), runtime.NumGoroutine()
	peak := peakGoroutines()

	hostile.Inject(sim.AdditiveFaults...)
	start := time.Now()
	for hostile.Total() < faults {
		warm.waitProgress(t, 64<<10, 60*time.Second, tb.state) // the stream moves all the while
		if ev := len(tb.events); ev > 0 {
			t.Fatalf("the link changed under additive faults: %v; stats %+v", <-tb.events, tb.link.Stats())
		}
	}
	hostile.Inject()
	elapsed := time.Since(start)
	streamed := warm.finish(t, 30*time.Second)
	peakN := peak()
	heapAfter := liveHeap()

	inj, s := hostile.Injected(), tb.link.Stats()
	want := map[string]uint64{
		"malformed control message": inj[sim.ControlGarbage] + inj[sim.ControlBadLength] + inj[sim.ControlBadOffset] + inj[sim.ControlBadType],
		"unmatched completion":      inj[sim.ControlOrphan] + inj[sim.ResetOrphan],
		"malformed notification":    inj[sim.NotifyGarbage],
		"malformed transfer":        inj[sim.BulkGarbage] + inj[sim.BulkOverlap] + inj[sim.BulkOverflow] + inj[sim.BulkPastEnd] + inj[sim.BulkWrongType],
		"empty transfer":            inj[sim.BulkEmpty],
		"oversize frame":            inj[sim.BulkOversize],
		"runt frame":                inj[sim.BulkRunt],
		"control timeout":           0,
		"clamped limits":            0,
		"failed initialization":     0,
	}
	for cause, n := range s.Faults() {
		if n != want[cause] {
			t.Errorf("%s: the link counted %d, the device injected %d", cause, n, want[cause])
		}
	}
	if s.Indications != inj[sim.IndicationFlood] {
		t.Errorf("indications: the link counted %d, the device sent %d", s.Indications, inj[sim.IndicationFlood])
	}
	for _, f := range sim.AdditiveFaults {
		if inj[f] == 0 {
			t.Errorf("no %s injected", f)
		}
	}
	select {
	case ev := <-tb.events:
		t.Errorf("garbage beside genuine traffic changed the link: %v", ev)
	default:
	}
	if bound := goroutinesBefore + 32; peakN > bound {
		t.Errorf("goroutines peaked at %d during the faults (before: %d, bound %d)", peakN, goroutinesBefore, bound)
	}
	if heapAfter > 2*heapBefore {
		t.Errorf("live heap grew from %d to %d bytes", heapBefore, heapAfter)
	}
	t.Logf("%d faults in %v with %d bytes echoed intact; goroutines %d before, peak %d; live heap %d → %d bytes",
		hostile.Total(), elapsed.Round(time.Millisecond), streamed, goroutinesBefore, peakN, heapBefore, heapAfter)
	t.Logf("injected: %v", inj)

	// Damaged genuine replies: the phone halts whenever the link is up, so
	// that the host initializes it again and again.
	hostile.Inject(sim.DestructiveFaults...)
	deadline := time.Now().Add(60 * time.Second)
	for s = tb.link.Stats(); s.InitFailures == 0 || s.LimitsClamped == 0 || s.ControlTimeouts == 0; s = tb.link.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("damaged replies not all seen within 60 s: %+v", s.Faults())
		}
		if tb.link.Up() {
			tb.phone.Halt()
		}
		time.Sleep(50 * time.Millisecond)
	}
	hostile.Inject()
	for !tb.link.Up() {
		if time.Now().After(deadline) {
			t.Fatal("the link did not come back after the device behaved again")
		}
		time.Sleep(10 * time.Millisecond)
	}
	after := startEcho(tb.dial(t, sim.EchoPort), 2)
	after.waitProgress(t, 1<<20, 30*time.Second, tb.state)
	after.finish(t, 30*time.Second)
	t.Logf("damaged replies: %v; link downs %d, resets %d, re-inits %d, faults %v", hostile.Injected(),
		s.LinkDowns, s.Resets, s.Reinits, s.Faults())
}
