package sim

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/rndis-netd/rndis-netd/ncm"
	"github.com/rndis-netd/rndis-netd/rndis"
	"github.com/rndis-netd/rndis-netd/usb"
)

// cdcPresets are the phones whose tests below hold for NCM and ECM alike.
func cdcPresets() []Config { return []Config{Pixel(), Dongle()} }

// forEachCDCPhone runs test as a subtest on each of cdcPresets, started by a
// host that has read what the start left on the interrupt endpoint.
func forEachCDCPhone(t *testing.T, test func(t *testing.T, cfg Config, p *Phone, h *cdcHost)) {
	for _, cfg := range cdcPresets() {
		t.Run(cfg.Name, func(t *testing.T) {
			p, h := startedPhone(t, cfg)
			drain(h)
			test(t, cfg, p, h)
		})
	}
}

// SetMedia takes the network down with NETWORK_CONNECTION 0 and brings it
// back with 1 (each with the speed change, in the function's order); while
// it is down no frame moves.
func TestMediaDisconnectIsNetworkConnection(t *testing.T) {
	forEachCDCPhone(t, func(t *testing.T, cfg Config, p *Phone, h *cdcHost) {
		p.SetMedia(false)
		if conn, _ := h.untilConnection(); conn.Connected() {
			t.Fatalf("after SetMedia(false): %v", conn)
		}
		h.send(arpRequest(cfg))
		if s := p.Stats(); s.DroppedFromHost != 1 || s.FramesFromHost != 0 {
			t.Errorf("while disconnected: %d dropped, %d taken", s.DroppedFromHost, s.FramesFromHost)
		}
		p.SetMedia(true)
		if conn, _ := h.untilConnection(); !conn.Connected() {
			t.Fatalf("after SetMedia(true): %v", conn)
		}
		h.send(arpRequest(cfg))
		h.receiveFrame(isARPReply(cfg, hostAddr(cfg)))
	})
}

// The notifications' order is the function's: f_ncm the speed change
// first, f_ecm the connection first; both send the pair on every
// SET_INTERFACE of the data interface.
func TestNotificationOrderIsTheFunctions(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want [2]ncm.NotificationCode
	}{
		{Pixel(), [2]ncm.NotificationCode{ncm.NotifyConnectionSpeedChange, ncm.NotifyNetworkConnection}},
		{Dongle(), [2]ncm.NotificationCode{ncm.NotifyNetworkConnection, ncm.NotifyConnectionSpeedChange}},
	} {
		t.Run(c.cfg.Name, func(t *testing.T) {
			p, h := startedPhone(t, c.cfg)
			drain(h)
			p.SetMedia(false)
			if got := [2]ncm.NotificationCode{h.notification().Code, h.notification().Code}; got != c.want {
				t.Errorf("after a media change: %v, want %v", got, c.want)
			}
			h.setAlt(0)
			if got := [2]ncm.NotificationCode{h.notification().Code, h.notification().Code}; got != c.want {
				t.Errorf("after SET_INTERFACE(0): %v, want %v", got, c.want)
			}
		})
	}
}

// drain reads the notifications a start left, up to the last
// NETWORK_CONNECTION and the one after it if it is the speed change.
func drain(h *cdcHost) {
	h.t.Helper()
	for {
		ctx, cancel := context.WithTimeout(h.ctx, 50*time.Millisecond)
		b, err := h.tr.WaitNotification(ctx)
		cancel()
		if err != nil {
			return
		}
		h.notes.Feed(b)
		for _, ok := h.notes.Next(); ok; _, ok = h.notes.Next() {
		}
	}
}

// A silent phone answers no request, not even SET_INTERFACE or a string,
// and sends no notification until it comes back.
func TestSilentCDCPhoneAnswersNothing(t *testing.T) {
	forEachCDCPhone(t, func(t *testing.T, cfg Config, p *Phone, h *cdcHost) {
		p.SetSilent(true)
		p.SetMedia(false) // a notification that must wait
		ctx, cancel := context.WithTimeout(h.ctx, 20*time.Millisecond)
		defer cancel()
		if _, err := h.tr.Control(ctx, h.out(ncm.RequestSetEthernetPacketFilter, 0x0e), nil); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("a request to a silent phone: %v", err)
		}
		if err := h.tr.SetAlternate(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("SET_INTERFACE to a silent phone: %v", err)
		}
		if _, err := usb.ReadString(ctx, h.tr, 4); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("a string from a silent phone: %v", err)
		}
		if b, err := h.tr.WaitNotification(ctx); err == nil {
			t.Errorf("a silent phone notified %x", b)
		}
		p.SetSilent(false)
		if conn, _ := h.untilConnection(); conn.Connected() {
			t.Errorf("back: %v", conn)
		}
	})
}

// Halt, KEEPALIVEs and the RNDIS control faults have no NCM or ECM
// counterpart: on these phones they do nothing.
func TestRNDISOnlyKnobsDoNothingOnCDC(t *testing.T) {
	forEachCDCPhone(t, func(t *testing.T, cfg Config, p *Phone, h *cdcHost) {
		p.Halt()
		p.SendKeepAlive()
		p.IndicateStatus(rndis.StatusLinkSpeedChange)
		ctx, cancel := context.WithTimeout(h.ctx, 20*time.Millisecond)
		defer cancel()
		if b, err := h.tr.WaitNotification(ctx); err == nil {
			t.Errorf("notified %x", b)
		}
		h.send(arpRequest(cfg))
		h.receiveFrame(isARPReply(cfg, hostAddr(cfg)))
	})
}

