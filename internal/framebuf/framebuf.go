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
	// slabSize is the chunk that the payloads of successive frames share.
	slabSize = 16 << 10
	// minSharedPayload: smaller payloads get a chunk of their own, so that
	// one cannot keep a slab of many times its size from being freed.
	minSharedPayload = 1 << 10
)

// A Copier copies received frames into packet buffers. The headers
// (Ethernet, IP and TCP or UDP) go to a view of their own: gVisor's IP
// endpoints hold a reference to the network header's view while they parse
// the header again, and parsing a header in a shared view copies the view's
// whole chunk. Large payloads are packed one after another into a shared
// slab, as gVisor's own TCP shares the chunks of what it sends: one chunk
// is allocated, zeroed and freed per slab rather than per frame, and a
// reader copies them out of contiguous memory.
//
// A Copier belongs to one goroutine; its zero value is ready to use.
type Copier struct {
	slab *buffer.View // [0, used) is handed out, the rest is free
	used int
}

// Make copies frame into a new buffer.
func (c *Copier) Make(frame []byte) buffer.Buffer {
	n := headersLen(frame)
	if n == 0 || len(frame) <= smallFrame {
		return buffer.MakeWithData(frame)
	}
	b := buffer.MakeWithView(buffer.NewViewWithData(frame[:n]))
	payload := buffer.MakeWithView(c.payloadView(frame[n:]))
	b.Merge(&payload) // Append would fill the headers' chunk with payload
	return b
}

func (c *Copier) payloadView(payload []byte) *buffer.View {
	if len(payload) < minSharedPayload {
		return buffer.NewViewWithData(payload)
	}
	if c.slab == nil || slabSize-c.used < len(payload) {
		c.Release()
		c.slab = buffer.NewViewSize(slabSize)
	}
	// The slab's bytes past used are seen by nobody yet, so they are written
	// in place; View.Write would copy the shared chunk first.
	copy(c.slab.AsSlice()[c.used:], payload)
	v := c.slab.Clone()
	v.TrimFront(c.used)
	v.CapLength(len(payload))
	c.used += len(payload)
	return v
}

// Release lets the current slab go once the frames in it are done with.
func (c *Copier) Release() {
	if c.slab != nil {
		c.slab.Release()
		c.slab, c.used = nil, 0
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
