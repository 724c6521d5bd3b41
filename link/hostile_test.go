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
// replies (RNDIS: absurd limits, error statuses, lost responses; NCM and
// ECM: refused requests, garbage parameters and MAC) takes the link down;
// once it behaves again the link comes back by itself. For each protocol.
func TestHostileDevice(t *testing.T) {
	for _, cfg := range []sim.Config{sim.Qualcomm(), sim.Pixel(), sim.Dongle()} {
		t.Run(cfg.Name, func(t *testing.T) { hostileDevice(t, cfg) })
	}
}

// faultsCounted says, for each cause the link counts, the faults it must
// count there: all of a protocol's additive faults, each under one cause.
func faultsCounted(p usb.Protocol, inj map[sim.Fault]uint64) map[string]uint64 {
	sum := func(faults ...sim.Fault) (n uint64) {
		for _, f := range faults {
			n += inj[f]
		}
		return n
	}
	want := map[string]uint64{"malformed notification": sum(sim.NotifyGarbage, sim.SpeedWithoutData)}
	switch p {
	case usb.ProtocolRNDIS:
		want["malformed control message"] = sum(sim.ControlGarbage, sim.ControlBadLength, sim.ControlBadOffset, sim.ControlBadType)
		want["unmatched completion"] = sum(sim.ControlOrphan, sim.ResetOrphan)
		want["malformed transfer"] = sum(sim.BulkGarbage, sim.BulkOverlap, sim.BulkOverflow, sim.BulkPastEnd, sim.BulkWrongType)
		want["empty transfer"] = sum(sim.BulkEmpty)
		want["oversize frame"] = sum(sim.BulkOversize)
		want["runt frame"] = sum(sim.BulkRunt)
	case usb.ProtocolNCM:
		want["malformed transfer"] = sum(sim.BulkGarbage, sim.NTBBadNTHSignature, sim.NTBBadHeaderLength, sim.NTBBadBlockLength,
			sim.NTBBadNDPSignature, sim.NTBBadNDPLength, sim.NTBNDPOutside, sim.NTBNDPOverlap, sim.NTBNDPLoop,
			sim.NTBDatagramOutside, sim.NTBDatagramOverlap, sim.NTBRuntDatagram, sim.NTBTooLong)
		want["empty transfer"] = sum(sim.BulkEmpty, sim.NTBZeroLengthDatagram)
	case usb.ProtocolECM:
		want["empty transfer"] = sum(sim.BulkEmpty)
		want["oversize frame"] = sum(sim.BulkOversize)
		want["runt frame"] = sum(sim.BulkRunt)
	}
	return want
}

func hostileDevice(t *testing.T, cfg sim.Config) {
	faults := uint64(10_000)
	if soak() {
		faults = 100_000
	}
	var hostile *sim.Hostile
	// Timeouts a starved CPU cannot trip: the first phase must see no link change.
	opts := fastOptions()
	opts.KeepAliveInterval, opts.ControlTimeout = time.Second, time.Second
	tb := newTestbedVia(t, cfg, opts, func(p *sim.Phone) usb.Opener {
		hostile = sim.NewHostile(p, 1)
		return hostile
	})
	protocol := tb.link.Info().Protocol
	c := tb.dial(t, sim.EchoPort)
	warm := startEcho(c, 1)
	warm.waitProgress(t, 1<<20, 30*time.Second, tb.state)
	heapBefore, goroutinesBefore := liveHeap(), runtime.NumGoroutine()
	peak := peakGoroutines()

	additive := sim.AdditiveFaultsFor(protocol)
	hostile.Inject(additive...)
	start := time.Now()
	for hostile.Total() < faults {
		warm.waitProgress(t, 64<<10, 60*time.Second, tb.state) // the stream moves all the while
		if ev := len(tb.events); ev > 0 {
			t.Fatalf("the link changed under additive faults: %v; stats %+v", <-tb.events, tb.link.Stats())
		}
	}
	hostile.Inject()
	elapsed := time.Since(start)
	streamed := warm.finish(t, 30*time.Second, tb.state)
	peakN := peak()
	heapAfter := liveHeap()

	inj, s := hostile.Injected(), tb.link.Stats()
	want := faultsCounted(protocol, inj)
	for cause, n := range s.Faults() {
		if n != want[cause] {
			t.Errorf("%s: the link counted %d, the device injected %d", cause, n, want[cause])
		}
	}
	if s.Indications != inj[sim.IndicationFlood] {
		t.Errorf("indications: the link counted %d, the device sent %d", s.Indications, inj[sim.IndicationFlood])
	}
	for _, f := range additive {
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

	// Damaged genuine replies: the device goes away whenever the link is
	// up (an RNDIS phone halts, others are unplugged and plugged in again),
	// so that the host starts its function again and again. RNDIS's are
	// drawn at random among its replies; NCM's and ECM's each refuse the
	// start at a step of its own, so each gets a turn alone.
	destructive := sim.DestructiveFaultsFor(protocol)
	rounds := [][]sim.Fault{destructive}
	if protocol != usb.ProtocolRNDIS {
		rounds = nil
		for _, f := range destructive {
			rounds = append(rounds, []sim.Fault{f})
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, round := range rounds {
		hostile.Inject(round...)
		before := tb.link.Stats().InitFailures
		seen := func(s Stats) bool {
			if protocol == usb.ProtocolRNDIS {
				return s.InitFailures > 0 && s.LimitsClamped > 0 && s.ControlTimeouts > 0
			}
			return s.InitFailures > before && hostile.Injected()[round[0]] > 0
		}
		for s = tb.link.Stats(); !seen(s); s = tb.link.Stats() {
			if time.Now().After(deadline) {
				t.Fatalf("damaged replies %v not all seen within 60 s: %+v; injected %v", round, s.Faults(), hostile.Injected())
			}
			if tb.link.Up() {
				if protocol == usb.ProtocolRNDIS {
					tb.phone.Halt()
				} else {
					tb.phone.Unplug()
					tb.phone.Replug()
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
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
	after.finish(t, 30*time.Second, tb.state)
	t.Logf("damaged replies: %v; link downs %d, resets %d, re-inits %d, faults %v", hostile.Injected(),
		s.LinkDowns, s.Resets, s.Reinits, s.Faults())
}