// Unless the filter is promiscuous, the phone sends broadcasts only with
// the broadcast bit and other multicasts only with the all-multicast bit,
// as Linux's u_ether does.
func TestPacketFilterAppliesToWhatThePhoneSends(t *testing.T) {
	forEachCDCPhone(t, func(t *testing.T, cfg Config, p *Phone, h *cdcHost) {
		h.mustControl(h.out(ncm.RequestSetEthernetPacketFilter, uint16(ncm.FilterDirected)), nil)
		h.send(dhcpDiscover(t, h.mac))
		waitFor(t, func() bool { return p.nic.NumQueued() > 0 }) // the offer, a broadcast
		sender := hostAddr(cfg)
		h.send(arpRequestFor(cfg, sender))
		h.receiveFrame(func(f []byte) bool {
			if f[0]&1 != 0 {
				t.Errorf("with the directed filter, a frame to %x", f[:6])
			}
			return isARPReply(cfg, sender)(f)
		})
		if s := p.Stats(); s.DroppedToHost == 0 {
			t.Errorf("nothing dropped: %+v", s)
		}
		h.mustControl(h.out(ncm.RequestSetEthernetPacketFilter, uint16(ncm.FilterDirected|ncm.FilterBroadcast)), nil)
		h.send(dhcpDiscover(t, h.mac))
		h.receiveFrame(func(f []byte) bool { _, ok := dhcpReply(f); return ok })
	})
}

// A device controller without zero-length packets ends a transfer that
// fills whole packets with one more byte, which the host's limits allow.
func TestNoZeroLengthPacketsAddsAByte(t *testing.T) {
	for _, c := range []struct {
		cfg   Config
		frame int // the frame whose transfer fills two packets
	}{
		{Pixel(), 1024 - ncm.NTH16Size - ncm.NDP16HeaderSize - 2*ncm.NDP16EntrySize},
		{Dongle(), 1024},
	} {
		t.Run(c.cfg.Name, func(t *testing.T) {
			for _, noZLP := range []bool{false, true} {
				cfg := c.cfg
				cfg.NoZeroLengthPackets = noZLP
				_, h := startedPhone(t, cfg)
				sender := hostAddr(cfg)
				h.send(arpRequestFor(cfg, sender)) // so that the phone knows the host's MAC
				h.receiveFrame(isARPReply(cfg, sender))
				h.send(icmpEcho(cfg, sender, c.frame))
				_, transfer := h.receiveMatch(func(f []byte) bool {
					return len(f) >= c.frame && header.Ethernet(f).Type() == header.IPv4ProtocolNumber
				})
				want := 1024
				if noZLP {
					want = 1025
				}
				if len(transfer) != want || (noZLP && transfer[1024] != 0) {
					t.Errorf("without zero-length packets %v: a %d-byte transfer, want %d", noZLP, len(transfer), want)
				}
			}
		})
	}
}

// icmpEcho is an echo request of a frame bytes from sender to the phone.
func icmpEcho(cfg Config, sender netip.Addr, frame int) []byte {
	const ipAt, icmpAt = header.EthernetMinimumSize, header.EthernetMinimumSize + header.IPv4MinimumSize
	b := make([]byte, frame)
	header.Ethernet(b).Encode(&header.EthernetFields{SrcAddr: tcpip.LinkAddress(cfg.HostMAC), DstAddr: tcpip.LinkAddress(cfg.PhoneMAC), Type: header.IPv4ProtocolNumber})
	ip := header.IPv4(b[ipAt:])
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(frame - ipAt), TTL: 64, Protocol: uint8(header.ICMPv4ProtocolNumber),
		SrcAddr: tcpip.AddrFrom4(sender.As4()), DstAddr: tcpip.AddrFrom4(cfg.PhoneAddr.As4())})
	ip.SetChecksum(^ip.CalculateChecksum())
	icmp := header.ICMPv4(b[icmpAt:])
	icmp.SetType(header.ICMPv4Echo)
	icmp.SetChecksum(^checksum.Checksum(icmp, 0))
	return b
}

// Closing the device returns the data interface to setting 0, as usbfs does
// on release: the next host finds NTB16 and the default input size again.
func TestCloseReturnsTheDataInterfaceToSettingZero(t *testing.T) {
	p, h := newCDCPhone(t, Pixel())
	h.setAlt(1)
	h.mustControl(h.out(ncm.RequestSetNTBFormat, uint16(ncm.NTB32)), nil)
	h.tr.Close()
	if s := p.Stats(); s.DataAlt != 0 || s.NTBFormat != ncm.NTB16 {
		t.Errorf("after Close: setting %d, %v", s.DataAlt, s.NTBFormat)
	}
	tr, err := p.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	startedHost := newCDCHost(t, tr)
	startedHost.start()
	startedHost.send(arpRequest(Pixel()))
	startedHost.receiveFrame(isARPReply(Pixel(), hostAddr(Pixel())))
}
