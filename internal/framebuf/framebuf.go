// Package framebuf moves Ethernet frames between byte slices (USB
// transfers) and gVisor packet buffers with the fewest copies gVisor allows.
package framebuf

import (
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

const (
	// smallFrame bytes or fewer are cheaper to copy whole than in two views.
	smallFrame = 256
	// slabSize is the chunk that the payloads of successive frames share:
	// gVisor's largest pooled chunk, room for three 16 KiB transfers.
	slabSize = buffer.MaxChunkSize
	// minSharedPayload: smaller payloads get a chunk of their own, so that
	// one cannot keep a slab of many times its size from being freed.
	minSharedPayload = 1 << 10
)

// A Receiver turns received frames into packet buffers. The headers
// (Ethernet, IP and TCP or UDP) are copied to a view of their own: gVisor's
// IP endpoints hold a reference to the network header's view while they
// parse the header again, and parsing a header in a shared view copies the
// view's whole chunk. Large payloads live in shared slabs, as gVisor's own
// TCP shares the chunks of what it sends: a transfer read into Space keeps
// them where they are (MakeInPlace), and Make packs copies of them one after
// another. One chunk is allocated, zeroed and freed per slab rather than per
// frame, and a reader copies payloads out of contiguous memory.
//
// The price: a slab is freed with the last frame in it, and gVisor charges a
// socket only the frame's bytes. A frame left unread keeps its 64 KiB slab
// alive, so a slow reader among busy connections can hold up to 64 times
// the bytes it has buffered. Payloads under 1 KiB get chunks of their own so
// that the factor stays there.
//
// A Receiver belongs to one goroutine and serves one of the two ways:
// Space and MakeInPlace, or Make. Its zero value is ready to use.
type Receiver struct {
	slab  *buffer.View // [0, used) is handed out, the rest is free
	used  int
	space []byte // what Space returned last
	start int    // where in the slab it begins
}

// Space returns the free bytes of the current slab, at least n of them (a
// new slab when fewer are left), for a transfer to be read into. Frames of
// that transfer given to MakeInPlace keep their payloads where they are.
func (r *Receiver) Space(n int) []byte {
	if n > slabSize {
		panic("framebuf: space asked for exceeds a slab")
	}
	r.room(n)
	r.space, r.start = r.slab.AsSlice()[r.used:], r.used
	return r.space
}

// MakeInPlace is Make for a frame that begins off bytes into the space
// Space returned last: a large payload is not copied but referenced. A frame
// found elsewhere is copied, into no slab: the transfer's slab stays current.
func (r *Receiver) MakeInPlace(frame []byte, off int) buffer.Buffer {
	n := headersLen(frame)
	if n == 0 || len(frame) <= smallFrame {
		return buffer.MakeWithData(frame)
	}
	if len(frame)-n < minSharedPayload || off < 0 || off+len(frame) > len(r.space) || &r.space[off] != &frame[0] {
		return headersApart(frame[:n], buffer.NewViewWithData(frame[n:]))
	}
	start := r.start + off + n
	r.used = max(r.used, start+len(frame)-n)
	return headersApart(frame[:n], r.share(start, len(frame)-n))
}

// Make copies frame into a new buffer.
func (r *Receiver) Make(frame []byte) buffer.Buffer {
	n := headersLen(frame)
	if n == 0 || len(frame) <= smallFrame {
		return buffer.MakeWithData(frame)
	}
	return headersApart(frame[:n], r.payloadView(frame[n:]))
}

// headersApart returns a buffer of a copy of headers, in a view of its own,
// followed by payload.
func headersApart(headers []byte, payload *buffer.View) buffer.Buffer {
	b := buffer.MakeWithView(buffer.NewViewWithData(headers))
	p := buffer.MakeWithView(payload)
	b.Merge(&p) // Append would fill the headers' chunk with payload
	return b
}

func (r *Receiver) payloadView(payload []byte) *buffer.View {
	if len(payload) < minSharedPayload {
		return buffer.NewViewWithData(payload)
	}
	r.room(len(payload))
	// The slab's bytes past used are seen by nobody yet, so they are written
	// in place; View.Write would copy the shared chunk first.
	copy(r.slab.AsSlice()[r.used:], payload)
	v := r.share(r.used, len(payload))
	r.used += len(payload)
	return v
}

// share returns a view of the slab's bytes [off, off+n).
func (r *Receiver) share(off, n int) *buffer.View {
	v := r.slab.Clone()
	v.TrimFront(off)
	v.CapLength(n)
	return v
}

// room makes sure the current slab has n free bytes, starting a new one if
// it has not.
func (r *Receiver) room(n int) {
	if r.slab == nil || slabSize-r.used < n {
		r.Release()
		r.slab = buffer.NewViewSize(slabSize)
	}
}

// Release lets the current slab go once the frames in it are done with.
func (r *Receiver) Release() {
	if r.slab != nil {
		r.slab.Release()
		r.slab, r.used, r.space, r.start = nil, 0, nil, 0
	}
}

// headersLen returns the length of frame's Ethernet, IP and TCP or UDP
// headers, or 0 when they are not whole or not of a kind it knows; the
// netstack validates them afterwards.
func headersLen(frame []byte) int {
	if len(frame) < header.EthernetMinimumSize {
		return 0
	}
	n := header.EthernetMinimumSize
	var transport tcpip.TransportProtocolNumber
	switch header.Ethernet(frame).Type() {
	case header.IPv4ProtocolNumber:
		ip := header.IPv4(frame[n:])
		if !ip.IsValid(len(ip)) || ip.More() || ip.FragmentOffset() != 0 {
			return 0
		}
		n += int(ip.HeaderLength())
		transport = ip.TransportProtocol()
	case header.IPv6ProtocolNumber:
		ip := header.IPv6(frame[n:])
		if !ip.IsValid(len(ip)) {
			return 0
		}
		n += header.IPv6MinimumSize
		transport = ip.TransportProtocol() // extension headers: not TCP or UDP
	default:
		return 0
	}
	switch transport {
	case header.TCPProtocolNumber:
		if len(frame) < n+header.TCPMinimumSize {
			return 0
		}
		n += int(header.TCP(frame[n:]).DataOffset())
	case header.UDPProtocolNumber:
		n += header.UDPMinimumSize
	}
	if n > len(frame) {
		return 0
	}
	return n
}

// CopyTo copies the frame in pkt, headers and payload, into dst, which must
// hold pkt.Size() bytes, and returns how many bytes it copied. It allocates
// nothing, unlike PacketBuffer.AsSlices.
func CopyTo(dst []byte, pkt *stack.PacketBuffer) int {
	views, skip := pkt.AsViewList()
	n := 0
	for v := views.Front(); v != nil; v = v.Next() {
		b := v.AsSlice()
		if skip >= len(b) {
			skip -= len(b)
			continue
		}
		n += copy(dst[n:], b[skip:])
		skip = 0
	}
	return n
}
