package framebuf

import (
	"bytes"
	"testing"
	"unsafe"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

var (
	src4 = tcpip.AddrFrom4([4]byte{192, 168, 42, 129})
	dst4 = tcpip.AddrFrom4([4]byte{192, 168, 42, 2})
	src6 = tcpip.AddrFrom16([16]byte{0xfd, 15: 1})
	dst6 = tcpip.AddrFrom16([16]byte{0xfd, 15: 2})
)

// frame builds an Ethernet frame: IP header (20 + ipOptions bytes for IPv4,
// 40 for IPv6), transport header of transportLen bytes, and payload bytes.
func frame(ipv6 bool, ipOptions int, proto tcpip.TransportProtocolNumber, transportLen, payload int) []byte {
	ipLen := header.IPv4MinimumSize + ipOptions
	etherType := header.IPv4ProtocolNumber
	if ipv6 {
		ipLen, etherType = header.IPv6MinimumSize, header.IPv6ProtocolNumber
	}
	f := make([]byte, header.EthernetMinimumSize+ipLen+transportLen+payload)
	header.Ethernet(f).Encode(&header.EthernetFields{Type: etherType})
	ip := f[header.EthernetMinimumSize:]
	if ipv6 {
		header.IPv6(ip).Encode(&header.IPv6Fields{PayloadLength: uint16(transportLen + payload),
			TransportProtocol: proto, HopLimit: 64, SrcAddr: src6, DstAddr: dst6})
	} else {
		opts := make(header.IPv4OptionsSerializer, 0)
		if ipOptions > 0 {
			opts = header.IPv4OptionsSerializer{&header.IPv4SerializableRouterAlertOption{}}
		}
		header.IPv4(ip).Encode(&header.IPv4Fields{TotalLength: uint16(len(ip)), TTL: 64,
			Protocol: uint8(proto), SrcAddr: src4, DstAddr: dst4, Options: opts})
	}
	t := ip[ipLen:]
	switch proto {
	case header.TCPProtocolNumber:
		header.TCP(t).Encode(&header.TCPFields{DataOffset: uint8(transportLen), Flags: header.TCPFlagAck})
	case header.UDPProtocolNumber:
		header.UDP(t).Encode(&header.UDPFields{Length: uint16(transportLen + payload)})
	}
	for i := len(f) - payload; i < len(f); i++ {
		f[i] = byte(i * 7)
	}
	return f
}

func viewSizes(b buffer.Buffer) []int {
	var sizes []int
	b.Apply(func(v *buffer.View) { sizes = append(sizes, v.Size()) })
	return sizes
}

func TestMakePutsThePayloadInAViewOfItsOwn(t *testing.T) {
	tcp, udp := header.TCPProtocolNumber, header.UDPProtocolNumber
	for _, c := range []struct {
		name  string
		frame []byte
		views []int // sizes; one view: the frame is copied whole
	}{
		{"TCP/IPv4 with timestamps", frame(false, 0, tcp, 32, 1448), []int{66, 1448}},
		{"TCP/IPv4 with IP options and SACK blocks", frame(false, 4, tcp, 60, 1000), []int{98, 1000}},
		{"TCP/IPv6", frame(true, 0, tcp, 20, 1440), []int{74, 1440}},
		{"UDP/IPv4", frame(false, 0, udp, 8, 1472), []int{42, 1472}},
		{"ICMP: headers unknown below IP", frame(false, 0, header.ICMPv4ProtocolNumber, 8, 1000), []int{34, 1008}},
		{"pure ACK", frame(false, 0, tcp, 32, 0), []int{66}},
		{"small segment", frame(false, 0, tcp, 32, 100), []int{166}},
		{"not IP", append(header.Ethernet(make([]byte, 14)), make([]byte, 1000)...), []int{1014}},
	} {
		var frames Receiver
		b := frames.Make(c.frame)
		if got := b.Flatten(); !bytes.Equal(got, c.frame) {
			t.Errorf("%s: buffer holds other bytes than the frame", c.name)
		}
		if got := viewSizes(b); !equal(got, c.views) {
			t.Errorf("%s: views of %v bytes, want %v", c.name, got, c.views)
		}
		b.Release()
	}
}

func TestMakeCopiesDamagedFramesWhole(t *testing.T) {
	good := frame(false, 0, header.TCPProtocolNumber, 32, 1448)
	fragment := bytes.Clone(good)
	header.IPv4(fragment[14:]).SetFlagsFragmentOffset(header.IPv4FlagMoreFragments, 0)
	badIHL := bytes.Clone(good)
	badIHL[14] = 0x4f // 60-byte header claimed, with TCP after 20
	badIHL[14+10], badIHL[14+11] = 0, 0
	longer := bytes.Clone(good)
	header.IPv4(longer[14:]).SetTotalLength(3000)
	tcpOffset := bytes.Clone(good)
	tcpOffset[14+20+12] = 0xf0 // 60-byte TCP header: fits, still one split
	for name, f := range map[string][]byte{"fragment": fragment, "total length past the frame": longer,
		"runt": good[:20], "truncated TCP header": good[:14+20+10]} {
		var frames Receiver
		b := frames.Make(f)
		if got := b.Flatten(); !bytes.Equal(got, f) {
			t.Errorf("%s: buffer holds other bytes than the frame", name)
		}
		if got := viewSizes(b); len(got) > 1 {
			t.Errorf("%s: split into views of %v bytes", name, got)
		}
		b.Release()
	}
	for name, f := range map[string][]byte{"bad IHL": badIHL, "long TCP offset": tcpOffset} {
		var frames Receiver
		b := frames.Make(f)
		if got := b.Flatten(); !bytes.Equal(got, f) {
			t.Errorf("%s: buffer holds other bytes than the frame", name)
		}
		b.Release()
	}
}

func payloadStart(b buffer.Buffer) *byte {
	views := b.AsViewList()
	return &views.Back().AsSlice()[0]
}

func TestLargePayloadsShareASlab(t *testing.T) {
	var frames Receiver
	defer frames.Release()
	large := frame(false, 0, header.TCPProtocolNumber, 32, 1448)
	first, second := frames.Make(large), frames.Make(large)
	defer first.Release()
	defer second.Release()
	if got, want := payloadStart(second), unsafe.Add(unsafe.Pointer(payloadStart(first)), 1448); unsafe.Pointer(got) != want {
		t.Error("the second payload does not follow the first in the slab")
	}

	small := frame(false, 0, header.TCPProtocolNumber, 32, minSharedPayload-1)
	third := frames.Make(small)
	defer third.Release()
	if got, next := payloadStart(third), unsafe.Add(unsafe.Pointer(payloadStart(second)), 1448); unsafe.Pointer(got) == next {
		t.Error("a small payload went into the slab")
	}
}

// Frames keep their bytes while the slab fills, moves on and is reused.
func TestSlabbedFramesKeepTheirBytes(t *testing.T) {
	var frames Receiver
	var held []buffer.Buffer
	var want [][]byte
	for i := range 1000 {
		f := frame(i%3 == 0, 0, header.UDPProtocolNumber, 8, 300+i%1200)
		f[len(f)-1] = byte(i)
		held = append(held, frames.Make(f))
		want = append(want, f)
		if i%7 == 0 { // let some go early so that slabs return to the pool
			held[i/2].Release()
			held[i/2] = buffer.Buffer{}
			want[i/2] = nil
		}
	}
	frames.Release()
	for i := range held {
		if want[i] != nil && !bytes.Equal(held[i].Flatten(), want[i]) {
			t.Fatalf("frame %d changed", i)
		}
		held[i].Release()
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A header parsed while gVisor holds another reference to its view must not
// copy the payload: the IPv4 endpoint does exactly that with every packet.
func TestSharedHeaderLeavesPayloadInPlace(t *testing.T) {
	f := frame(false, 0, header.TCPProtocolNumber, 32, 1448)
	var frames Receiver
	defer frames.Release()
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: frames.Make(f)})
	defer pkt.DecRef()
	payload := func() *byte {
		views, _ := pkt.AsViewList()
		return &views.Back().AsSlice()[0]
	}
	before := payload()
	if _, ok := pkt.LinkHeader().Consume(header.EthernetMinimumSize); !ok {
		t.Fatal("no Ethernet header")
	}
	if _, ok := pkt.NetworkHeader().Consume(header.IPv4MinimumSize); !ok {
		t.Fatal("no IPv4 header")
	}
	held := pkt.NetworkHeader().View()
	defer held.Release()
	if got := pkt.NetworkHeader().Slice(); !bytes.Equal(got, f[14:34]) {
		t.Fatalf("network header %x, want %x", got, f[14:34])
	}
	if payload() != before {
		t.Error("parsing a shared header copied the payload")
	}
	if got := pkt.Data().AsRange().ToSlice(); !bytes.Equal(got, f[34:]) {
		t.Error("payload changed")
	}
}

func TestCopyToTakesHeadersAndPayload(t *testing.T) {
	f := frame(false, 0, header.TCPProtocolNumber, 32, 1448)
	payload := buffer.MakeWithData(f[66:400])
	payload.Append(buffer.NewViewWithData(f[400:]))
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{ReserveHeaderBytes: 128, Payload: payload})
	defer pkt.DecRef()
	copy(pkt.TransportHeader().Push(32), f[34:66])
	copy(pkt.NetworkHeader().Push(20), f[14:34])
	copy(pkt.LinkHeader().Push(14), f[:14])

	dst := make([]byte, pkt.Size())
	if n := CopyTo(dst, pkt); n != len(f) || !bytes.Equal(dst, f) {
		t.Errorf("CopyTo copied %d bytes, want the %d of the frame", n, len(f))
	}
	if allocs := testing.AllocsPerRun(100, func() { CopyTo(dst, pkt) }); allocs != 0 {
		t.Errorf("CopyTo allocates %.0f times", allocs)
	}
}

