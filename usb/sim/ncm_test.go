package sim

import (
	"bytes"
	"errors"
	"hash/crc32"
	"net"
	"net/netip"
	"strings"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/rndis-netd/rndis-netd/ncm"
	"github.com/rndis-netd/rndis-netd/usb"
)

func TestPixelDescribesItselfAsLinuxsFNCM(t *testing.T) {
	_, h := newCDCPhone(t, Pixel())
	info := h.tr.Info()
	want := usb.Function{Protocol: usb.ProtocolNCM, Config: 1, Control: usb.NCMClass, ControlIface: 0, DataIface: 1, DataAlt: 1,
		Notify: usb.Endpoint{Address: 0x81, Attributes: 3, MaxPacketSize: 16},
		BulkIn: usb.Endpoint{Address: 0x82, Attributes: 2, MaxPacketSize: 512}, BulkOut: usb.Endpoint{Address: 0x01, Attributes: 2, MaxPacketSize: 512},
		MACAddressIndex: 4, MaxSegmentSize: 1514, NCMCapabilities: 0x11}
	if info.Function != want || info.ID() != "18d1:4eeb" {
		t.Errorf("%v\n got %+v\nwant %+v", info, info.Function, want)
	}
	if p := h.mustNTBParameters(); p != Pixel().NTBParameters {
		t.Errorf("GET_NTB_PARAMETERS = %v", p)
	}
}

func TestPixelStartsInLinuxsOrder(t *testing.T) {
	cfg := Pixel()
	p, h := startedPhone(t, cfg)
	s := p.Stats()
	if s.SetInterfaces != 3 || s.DataAlt != 1 || s.NTBFormat != ncm.NTB16 || s.NTBInputSize != 16384 || s.CRC {
		t.Errorf("after the start: %d SET_INTERFACEs, alt %d, %v, input %d, CRC %v", s.SetInterfaces, s.DataAlt, s.NTBFormat, s.NTBInputSize, s.CRC)
	}
	if s.PacketFilter != uint32(ncm.DefaultPacketFilter) {
		t.Errorf("packet filter %#x, want the host's %#x (sent after setting 1, which resets it)", s.PacketFilter, ncm.DefaultPacketFilter)
	}
	if !bytes.Equal(h.mac, cfg.HostMAC) {
		t.Errorf("iMACAddress = %v, want %v", h.mac, cfg.HostMAC)
	}
	mac, _ := usb.ReadString(h.ctx, h.tr, 4)
	if mac != strings.ToUpper(mac) {
		t.Errorf("iMACAddress %q is not upper case, as Linux's gadgets send it", mac)
	}
	if s.Stalls != 0 || s.BulkWhileInactive != 0 {
		t.Errorf("%d requests stalled, %d bulk transfers at setting 0", s.Stalls, s.BulkWhileInactive)
	}
}

// f_ncm notifies on every SET_INTERFACE of the data interface:
// CONNECTION_SPEED_CHANGE, then NETWORK_CONNECTION; a notify while one is
// in flight repeats the speed change.
func TestPixelNotifiesSpeedThenConnection(t *testing.T) {
	_, h := startedPhone(t, Pixel())
	conn, before := h.untilConnection()
	if !conn.Connected() || conn.Interface != 0 || len(before) == 0 {
		t.Fatalf("%v after %v", conn, before)
	}
	for _, c := range before {
		if c != ncm.NotifyConnectionSpeedChange {
			t.Errorf("before the connection: %v, want only speed changes", before)
		}
	}
	h.setAlt(1) // again: a second sequence
	speed := h.notification()
	if speed.Code != ncm.NotifyConnectionSpeedChange || speed.DownlinkBitRate != gadgetBitRate || speed.UplinkBitRate != gadgetBitRate {
		t.Errorf("first after SET_INTERFACE: %v, want the speed change of f_ncm at high speed", speed)
	}
	if conn, _ := h.untilConnection(); !conn.Connected() {
		t.Errorf("then %v", conn)
	}
}

