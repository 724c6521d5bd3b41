package sim

import (
	"bytes"
	"errors"
	"testing"

	"github.com/rndis-netd/rndis-netd/ncm"
	"github.com/rndis-netd/rndis-netd/usb"
)

func TestDongleDescribesItselfAsLinuxsFECM(t *testing.T) {
	_, h := newCDCPhone(t, Dongle())
	info := h.tr.Info()
	want := usb.Function{Protocol: usb.ProtocolECM, Config: 1, Control: usb.ECMClass, ControlIface: 0, DataIface: 1, DataAlt: 1,
		Notify: usb.Endpoint{Address: 0x81, Attributes: 3, MaxPacketSize: 16},
		BulkIn: usb.Endpoint{Address: 0x82, Attributes: 2, MaxPacketSize: 512}, BulkOut: usb.Endpoint{Address: 0x01, Attributes: 2, MaxPacketSize: 512},
		MACAddressIndex: 4, MaxSegmentSize: 1514}
	if info.Function != want || info.ID() != "12d1:14dc" {
		t.Errorf("%v\n got %+v\nwant %+v", info, info.Function, want)
	}
}

// f_ecm notifies NETWORK_CONNECTION, then CONNECTION_SPEED_CHANGE, on every
// SET_INTERFACE of the data interface, the configuration's included. Its
// is_open is false until the data path first connects, so a host reading
// from the plug on hears "disconnected" (for setting 0) before "connected".
func TestDongleStartsInCDCEthersOrder(t *testing.T) {
	cfg := Dongle()
	p, h := startedPhone(t, cfg)
	if s := p.Stats(); s.SetInterfaces != 2 || s.DataAlt != 1 || s.PacketFilter != uint32(ncm.DefaultPacketFilter) || s.Stalls != 0 {
		t.Errorf("after the start: %d SET_INTERFACEs, setting %d, filter %#x, %d stalls", s.SetInterfaces, s.DataAlt, s.PacketFilter, s.Stalls)
	}
	if !bytes.Equal(h.mac, cfg.HostMAC) {
		t.Errorf("iMACAddress %v, want %v", h.mac, cfg.HostMAC)
	}
	var got []ncm.Notification
	for len(got) < 2 || got[len(got)-1].Code != ncm.NotifyConnectionSpeedChange || !got[len(got)-2].Connected() {
		got = append(got, h.notification())
		if len(got) > 6 {
			t.Fatalf("notifications %v", got)
		}
	}
	if got[0].Code != ncm.NotifyNetworkConnection || got[0].Connected() {
		t.Errorf("first %v, want the configuration's: disconnected", got[0])
	}
}

func TestDongleAnswersARPAndDHCPOneFramePerTransfer(t *testing.T) {
	cfg := Dongle()
	p, h := startedPhone(t, cfg)
	from := senders(cfg, 20)
	for _, a := range from {
		h.send(arpRequestFor(cfg, a))
	}
	for _, a := range from {
		h.receiveFrame(isARPReply(cfg, a))
	}
	h.send(dhcpDiscover(t, h.mac))
	offer := h.receiveFrame(func(f []byte) bool { _, ok := dhcpReply(f); return ok })
	m, _ := dhcpReply(offer)
	if !cfg.Subnet.Contains(addrOf(m.YourIPAddr)) || !addrOf(m.ServerIPAddr).IsUnspecified() && addrOf(m.ServerIPAddr) != cfg.PhoneAddr {
		t.Errorf("offered %v by %v, want an address of %v by %v", m.YourIPAddr, m.ServerIPAddr, cfg.Subnet, cfg.PhoneAddr)
	}
	if s := p.Stats(); s.MaxPacketsToHost != 1 || s.MaxPacketsFromHost != 1 {
		t.Errorf("%d frames in one transfer to the host, %d from it", s.MaxPacketsToHost, s.MaxPacketsFromHost)
	}
}

// f_ecm's OUT request holds a frame of the MTU and 20 bytes: a transfer is
// one frame, a byte after it (the short-packet rule) stays with it; longer
// transfers overflow, ones that fill whole packets merge with the next,
// empty ones and runts are length errors.
func TestDongleTakesTransfersAsFECM(t *testing.T) {
	cfg := Dongle()
	arp := arpRequest(cfg)
	padded := func(n int) []byte { return append(bytes.Clone(arp), make([]byte, n-len(arp))...) }
	cases := []struct {
		name     string
		transfer []byte
		taken    bool
	}{
		{"a frame", arp, true},
		{"a frame that fills two packets, and a byte", append(padded(1024), 0), true},
		{"a frame of the MTU and 20 bytes", padded(1534), true},
		{"a byte longer", padded(1535), false},
		{"a frame that fills two packets without the byte", padded(1024), false},
		{"a runt", arp[:13], false},
		{"an empty transfer", nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, h := startedPhone(t, cfg)
			h.write(c.transfer)
			if s := p.Stats(); (s.FramesFromHost == 1) != c.taken || (s.LimitViolations == 1) == c.taken {
				t.Errorf("%d bytes: %d frames taken, %d refused", len(c.transfer), s.FramesFromHost, s.LimitViolations)
			}
		})
	}
}

// f_ecm serves SET_ETHERNET_PACKET_FILTER and nothing else.
func TestDongleStallsAllButThePacketFilter(t *testing.T) {
	_, h := startedPhone(t, Dongle())
	for _, c := range []struct {
		s    usb.Setup
		data []byte
	}{
		{h.in(ncm.RequestGetNTBParameters, 0), make([]byte, 28)},
		{h.out(usb.RequestSendEncapsulatedCommand, 0), make([]byte, 12)},
		{h.out(ncm.RequestSetEthernetPacketFilter, 0x0e), []byte{1}},
		{usb.ClassOut(ncm.RequestSetEthernetPacketFilter, 0x0e, 1), nil},
	} {
		if _, err := h.control(c.s, c.data); !errors.Is(err, usb.ErrStall) {
			t.Errorf("%v with %d bytes: %v, want a stall", c.s, len(c.data), err)
		}
	}
	h.mustControl(h.out(ncm.RequestSetEthernetPacketFilter, 0x0f), nil)
}
