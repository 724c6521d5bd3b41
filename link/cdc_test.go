package link

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/rndis-netd/rndis-netd/ncm"
	"github.com/rndis-netd/rndis-netd/usb"
	"github.com/rndis-netd/rndis-netd/usb/sim"
)

// An NCM or ECM device starts in Linux's order and the host learns its MAC
// from iMACAddress, its MTU from wMaxSegmentSize, its speed from
// CONNECTION_SPEED_CHANGE and its medium from NETWORK_CONNECTION; NCM's
// blocks are negotiated as Linux's cdc_ncm negotiates them with f_ncm.
func TestOpenLearnsACDCDevice(t *testing.T) {
	for _, cfg := range []sim.Config{sim.Pixel(), sim.Dongle()} {
		t.Run(cfg.Name, func(t *testing.T) {
			tb := newTestbed(t, cfg, fastOptions())
			info, ps := tb.link.Info(), tb.phone.Stats()
			// The speed comes in the notification after the "connected".
			for deadline := time.Now().Add(2 * time.Second); info.LinkSpeed == 0 && time.Now().Before(deadline); info = tb.link.Info() {
				time.Sleep(time.Millisecond)
			}
			if info.Protocol != cfg.Protocol || !bytes.Equal(info.DeviceMAC, cfg.HostMAC) {
				t.Errorf("protocol %q, device MAC %v; want %q, %v", info.Protocol, info.DeviceMAC, cfg.Protocol, cfg.HostMAC)
			}
			if bytes.Equal(info.MAC, cfg.HostMAC) || info.MAC[0]&0x03 != 0x02 {
				t.Errorf("host MAC %v: want a random locally-administered unicast address", info.MAC)
			}
			if info.MTU != 1500 || info.LinkSpeed == 0 || !info.MediaConnected || info.RNDIS != nil {
				t.Errorf("info %+v", info)
			}
			if ps.DataAlt != 1 || ps.PacketFilter != uint32(ncm.DefaultPacketFilter) {
				t.Errorf("phone at alternate setting %d with filter %#x; want 1 and %#x", ps.DataAlt, ps.PacketFilter, ncm.DefaultPacketFilter)
			}
			if cfg.Protocol == usb.ProtocolNCM {
				n := info.NCM
				want := ncm.Limits{MaxSize: 16384, Divisor: 4, Remainder: 2, NDPAlignment: 4, MaxDatagrams: 40}
				if n == nil || n.Format != ncm.NTB16 || n.InputSize != 16384 || n.Out != want {
					t.Fatalf("NCM %+v; want NTB16, input 16384, out %+v", n, want)
				}
				if ps.NTBFormat != ncm.NTB16 || ps.NTBInputSize != 16384 || ps.CRC {
					t.Errorf("phone: format %v, input size %d, CRC %v", ps.NTBFormat, ps.NTBInputSize, ps.CRC)
				}
			}
			tb.link.Close()
			if ps := tb.phone.Stats(); ps.DataAlt != 0 {
				t.Errorf("after Close the data interface is at setting %d, want 0", ps.DataAlt)
			}
		})
	}
}

// A device that says it is disconnected when its data interface is
// selected starts with the link down, and brings it up when it connects.
func TestCDCDeviceStartsDisconnected(t *testing.T) {
	phone, err := sim.New(sim.Pixel())
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	phone.SetMedia(false)
	l, err := Open(context.Background(), phone, fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	events := make(chan Event, 4)
	l.Subscribe(func(ev Event) { events <- ev })
	if l.Up() || l.Info().MediaConnected {
		t.Fatalf("link up %v, medium connected %v on a disconnected device", l.Up(), l.Info().MediaConnected)
	}
	phone.SetMedia(true)
	if ev := <-events; !ev.Up || ev.Cause != CauseMediaConnect {
		t.Errorf("event %v, want up: media connect", ev)
	}
}

// A "disconnected" that the device takes back at once (as f_ncm's stale
// notifications around SET_INTERFACE do) does not flap the link; one that
// stays takes it down.
func TestCDCDisconnectIsDebounced(t *testing.T) {
	ic := &interceptor{}
	tb := newTestbedVia(t, sim.Pixel(), fastOptions(), func(p *sim.Phone) usb.Opener { ic.phone = p; return ic })
	before := tb.link.Stats()
	ic.notify(ncm.ConnectionNotification(0, false).Marshal())
	ic.notify(ncm.ConnectionNotification(0, true).Marshal())
	select {
	case ev := <-tb.events:
		t.Fatalf("a disconnect taken back at once changed the link: %v", ev)
	case <-time.After(3 * mediaDebounce):
	}
	s := tb.link.Stats()
	if s.MediaDisconnects-before.MediaDisconnects != 1 || s.MediaConnects-before.MediaConnects != 1 {
		t.Errorf("media disconnects %d, connects %d counted; want the 1 and 1 the device sent",
			s.MediaDisconnects-before.MediaDisconnects, s.MediaConnects-before.MediaConnects)
	}
	tb.phone.SetMedia(false)
	if ev := tb.nextEvent(t, 5*time.Second); ev.Up || ev.Cause != CauseMediaDisconnect {
		t.Errorf("event %v, want down: media disconnect", ev)
	}
}
