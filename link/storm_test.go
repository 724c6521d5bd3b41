package link

import (
	"runtime"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"

	"github.com/rndis-netd/rndis-netd/usb/sim"
)

// A storm of link-down events while a TCP stream of pseudo-random bytes
// flows both ways: every cycle is exactly one down event with its cause
// and one up event, the stream moves between cycles, the bytes echoed are
// the bytes sent, and neither goroutines nor the heap grow.
func TestLinkDownStorms(t *testing.T) {
	cycles := func(soakCycles int) int {
		switch {
		case soak():
			return soakCycles
		case raceEnabled:
			return 10
		}
		return 20
	}
	quick := fastOptions()
	quick.RetryMin = time.Millisecond // look for the re-plugged phone at once
	hung := fastOptions()             // a hung device is noticed by keepalive: make it quick
	hung.KeepAliveInterval, hung.ControlTimeout = 20*time.Millisecond, 50*time.Millisecond
	if raceEnabled {
		hung.KeepAliveInterval, hung.ControlTimeout = 50*time.Millisecond, 150*time.Millisecond
	}
	mediaDown := func(p *sim.Phone) { p.SetMedia(false) }
	mediaUp := func(p *sim.Phone) { p.SetMedia(true) }
	// In the soak, 1,000 cycles of each RNDIS storm and 300 of each NCM and
	// ECM one: their cycles are slower (a start of an NCM or ECM function
	// waits out the device's burst of notifications), and what is new to
	// them (the start, the notification reader) is the same every cycle.
	storms := []struct {
		cycles  int
		cfg     sim.Config
		cause   Cause
		opts    Options
		down    func(*sim.Phone)
		up      func(*sim.Phone)
		upCause []Cause
	}{
		{1000, sim.Qualcomm(), CauseDeviceHalt, quick, (*sim.Phone).Halt, nil, []Cause{CauseReinitialized}},
		{1000, sim.Qualcomm(), CauseDeviceGone, quick, (*sim.Phone).Unplug, (*sim.Phone).Replug, []Cause{CauseReinitialized}},
		{1000, sim.Qualcomm(), CauseMediaDisconnect, quick, mediaDown, mediaUp, []Cause{CauseMediaConnect}},
		// The RESET after the timeout may reach the phone before or after it recovers.
		{1000, sim.Qualcomm(), CauseKeepAliveTimeout, hung, func(p *sim.Phone) { p.SetSilent(true) }, func(p *sim.Phone) { p.SetSilent(false) },
			[]Cause{CauseReset, CauseReinitialized}},
		// NCM and ECM have no halt and no keepalive: a hung device goes unnoticed, as it does for Linux.
		{300, sim.Pixel(), CauseDeviceGone, quick, (*sim.Phone).Unplug, (*sim.Phone).Replug, []Cause{CauseReinitialized}},
		{300, sim.Pixel(), CauseMediaDisconnect, quick, mediaDown, mediaUp, []Cause{CauseMediaConnect}},
		{300, sim.Dongle(), CauseDeviceGone, quick, (*sim.Phone).Unplug, (*sim.Phone).Replug, []Cause{CauseReinitialized}},
		{300, sim.Dongle(), CauseMediaDisconnect, quick, mediaDown, mediaUp, []Cause{CauseMediaConnect}},
	}
	for i, storm := range storms {
		t.Run(storm.cfg.Name+"/"+string(storm.cause), func(t *testing.T) {
			cycles := cycles(storm.cycles)
			tb := newTestbed(t, storm.cfg, storm.opts)
			// Retransmit within milliseconds of the link coming back, not
			// 200 ms; reap closed connections at once, so that the heap
			// before and after holds the same endpoints.
			minRTO := tcpip.TCPMinRTOOption(5 * time.Millisecond)
			timeWait := tcpip.TCPTimeWaitTimeoutOption(time.Millisecond)
			for _, s := range []*stack.Stack{tb.host, tb.phone.Stack()} {
				for _, o := range []tcpip.SettableTransportProtocolOption{&minRTO, &timeWait} {
					if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, o); err != nil {
						t.Fatal(err)
					}
				}
			}
			// Before and after: the link up, no connection open.
			warm := startEcho(tb.dial(t, sim.EchoPort), uint64(i))
			warm.waitProgress(t, 1<<20, 30*time.Second)
			warm.finish(t, 30*time.Second, tb.state)
			heapBefore, goroutinesBefore := settledHeap(), runtime.NumGoroutine()
			peak := peakGoroutines()
			run := startEcho(tb.dial(t, sim.EchoPort), uint64(i)+100)
			start := time.Now()
			var slowest time.Duration // a cycle, from the down event to the stream's progress after the up
			for n := range cycles {
				cycleStart := time.Now()
				storm.down(tb.phone)
				if ev := tb.nextEvent(t, 10*time.Second); ev.Up || ev.Cause != storm.cause {
					t.Fatalf("cycle %d: got %v, want link down: %s", n, ev, storm.cause)
				}
				if storm.up != nil {
					storm.up(tb.phone)
				}
				ev := tb.nextEvent(t, 10*time.Second)
				if !ev.Up || !containsCause(storm.upCause, ev.Cause) || !ev.nicRunning {
					t.Fatalf("cycle %d: got %v (NIC running %v), want link up: %v", n, ev, ev.nicRunning, storm.upCause)
				}
				// Bounded by gVisor's largest retransmission timeout, 120 s: a
				// stall shorter than that shows in the slowest cycle logged.
				run.waitProgress(t, 64<<10, 120*time.Second, tb.state)
				slowest = max(slowest, time.Since(cycleStart))
			}
			elapsed := time.Since(start)
			streamed := run.finish(t, 30*time.Second, tb.state)
			heapAfter, peakN := settledHeap(), peak()
			if s := tb.link.Stats(); s.LinkDowns != uint64(cycles) || s.LinkUps != uint64(cycles)+1 {
				t.Errorf("%d link downs and %d ups after %d cycles (and the first up)", s.LinkDowns, s.LinkUps, cycles)
			}
			select {
			case ev := <-tb.events:
				t.Errorf("an event beyond the cycles: %v", ev)
			default:
			}
			if limit := heapBefore + heapBefore/10; heapAfter > limit {
				t.Errorf("live heap grew from %d to %d bytes (limit %d)", heapBefore, heapAfter, limit)
			}
			if bound := goroutinesBefore + 16; peakN > bound {
				t.Errorf("goroutines peaked at %d (before: %d, bound %d)", peakN, goroutinesBefore, bound)
			}
			t.Logf("%d cycles in %v (slowest %v), %d bytes echoed intact; goroutines %d before, peak %d; live heap %d → %d bytes",
				cycles, elapsed.Round(time.Millisecond), slowest.Round(time.Millisecond), streamed, goroutinesBefore, peakN, heapBefore, heapAfter)
		})
	}
}

func containsCause(cs []Cause, c Cause) bool {
	for _, x := range cs {
		if x == c {
			return true
		}
	}
	return false
}
