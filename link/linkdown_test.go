package link

import (
	"testing"
	"time"

	"github.com/rndis-netd/rndis-netd/rndis"
	"github.com/rndis-netd/rndis-netd/usb/sim"
)

// Every link-down cause gives exactly one down event with that cause, then
// one up event once the link has recovered.
func TestLinkDownCauses(t *testing.T) {
	mediaDown := func(p *sim.Phone) { p.SetMedia(false) }
	mediaUp := func(p *sim.Phone) { p.SetMedia(true) }
	tests := []struct {
		cfg     sim.Config
		cause   Cause
		inject  func(p *sim.Phone)
		restore func(p *sim.Phone)
		upCause Cause
	}{
		{sim.LinuxGadget(), CauseDeviceHalt, (*sim.Phone).Halt, nil, CauseReinitialized},
		{sim.LinuxGadget(), CauseMediaDisconnect, func(p *sim.Phone) { p.IndicateStatus(rndis.StatusMediaDisconnect) },
			func(p *sim.Phone) { p.IndicateStatus(rndis.StatusMediaConnect) }, CauseMediaConnect},
		{sim.LinuxGadget(), CauseKeepAliveTimeout, func(p *sim.Phone) { p.SetSilent(true) }, func(p *sim.Phone) { p.SetSilent(false) }, CauseReinitialized},
		{sim.LinuxGadget(), CauseDeviceGone, (*sim.Phone).Unplug, (*sim.Phone).Replug, CauseReinitialized},
		{sim.Pixel(), CauseMediaDisconnect, mediaDown, mediaUp, CauseMediaConnect},
		{sim.Pixel(), CauseDeviceGone, (*sim.Phone).Unplug, (*sim.Phone).Replug, CauseReinitialized},
		{sim.Dongle(), CauseMediaDisconnect, mediaDown, mediaUp, CauseMediaConnect},
		{sim.Dongle(), CauseDeviceGone, (*sim.Phone).Unplug, (*sim.Phone).Replug, CauseReinitialized},
	}
	for _, tt := range tests {
		t.Run(tt.cfg.Name+"/"+string(tt.cause), func(t *testing.T) {
			tb := newTestbed(t, tt.cfg, fastOptions())
			tt.inject(tb.phone)
			down := tb.nextEvent(t, 5*time.Second)
			if down.Up || down.Cause != tt.cause {
				t.Fatalf("got %v, want link down: %s", down, tt.cause)
			}
			if !down.nicRunning {
				t.Error("the NIC was disabled: its sockets would fail instead of waiting for the link")
			}
			if tt.restore != nil {
				time.Sleep(200 * time.Millisecond) // stay down a while
				tt.restore(tb.phone)
			}
			up := tb.nextEvent(t, 10*time.Second)
			if !up.Up || up.Cause != tt.upCause {
				t.Fatalf("got %v, want link up: %s", up, tt.upCause)
			}
			if !up.nicRunning {
				t.Error("the NIC is not running after link up")
			}
			select {
			case ev := <-tb.events:
				t.Fatalf("extra event %v", ev)
			case <-time.After(300 * time.Millisecond):
			}
			tb.carries(t, "after recovery")
		})
	}
}

// A keepalive answered by a device that stays quiet otherwise keeps the link up.
func TestKeepAliveKeepsAQuietLinkUp(t *testing.T) {
	tb := newTestbed(t, sim.LinuxGadget(), fastOptions())
	time.Sleep(5 * fastOptions().KeepAliveInterval)
	if n := tb.phone.Stats().HostKeepAlives; n == 0 {
		t.Error("no KEEPALIVE sent on a quiet link")
	}
	select {
	case ev := <-tb.events:
		t.Errorf("event on a healthy quiet link: %v", ev)
	default:
	}
}

func TestDeviceKeepAliveIsAnswered(t *testing.T) {
	tb := newTestbed(t, sim.LinuxGadget(), fastOptions())
	tb.phone.SendKeepAlive()
	deadline := time.Now().Add(5 * time.Second)
	for tb.phone.Stats().KeepAliveCompletes == 0 {
		if time.Now().After(deadline) {
			t.Fatal("device KEEPALIVE not answered")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMalformedInputIsCountedNotFatal(t *testing.T) {
	tb := newTestbed(t, sim.LinuxGadget(), fastOptions())
	c := tb.dial(t, sim.EchoPort)
	defer c.Close()
	tb.phone.CorruptBulk(3)
	tb.phone.CorruptControl(1)
	tb.phone.SendKeepAlive() // its message is the corrupted one
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if sent, got := echoStream(t, c, 1<<20, nil); sent != got {
		t.Error("echo corrupted")
	}
	s := tb.link.Stats()
	if s.RxMalformed == 0 || s.ControlMalformed == 0 {
		t.Errorf("malformed transfers %d, control messages %d: want both counted", s.RxMalformed, s.ControlMalformed)
	}
	if !tb.link.Up() {
		t.Error("malformed input took the link down")
	}
}

// A TCP stream spanning a device-sent HALT completes intact: the address is
// kept, the NIC is disabled and enabled, and TCP retransmits what was lost.
func TestTCPStreamSurvivesOutages(t *testing.T) {
	runs := 10
	if testing.Short() {
		runs = 2
	}
	for i := range runs {
		tb := newTestbed(t, sim.LinuxGadget(), fastOptions())
		c := tb.dial(t, sim.EchoPort)
		c.SetDeadline(time.Now().Add(60 * time.Second))
		start := time.Now()
		downFor := 2 * time.Second
		sent, got := echoStream(t, c, 4<<20, func() {
			tb.phone.Unplug() // down for a while: unplugged, then back and halted
			time.Sleep(downFor)
			tb.phone.Replug()
		})
		elapsed := time.Since(start)
		c.Close()
		if sent != got {
			t.Fatalf("run %d: checksums differ after the outage", i)
		}
		// Recovery must not stall for tens of seconds (the RACK problem).
		if limit := downFor + 15*time.Second; elapsed > limit {
			t.Errorf("run %d: transfer took %v around a %v outage (bound %v)", i, elapsed, downFor, limit)
		}
		t.Logf("run %d: %v for 4 MiB around a %v outage", i, elapsed.Round(time.Millisecond), downFor)
	}
}

func TestTCPStreamSpansADeviceHalt(t *testing.T) {
	tb := newTestbed(t, sim.Qualcomm(), fastOptions())
	c := tb.dial(t, sim.EchoPort)
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	sent, got := echoStream(t, c, 8<<20, tb.phone.Halt)
	if sent != got {
		t.Fatal("checksums differ after the halt")
	}
	if s := tb.link.Stats(); s.Halts != 1 || s.Reinits != 1 {
		t.Errorf("halts %d, re-inits %d; want 1 and 1", s.Halts, s.Reinits)
	}
}
