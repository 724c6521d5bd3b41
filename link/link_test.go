package link

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rndis-netd/rndis-netd/rndis"
	"github.com/rndis-netd/rndis-netd/usb"
	"github.com/rndis-netd/rndis-netd/usb/sim"
)

func TestOpenLearnsTheDevice(t *testing.T) {
	for _, cfg := range []sim.Config{sim.LinuxGadget(), sim.Qualcomm()} {
		t.Run(cfg.Name, func(t *testing.T) {
			tb := newTestbed(t, cfg, fastOptions())
			info := tb.link.Info()
			want := rndis.PacketLimits{MaxTransferSize: cfg.MaxTransferSize, MaxPacketsPerTransfer: cfg.MaxPacketsPerTransfer, Alignment: 1 << cfg.AlignmentShift}
			if info.RNDIS.Limits != want {
				t.Errorf("limits %+v, want %+v", info.RNDIS.Limits, want)
			}
			if !bytes.Equal(info.DeviceMAC, cfg.HostMAC) {
				t.Errorf("device MAC %v, want %v", info.DeviceMAC, cfg.HostMAC)
			}
			// The phone's address is locally administered: the host picks its own.
			if bytes.Equal(info.MAC, cfg.HostMAC) || info.MAC[0]&0x03 != 0x02 {
				t.Errorf("host MAC %v: want a random locally-administered unicast address", info.MAC)
			}
			if info.MTU != cfg.MTU || info.LinkSpeed != cfg.LinkSpeed || !info.MediaConnected || len(info.RNDIS.SupportedOIDs) == 0 {
				t.Errorf("info %+v", info)
			}
			if f := tb.phone.Stats().PacketFilter; f != rndis.FilterDirected|rndis.FilterBroadcast|rndis.FilterAllMulticast {
				t.Errorf("packet filter %#x", f)
			}
			if !tb.link.Up() {
				t.Error("link not up after Open")
			}
		})
	}
}

func TestHostMAC(t *testing.T) {
	global := []byte{0x00, 0x1a, 0x11, 1, 2, 3}
	if got := hostMAC(global); !bytes.Equal(got, global) {
		t.Errorf("a globally administered address was replaced: %v", got)
	}
	for _, dev := range [][]byte{{0, 0, 0, 0, 0, 0}, {0x02, 1, 2, 3, 4, 5}} {
		if got := hostMAC(dev); bytes.Equal(got, dev) || got[0]&0x03 != 0x02 {
			t.Errorf("hostMAC(%x) = %v", dev, got)
		}
	}
}