// f_ncm's is_open starts false and is set when the data path connects: a
// host that reads the notifications of the configuration before selecting
// setting 1 learns "disconnected" first. Neither setting 0 nor an unplug
// clears it, so a later plug says "connected" at setting 0.
func TestPixelConnectionFollowsTheDataPathNotTheSetting(t *testing.T) {
	p, h := newCDCPhone(t, Pixel())
	if conn, _ := h.untilConnection(); conn.Connected() {
		t.Errorf("a fresh plug at setting 0: %v, want disconnected", conn)
	}
	h.start()
	if conn, _ := h.untilConnection(); !conn.Connected() {
		t.Errorf("after the start: %v", conn)
	}
	p.Unplug()
	p.Replug()
	tr, err := p.Open(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	h2 := newCDCHost(t, tr)
	if conn, _ := h2.untilConnection(); !conn.Connected() {
		t.Errorf("re-plugged, at setting 0: %v, want connected, as f_ncm's is_open stays", conn)
	}
}

// An interrupt endpoint of 8 bytes splits the 16-byte speed change over two
// transfers; ncm.NotificationReader joins them.
func TestSpeedChangeSplitsOverAnEightByteEndpoint(t *testing.T) {
	cfg := Pixel()
	cfg.NotifyMaxPacket = 8
	_, h := newCDCPhone(t, cfg)
	first, err := h.tr.WaitNotification(h.ctx)
	if err != nil || len(first) != 8 || first[1] != byte(ncm.NotifyConnectionSpeedChange) {
		t.Fatalf("first transfer %x, %v; want the speed change's 8-byte header", first, err)
	}
	h.notes.Feed(first)
	if _, ok := h.notes.Next(); ok {
		t.Fatal("a speed change without its data")
	}
	speed := h.notification()
	if speed.Code != ncm.NotifyConnectionSpeedChange || speed.DownlinkBitRate != gadgetBitRate {
		t.Errorf("joined: %v", speed)
	}
	if conn := h.notification(); conn.Code != ncm.NotifyNetworkConnection {
		t.Errorf("then %v", conn)
	}
}

func TestPixelAnswersARPAndDHCPInNTBs(t *testing.T) {
	cfg := Pixel()
	_, h := startedPhone(t, cfg)
	sender := hostAddr(cfg)
	h.send(arpRequestFor(cfg, sender), dhcpDiscover(t, h.mac))
	h.receiveFrame(isARPReply(cfg, sender))
	offer := h.receiveFrame(func(f []byte) bool { m, ok := dhcpReply(f); return ok && m.MessageType().String() == "OFFER" })
	m, _ := dhcpReply(offer)
	if !cfg.Subnet.Contains(addrOf(m.YourIPAddr)) {
		t.Errorf("offered %v, outside %v", m.YourIPAddr, cfg.Subnet)
	}
}

// The phone's NTBs are laid out as f_ncm's ncm_wrap_ntb lays them out: NTH,
// datagrams 4-byte aligned from offset 12, one NDP at the very end, 4-byte
// aligned, wSequence 0, no padding after it; at most 31 datagrams, no more
// than the input size.
func TestPixelLaysOutNTBsAsFNCM(t *testing.T) {
	cfg := Pixel()
	p, h := startedPhone(t, cfg)
	const requests = 80
	from := senders(cfg, requests)
	for i := 0; i < requests; i += 40 { // the host puts 40 datagrams in an NTB at most
		var frames [][]byte
		for _, a := range from[i : i+40] {
			frames = append(frames, arpRequestFor(cfg, a))
		}
		h.send(frames...)
	}
	lay := layoutOf(ncm.NTB16)
	for replies := 0; replies < requests; {
		block, frames := h.receive()
		r := ncm.NewReader(block, ncm.NTB16)
		ndp := lay.ndpAt(block)
		for i := 0; ; i++ {
			d, ok := r.Next()
			if !ok {
				break
			}
			if i == 0 && r.Offset() != ncm.NTH16Size || r.Offset()%4 != 0 || r.Offset()+len(d) > ndp {
				t.Errorf("datagram %d at %d (%d bytes), NDP at %d", i, r.Offset(), len(d), ndp)
			}
		}
		ndpLen := int(le.Uint16(block[ndp+ndpLengthAt:]))
		if r.Sequence() != 0 || ndp%4 != 0 || ndp+ndpLen != len(block) || lay.word(block, lay.blockLenAt) != len(block) {
			t.Errorf("wSequence %d, NDP at %d of %d bytes, wBlockLength %d, block %d bytes", r.Sequence(), ndp, ndpLen, lay.word(block, lay.blockLenAt), len(block))
		}
		if ndpLen != ncm.NDP16HeaderSize+(len(frames)+1)*ncm.NDP16EntrySize {
			t.Errorf("NDP wLength %d for %d datagrams: want the header, an entry each and the null entry", ndpLen, len(frames))
		}
		for _, f := range frames {
			if isARPReply(cfg, addrOfARPTarget(f))(f) {
				replies++
			}
		}
	}
	if s := p.Stats(); s.MaxPacketsToHost < 2 || s.MaxPacketsToHost > 31 || s.NTBsFromHost != 2 || s.MaxPacketsFromHost != 40 {
		t.Errorf("most datagrams per NTB to the host %d (want 2..31), %d NTBs of at most %d from it", s.MaxPacketsToHost, s.NTBsFromHost, s.MaxPacketsFromHost)
	}
}

// senders returns n addresses of the phone's subnet, from hostAddr on.
func senders(cfg Config, n int) []netip.Addr {
	out := []netip.Addr{hostAddr(cfg)}
	for len(out) < n {
		out = append(out, out[len(out)-1].Next())
	}
	return out
}

func addrOfARPTarget(frame []byte) netip.Addr {
	if len(frame) < header.EthernetMinimumSize+header.ARPSize {
		return netip.Addr{}
	}
	a, _ := netip.AddrFromSlice(header.ARP(frame[header.EthernetMinimumSize:]).ProtocolAddressTarget())
	return a
}

func addrOf(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip.To4())
	return a
}

