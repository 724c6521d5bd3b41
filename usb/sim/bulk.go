package sim

import (
	"context"
	"encoding/binary"
	"sync"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/rndis-netd/rndis-netd/rndis"
	"github.com/rndis-netd/rndis-netd/usb"
)

// transfersInFlight is how many host transfers the phone's USB controller
// holds before the host's writes wait, as a real one queues requests.
const transfersInFlight = 8

// transfer is one bulk transfer, stamped with the phone's reset epoch: a
// transfer from before a HALT or RESET is discarded, as the spec says of
// outstanding packets.
type transfer struct {
	buf   *[]byte
	epoch uint64
}

var transferPool = sync.Pool{New: func() any { b := make([]byte, 0, 32*1024); return &b }}

func getBuffer(n int) *[]byte {
	b := transferPool.Get().(*[]byte)
	if cap(*b) < n {
		*b = make([]byte, 0, n)
	}
	*b = (*b)[:n]
	return b
}

func putBuffer(b *[]byte) { transferPool.Put(b) }

// downlink is the phone packing its stack's frames into transfers for the
// host: as many as are queued and fit its limits and the host's.
func (c *conn) downlink() {
	p := c.p
	for {
		p.mu.Lock()
		pkt := p.pending
		p.pending = nil
		p.mu.Unlock()
		if pkt == nil {
			if pkt = p.nic.ReadContext(c.ctx); pkt == nil {
				return
			}
		}
		b := getBuffer(max(p.cfg.DownlinkMaxSize, rndis.PacketHeaderSize+p.cfg.MTU+14) + 1)
		n, epoch := c.pack(pkt, *b)
		if n == 0 {
			putBuffer(b)
			continue
		}
		*b = (*b)[:n]
		select {
		case c.toHost <- transfer{b, epoch}:
		case <-c.ctx.Done():
			putBuffer(b)
			return
		}
	}
}

// ReadBulk returns the next transfer the phone packed.
func (c *conn) ReadBulk(ctx context.Context, buf []byte) (int, error) {
	for {
		select {
		case t := <-c.toHost:
			n := copy(buf, *t.buf)
			putBuffer(t.buf)
			if !c.current(t.epoch) {
				continue // packed before a halt or reset
			}
			return n, nil
		case <-c.ctx.Done():
			return 0, c.gone()
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

func (c *conn) current(epoch uint64) bool {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	return c.p.epoch == epoch
}

// pack builds one transfer starting with first; it returns 0 when every
// frame was dropped.
func (c *conn) pack(first *stack.PacketBuffer, buf []byte) (int, uint64) {
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	limits := rndis.PacketLimits{
		MaxTransferSize:       min(p.cfg.DownlinkMaxSize, p.hostMaxXfer, len(buf)-1),
		MaxPacketsPerTransfer: p.cfg.DownlinkMaxPackets,
		Alignment:             1 << p.cfg.AlignmentShift,
	}
	w := rndis.NewPacketWriter(buf[:0], limits)
	for pkt := first; pkt != nil; pkt = p.nic.Read() {
		if !p.dataReadyLocked() || p.faults.dropToHost > 0 {
			if p.faults.dropToHost > 0 {
				p.faults.dropToHost--
			}
			p.stats.DroppedToHost++
			pkt.DecRef()
			continue
		}
		dst, ok, err := w.Reserve(pkt.Size())
		if err != nil {
			p.stats.DroppedToHost++
			pkt.DecRef()
			continue
		}
		if !ok {
			p.pending = pkt // first of the next transfer
			break
		}
		off := 0
		for _, s := range pkt.AsSlices() {
			off += copy(dst[off:], s)
		}
		pkt.DecRef()
		p.stats.FramesToHost++
	}
	n := len(w.Bytes())
	if n == 0 {
		return 0, p.epoch
	}
	p.stats.TransfersToHost++
	p.stats.MaxPacketsToHost = max(p.stats.MaxPacketsToHost, w.Count())
	if p.faults.corruptBulk > 0 {
		p.faults.corruptBulk--
		binary.LittleEndian.PutUint32(buf[12:], 0xffffff00) // DataLength of the first message
	}
	if usb.ShortPacketPad(n, p.cfg.BulkMaxPacket) > 0 {
		buf[n] = 0 // the device side of the short-packet rule
		n++
	}
	return n, p.epoch
}

// WriteBulk queues one transfer from the host for the phone; it blocks
// while the phone has transfersInFlight waiting.
func (c *conn) WriteBulk(ctx context.Context, data []byte) error {
	if err := c.gone(); err != nil {
		return err
	}
	b := getBuffer(len(data))
	copy(*b, data)
	c.p.mu.Lock()
	epoch := c.p.epoch
	c.p.mu.Unlock()
	select {
	case c.fromHost <- transfer{b, epoch}:
		return nil
	case <-c.ctx.Done():
		putBuffer(b)
		return c.gone()
	case <-ctx.Done():
		putBuffer(b)
		return ctx.Err()
	}
}

// uplink is the phone taking the host's transfers: it checks them against
// its limits and delivers each frame to its stack.
func (c *conn) uplink() {
	for {
		select {
		case t := <-c.fromHost:
			c.receive(*t.buf, t.epoch)
			putBuffer(t.buf)
		case <-c.ctx.Done():
			return
		}
	}
}

func (c *conn) receive(data []byte, epoch uint64) {
	p := c.p
	c.frames = c.frames[:0]
	violation := c.parseFromHost(data)
	p.mu.Lock()
	ready := p.dataReadyLocked() && p.epoch == epoch
	p.stats.TransfersFromHost++
	p.stats.MaxPacketsFromHost = max(p.stats.MaxPacketsFromHost, len(c.frames))
	switch {
	case violation:
		p.stats.LimitViolations++ // a real device drops what it cannot parse
	case ready:
		p.stats.FramesFromHost += len(c.frames)
	default:
		p.stats.DroppedFromHost += len(c.frames)
	}
	p.mu.Unlock()
	if violation || !ready {
		return
	}
	for _, frame := range c.frames {
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(frame)}) // copies
		p.nic.InjectInbound(0, pkt)
		pkt.DecRef()
	}
}

// parseFromHost collects the frames of a host transfer in c.frames and
// reports whether the transfer breaks what the phone announced in
// INITIALIZE_CMPLT: size, packet count, alignment, or format.
func (c *conn) parseFromHost(data []byte) (violation bool) {
	cfg := c.p.cfg
	size := len(data) - usb.ShortPacketPad(len(data)-1, cfg.BulkMaxPacket)
	r := rndis.NewPacketReader(data)
	for frame, ok := r.Next(); ok; frame, ok = r.Next() {
		if (r.Offset()-rndis.PacketHeaderSize)%(1<<cfg.AlignmentShift) != 0 {
			violation = true
		}
		c.frames = append(c.frames, frame)
	}
	return violation || size > cfg.MaxTransferSize || r.Err() != nil || len(c.frames) == 0 ||
		len(c.frames) > cfg.MaxPacketsPerTransfer
}