func TestCloseSendsHalt(t *testing.T) {
	phone, err := sim.New(sim.LinuxGadget())
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	l, err := Open(context.Background(), phone, fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if got := phone.Stats().HostHalts; got != 1 {
		t.Errorf("phone saw %d HALTs, want 1", got)
	}
	if ev := l.LastEvent(); ev.Up || ev.Cause != CauseClosed {
		t.Errorf("last event %v", ev)
	}
	// The device was released: it can be opened again.
	tr, err := phone.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tr.Close()
}

// maxFramesPerTransfer is the most frames the host may put in one bulk-OUT
// transfer to the device of cfg.
func maxFramesPerTransfer(cfg sim.Config, info DeviceInfo) int {
	switch info.Protocol {
	case usb.ProtocolNCM:
		return info.NCM.Out.MaxDatagrams
	case usb.ProtocolECM:
		return 1
	}
	return cfg.MaxPacketsPerTransfer
}

// The presets of every protocol: RNDIS one frame per transfer and
// aggregating, NCM, ECM.
func everyPreset() []sim.Config {
	return []sim.Config{sim.LinuxGadget(), sim.Qualcomm(), sim.Pixel(), sim.Dongle()}
}

func TestEchoThroughTheLink(t *testing.T) {
	for _, cfg := range everyPreset() {
		t.Run(cfg.Name, func(t *testing.T) {
			tb := newTestbed(t, cfg, fastOptions())
			c := tb.dial(t, sim.EchoPort)
			defer c.Close()
			size := 64 << 20
			if raceEnabled || testing.Short() {
				size = 8 << 20
			}
			c.SetDeadline(time.Now().Add(2 * time.Minute))
			sent, got := echoStream(t, c, size, nil)
			if sent != got {
				t.Fatalf("SHA-256 of %d bytes: sent %x, echoed %x", size, sent, got)
			}
			s, ps := tb.link.Stats(), tb.phone.Stats()
			if ps.LimitViolations != 0 {
				t.Errorf("the host broke the phone's limits %d times", ps.LimitViolations)
			}
			most := maxFramesPerTransfer(cfg, tb.link.Info())
			if ps.MaxPacketsFromHost > most {
				t.Errorf("%d packets in one transfer, phone accepts %d", ps.MaxPacketsFromHost, most)
			}
			t.Logf("%s: tx %.2f packets/transfer, rx %.2f; phone: most from host %d, most to host %d",
				cfg.Name, s.TxPacketsPerTransfer(), s.RxPacketsPerTransfer(), ps.MaxPacketsFromHost, ps.MaxPacketsToHost)
			t.Logf("frames per transfer, buckets ≤%v: tx %v rx %v", BatchBuckets, s.TxBatches, s.RxBatches)
			if most == 1 && (s.TxBatches[0] != s.TxTransfers || s.RxBatches[0] != s.RxTransfers) {
				t.Errorf("one-packet device: transfers with more than one frame: tx %v rx %v", s.TxBatches, s.RxBatches)
			}
			if most > 1 && (ps.MaxPacketsFromHost < 2 || ps.MaxPacketsToHost < 2) {
				t.Errorf("aggregating phone under load: most packets per transfer %d to it, %d from it; want several", ps.MaxPacketsFromHost, ps.MaxPacketsToHost)
			}
		})
	}
}

// While the link is down, frames from the stack wait in the transmit
// queue, never sent to a device that is not started; those the full queue
// cannot take are dropped and counted. Once the link is up again, the
// frames that waited reach the device.
func TestFramesWhileDownWaitForTheLink(t *testing.T) {
	opts := fastOptions()
	opts.TxQueue = 8
	tb := newTestbed(t, sim.LinuxGadget(), opts)
	tb.phone.IndicateStatus(rndis.StatusMediaDisconnect)
	if ev := tb.nextEvent(t, 5*time.Second); ev.Up {
		t.Fatalf("event %v", ev)
	}
	before, phoneBefore := tb.link.Stats(), tb.phone.Stats().FramesFromHost
	pkts := frames(opts.TxQueue + 3)
	n, err := tb.link.ep.WritePackets(pkts)
	pkts.DecRef()
	if n != opts.TxQueue+3 || err != nil {
		t.Errorf("WritePackets = %d, %v", n, err)
	}
	s := tb.link.Stats()
	// The transmit goroutine may hold one more, taken as the link went
	// down (this phone takes one frame per transfer).
	if got := s.TxQueueFull - before.TxQueueFull; got < 2 || got > 3 {
		t.Errorf("TxQueueFull grew by %d, want the 3 frames beyond the queue, or 2", got)
	}
	if got := s.TxLinkDown - before.TxLinkDown; got != 0 {
		t.Errorf("TxLinkDown grew by %d while the link was down, not closed", got)
	}
	time.Sleep(200 * time.Millisecond) // stay down a while
	if got := tb.phone.Stats().FramesFromHost - phoneBefore; got != 0 {
		t.Errorf("the phone received %d frames while the link was down", got)
	}

	tb.phone.IndicateStatus(rndis.StatusMediaConnect)
	if ev := tb.nextEvent(t, 5*time.Second); !ev.Up {
		t.Fatalf("event %v", ev)
	}
	waited := opts.TxQueue + 3 - int(tb.link.Stats().TxQueueFull-before.TxQueueFull)
	for deadline := time.Now().Add(10 * time.Second); tb.phone.Stats().FramesFromHost-phoneBefore < waited; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the phone received %d of the %d frames that waited\n%s",
				tb.phone.Stats().FramesFromHost-phoneBefore, waited, tb.state())
		}
	}
}

// The frames of a bulk-OUT write that failed because the device went away
// are not lost: they reach the device once it is back.
func TestFramesOfAWriteThatFailedAsTheDeviceWentAreSentAgain(t *testing.T) {
	// Once armed, the next bulk-OUT write fails as an unplug in the middle
	// of a write does.
	var armed atomic.Bool
	ic := &interceptor{writeBulk: func(ctx context.Context, p []byte, next func(context.Context, []byte) error) error {
		if armed.CompareAndSwap(true, false) {
			return fmt.Errorf("bulk OUT: %w", usb.ErrDeviceGone)
		}
		return next(ctx, p)
	}}
	tb := newTestbedVia(t, sim.Qualcomm(), fastOptions(), func(p *sim.Phone) usb.Opener { ic.phone = p; return ic })
	const sent = 20
	before := tb.phone.Stats().FramesFromHost
	armed.Store(true)
	pkts := frames(sent)
	tb.link.ep.WritePackets(pkts)
	pkts.DecRef()
	if ev := tb.nextEvent(t, 5*time.Second); ev.Up || ev.Cause != CauseDeviceGone {
		t.Fatalf("got %v, want link down: %s", ev, CauseDeviceGone)
	}
	if ev := tb.nextEvent(t, 10*time.Second); !ev.Up {
		t.Fatalf("got %v, want link up", ev)
	}
	for deadline := time.Now().Add(10 * time.Second); tb.phone.Stats().FramesFromHost-before < sent; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the phone received %d of %d frames\n%s", tb.phone.Stats().FramesFromHost-before, sent, tb.state())
		}
	}
}