func FuzzReceiver(f *testing.F) {
	f.Add(frame(false, 4, header.TCPProtocolNumber, 60, 1000), uint16(44))
	f.Add(frame(true, 0, header.UDPProtocolNumber, 8, 1300), uint16(0))
	f.Fuzz(func(t *testing.T, frame []byte, off uint16) {
		var copying, reading Receiver
		defer copying.Release()
		defer reading.Release()
		copied := copying.Make(frame)
		defer copied.Release()
		if !bytes.Equal(copied.Flatten(), frame) {
			t.Fatal("Make: the buffer holds other bytes than the frame")
		}
		o := int(off) % 1024
		if o+len(frame) > slabSize {
			return
		}
		space := reading.Space(o + len(frame))
		copy(space[o:], frame)
		inPlace := reading.MakeInPlace(space[o:o+len(frame)], o)
		defer inPlace.Release()
		next := reading.Space(16 << 10) // where the next transfer goes
		for i := range min(len(next), len(frame)) {
			next[i] = 0xee
		}
		if !bytes.Equal(inPlace.Flatten(), frame) {
			t.Fatal("MakeInPlace: the buffer holds other bytes than the frame")
		}
	})
}

// A transfer read into Space keeps its large payloads where they are, and the
// next Space never hands out their bytes again.
func TestMakeInPlaceReferencesTheTransfer(t *testing.T) {
	var frames Receiver
	defer frames.Release()
	large := frame(false, 0, header.TCPProtocolNumber, 32, 1448)
	small := frame(false, 0, header.TCPProtocolNumber, 32, 100)
	var held []buffer.Buffer
	var want [][]byte
	for i := range 200 { // several slabs
		space := frames.Space(16 << 10)
		for k := range space { // must not reach the payloads handed out
			space[k] = 0xee
		}
		off := 0
		elsewhere := bytes.Clone(large) // not in the space: copied
		b := frames.MakeInPlace(elsewhere, 0)
		if !bytes.Equal(b.Flatten(), large) || payloadStart(b) == &space[66] {
			t.Fatalf("transfer %d: a frame from elsewhere was not copied", i)
		}
		held, want = append(held, b), append(want, large)
		for j, f := range [][]byte{large, small, large} {
			f = bytes.Clone(f)
			f[len(f)-1] = byte(i*3 + j)
			off += 44 // an RNDIS header
			copy(space[off:], f)
			b := frames.MakeInPlace(space[off:off+len(f)], off)
			if j == 0 && payloadStart(b) != &space[off+66] {
				t.Fatalf("transfer %d: the payload was copied", i)
			}
			held, want = append(held, b), append(want, f)
			off += len(f)
		}
	}
	for i := range held {
		if !bytes.Equal(held[i].Flatten(), want[i]) {
			t.Fatalf("frame %d changed", i)
		}
		held[i].Release()
	}
}