// What f_ncm's ncm_unwrap_ntb refuses costs the whole transfer, datagrams
// before the fault included; what it takes, it takes: several NTBs in one
// transfer, and one zero byte after the last.
func TestPixelTakesHostNTBsAsFNCMChecksThem(t *testing.T) {
	cfg := Pixel()
	sender := hostAddr(cfg)
	arp := arpRequestFor(cfg, sender)
	lay := layoutOf(ncm.NTB16)
	cases := []struct {
		name     string
		transfer func(h *cdcHost) []byte
		frames   int // taken; 0: the transfer is refused
	}{
		{"one NTB", func(h *cdcHost) []byte { return h.block(arp, arp) }, 2},
		{"two NTBs back to back and a zero byte", func(h *cdcHost) []byte {
			return append(append(h.block(arp), h.block(arp, arp)...), 0)
		}, 3},
		{"wBlockLength 0: the rest of the transfer", func(h *cdcHost) []byte {
			b := h.block(arp)
			lay.putWord(b, lay.blockLenAt, 0)
			return b
		}, 1},
		{"NTB32 while NTB16 is negotiated", func(h *cdcHost) []byte {
			h.format = ncm.NTB32
			defer func() { h.format = ncm.NTB16 }()
			return h.block(arp)
		}, 0},
		{"an NDP with no datagram", func(h *cdcHost) []byte {
			b := h.block(arp)
			index, _ := lay.entry(lay.ndpAt(b), 0)
			lay.putWord(b, index, 0)
			return b
		}, 0},
		{"a datagram longer than wMaxSegmentSize", func(h *cdcHost) []byte {
			return h.block(arp, append(bytes.Clone(arp), make([]byte, 1515-len(arp))...))
		}, 0},
		{"a block longer than dwNtbOutMaxSize", func(h *cdcHost) []byte {
			h.outLimits.MaxSize = 20000
			defer func() { h.outLimits.MaxSize = 16384 }()
			var frames [][]byte
			for range 13 {
				frames = append(frames, append(bytes.Clone(arp), make([]byte, 1400)...))
			}
			return h.block(frames...)
		}, 0},
		{"an NDP not at a multiple of 4", func(h *cdcHost) []byte {
			b := append(h.block(arp), 0, 0) // room to move the NDP by 2
			ndp := lay.ndpAt(b)
			copy(b[ndp+2:], b[ndp:len(b)-2])
			lay.putWord(b, lay.ndpIndexAt, ndp+2)
			lay.putWord(b, lay.blockLenAt, len(b))
			return b
		}, 0},
		{"a transfer that fills whole packets without the extra byte", func(h *cdcHost) []byte {
			for n := len(arp); ; n++ {
				if b := h.block(append(bytes.Clone(arp), make([]byte, n-len(arp))...)); len(b) == 1024 {
					return b
				}
			}
		}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, h := startedPhone(t, cfg)
			before := p.Stats()
			h.write(c.transfer(h))
			s := p.Stats()
			if got := s.FramesFromHost - before.FramesFromHost; got != c.frames {
				t.Errorf("%d datagrams taken, want %d", got, c.frames)
			}
			if refused := s.LimitViolations - before.LimitViolations; (refused == 1) != (c.frames == 0) {
				t.Errorf("%d transfers refused", refused)
			}
		})
	}
}

// f_ncm stalls what it does not serve, and what it serves only in one
// form: the 8-byte SET_NTB_INPUT_SIZE (it lacks the capability), sizes it
// cannot send, formats it does not know, requests to another interface.
func TestPixelStallsWhatFNCMStalls(t *testing.T) {
	cases := []struct {
		name  string
		setup func(h *cdcHost) usb.Setup
		data  []byte
	}{
		{"8-byte SET_NTB_INPUT_SIZE", func(h *cdcHost) usb.Setup { return h.out(ncm.RequestSetNTBInputSize, 0) },
			ncm.NTBInputSize{MaxSize: 8192, MaxDatagrams: 8}.Marshal(ncm.CapNTBInputSize8Bytes)},
		{"SET_NTB_INPUT_SIZE below 2048", func(h *cdcHost) usb.Setup { return h.out(ncm.RequestSetNTBInputSize, 0) }, le.AppendUint32(nil, 2047)},
		{"SET_NTB_INPUT_SIZE above dwNtbInMaxSize", func(h *cdcHost) usb.Setup { return h.out(ncm.RequestSetNTBInputSize, 0) }, le.AppendUint32(nil, 16385)},
		{"SET_NTB_FORMAT 2", func(h *cdcHost) usb.Setup { return h.out(ncm.RequestSetNTBFormat, 2) }, nil},
		{"SET_CRC_MODE 2", func(h *cdcHost) usb.Setup { return h.out(ncm.RequestSetCRCMode, 2) }, nil},
		{"GET_MAX_DATAGRAM_SIZE", func(h *cdcHost) usb.Setup { return h.in(ncm.RequestGetMaxDatagramSize, 0) }, make([]byte, 2)},
		{"SET_MAX_DATAGRAM_SIZE", func(h *cdcHost) usb.Setup { return h.out(ncm.RequestSetMaxDatagramSize, 0) }, le.AppendUint16(nil, 1514)},
		{"GET_NET_ADDRESS", func(h *cdcHost) usb.Setup { return h.in(ncm.RequestGetNetAddress, 0) }, make([]byte, 6)},
		{"GET_NTB_PARAMETERS to the data interface", func(h *cdcHost) usb.Setup { return usb.ClassIn(ncm.RequestGetNTBParameters, 0, 1) }, make([]byte, 28)},
		{"GET_NTB_PARAMETERS sent as a SET", func(h *cdcHost) usb.Setup { return h.out(ncm.RequestGetNTBParameters, 0) }, nil},
		{"SET_ETHERNET_PACKET_FILTER with data", func(h *cdcHost) usb.Setup { return h.out(ncm.RequestSetEthernetPacketFilter, 0x0e) }, []byte{0}},
		{"an encapsulated command", func(h *cdcHost) usb.Setup { return h.out(usb.RequestSendEncapsulatedCommand, 0) }, make([]byte, 12)},
		{"string descriptor 4 in German", func(h *cdcHost) usb.Setup {
			return usb.Setup{RequestType: 0x80, Request: requestGetDescriptor, Value: descriptorString<<8 | 4, Index: 0x0407}
		}, make([]byte, 64)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, h := startedPhone(t, Pixel())
			if _, err := h.control(c.setup(h), c.data); !errors.Is(err, usb.ErrStall) {
				t.Errorf("%v: %v, want a stall", c.setup(h), err)
			}
			if s := p.Stats(); s.NTBInputSize != 16384 || s.NTBFormat != ncm.NTB16 || s.CRC {
				t.Errorf("a stalled request changed the function: input %d, %v, CRC %v", s.NTBInputSize, s.NTBFormat, s.CRC)
			}
		})
	}
}

// f_ncm resets format, CRC mode, input size and filter whenever the data
// interface leaves an active setting 1, for setting 1 again too: what a
// host negotiated at setting 0 holds only until its second SET_INTERFACE(1).
func TestPixelResetsNegotiationOnEverySetInterface(t *testing.T) {
	cfg := Pixel()
	p, h := newCDCPhone(t, cfg)
	h.setAlt(0)
	h.mustControl(h.out(ncm.RequestSetNTBFormat, uint16(ncm.NTB32)), nil)
	h.mustControl(h.out(ncm.RequestSetCRCMode, ncm.CRCAppended), nil)
	h.mustControl(h.out(ncm.RequestSetNTBInputSize, 0), le.AppendUint32(nil, 4096))
	h.setAlt(1)
	h.mustControl(h.out(ncm.RequestSetEthernetPacketFilter, uint16(ncm.FilterDirected)), nil)
	if s := p.Stats(); s.NTBFormat != ncm.NTB32 || !s.CRC || s.NTBInputSize != 4096 || s.PacketFilter != uint32(ncm.FilterDirected) {
		t.Fatalf("negotiated: %v, CRC %v, input %d, filter %#x", s.NTBFormat, s.CRC, s.NTBInputSize, s.PacketFilter)
	}
	var mode [2]byte
	h.mustControl(h.in(ncm.RequestGetCRCMode, 0), mode[:])
	var size [4]byte
	h.mustControl(h.in(ncm.RequestGetNTBInputSize, 0), size[:])
	if le.Uint16(mode[:]) != ncm.CRCAppended || le.Uint32(size[:]) != 4096 {
		t.Errorf("GET_CRC_MODE %x, GET_NTB_INPUT_SIZE %x", mode, size)
	}
	h.setAlt(1)
	if s := p.Stats(); s.NTBFormat != ncm.NTB16 || s.CRC || s.NTBInputSize != 16384 || s.PacketFilter != uint32(defaultFilter) {
		t.Errorf("after SET_INTERFACE(1) again: %v, CRC %v, input %d, filter %#x; want NTB16, no CRC, 16384, %#x",
			s.NTBFormat, s.CRC, s.NTBInputSize, s.PacketFilter, defaultFilter)
	}
	var format [2]byte
	h.mustControl(h.in(ncm.RequestGetNTBFormat, 0), format[:])
	if le.Uint16(format[:]) != uint16(ncm.NTB16) {
		t.Errorf("GET_NTB_FORMAT %x", format)
	}
}

// In CRC mode (NTB32 too) the phone appends each datagram's CRC-32 and
// signs its NDPs NCM1/ncm1, and wants the same from the host: CRC-less
// NDPs and wrong CRCs cost the transfer.
func TestPixelCRCModeAndNTB32BothWays(t *testing.T) {
	cfg := Pixel()
	p, h := newCDCPhone(t, cfg)
	h.setAlt(0)
	h.params = h.mustNTBParameters()
	h.mustControl(h.out(ncm.RequestSetNTBFormat, uint16(ncm.NTB32)), nil)
	h.mustControl(h.out(ncm.RequestSetCRCMode, ncm.CRCAppended), nil)
	h.setAlt(1)
	h.format, h.inputSize = ncm.NTB32, 16384
	var err error
	if h.outLimits, err = h.params.OutLimits(ncm.NTB32, 16384); err != nil {
		t.Fatal(err)
	}
	sender := hostAddr(cfg)
	arp := arpRequestFor(cfg, sender)

	h.write(h.withShortPacket(h.block(arp))) // no CRC
	if s := p.Stats(); s.LimitViolations != 1 || s.FramesFromHost != 0 {
		t.Fatalf("an NDP without CRC in CRC mode: %d refused, %d taken", s.LimitViolations, s.FramesFromHost)
	}
	withCRC := func(crc uint32) []byte {
		b := h.block(le.AppendUint32(bytes.Clone(arp), crc))
		lay := layoutOf(ncm.NTB32)
		le.PutUint32(b[lay.ndpAt(b):], ncm.SignatureNDP32CRC)
		return h.withShortPacket(b)
	}
	h.write(withCRC(crc32.ChecksumIEEE(arp) ^ 1))
	if s := p.Stats(); s.LimitViolations != 2 || s.FramesFromHost != 0 {
		t.Fatalf("a wrong CRC: %d refused, %d taken", s.LimitViolations, s.FramesFromHost)
	}
	h.write(withCRC(crc32.ChecksumIEEE(arp)))
	_, block := h.receiveMatch(isARPReply(cfg, sender))
	r := ncm.NewReader(block, ncm.NTB32)
	for d, ok := r.Next(); ok; d, ok = r.Next() {
		if !r.CRC() || le.Uint32(block[r.Offset()+len(d):]) != crc32.ChecksumIEEE(d) {
			t.Errorf("datagram at %d: NDP with CRC %v, CRC %x", r.Offset(), r.CRC(), block[r.Offset()+len(d):][:4])
		}
	}
}

// Data moves only at setting 1: at setting 0 the phone drops what the host
// sends and counts that the host sent it at all.
func TestPixelMovesDataOnlyAtSettingOne(t *testing.T) {
	cfg := Pixel()
	p, h := newCDCPhone(t, cfg)
	h.setAlt(0)
	h.params = h.mustNTBParameters()
	h.outLimits, _ = h.params.OutLimits(ncm.NTB16, 16384)
	h.send(arpRequest(cfg))
	if s := p.Stats(); s.DroppedFromHost != 1 || s.FramesFromHost != 0 || s.BulkWhileInactive != 1 {
		t.Errorf("at setting 0: %d dropped, %d taken, %d transfers counted as inactive", s.DroppedFromHost, s.FramesFromHost, s.BulkWhileInactive)
	}
	h.setAlt(1)
	h.inputSize = 16384
	h.send(arpRequest(cfg))
	h.receiveFrame(isARPReply(cfg, hostAddr(cfg)))
}
