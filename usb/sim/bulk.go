package sim

import (
	"context"
	"encoding/binary"

	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/rndis-netd/rndis-netd/internal/framebuf"
	"github.com/rndis-netd/rndis-netd/rndis"
	"github.com/rndis-netd/rndis-netd/usb"
)

// ReadBulk is the host's bulk-IN transfer: the phone packs the frames its
// stack has queued into buf, as many as are waiting and fit its limits and
// the host's, waiting for the first. Frames queued before a HALT or RESET
// were dropped with the phone's queue, as the spec says of outstanding
// packets. One transfer per call: the phone builds it when asked, so no
// other has completed.
func (c *conn) ReadBulk(ctx context.Context, buf []byte, sizes []int) (int, error) {
	n, err := c.readTransfer(ctx, buf)
	if err != nil {
		return 0, err
	}
	sizes[0] = n
	return 1, nil
}

func (c *conn) readTransfer(ctx context.Context, buf []byte) (int, error) {
	for {
		if err := c.gone(); err != nil {
			return 0, err
		}
		pkt := c.nextFrame(ctx)
		if pkt == nil {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			continue // unplugged: gone says so
		}
		if n := c.pack(pkt, buf); n > 0 {
			return n, nil
		}
	}
}

// nextFrame returns the first frame of the next transfer, waiting for one
// until ctx ends or the phone is unplugged (nil then).
func (c *conn) nextFrame(ctx context.Context) *stack.PacketBuffer {
	p := c.p
	p.mu.Lock()
	pkt := p.pending
	p.pending = nil
	p.mu.Unlock()
	if pkt != nil {
		return pkt
	}
	if pkt := p.nic.Read(); pkt != nil {
		return pkt
	}
	wait, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.ctx, cancel)()
	return p.nic.ReadContext(wait)
}

// pack builds one transfer into buf starting with first; it returns 0 when
// every frame was dropped.
func (c *conn) pack(first *stack.PacketBuffer, buf []byte) int {
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
		framebuf.CopyTo(dst, pkt)
		pkt.DecRef()
		p.stats.FramesToHost++
	}
	n := len(w.Bytes())
	if n == 0 {
		return 0
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
	return n
}

// WriteBulk is the host's bulk-OUT transfer: the phone checks it against
// its limits and hands each frame to its stack.
func (c *conn) WriteBulk(ctx context.Context, data []byte) error {
	if err := c.gone(); err != nil {
		return err
	}
	p := c.p
	c.frames = c.frames[:0]
	violation := c.parseFromHost(data)
	p.mu.Lock()
	ready := p.dataReadyLocked()
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
		return nil
	}
	c.rxMu.Lock()
	defer c.rxMu.Unlock()
	for _, frame := range c.frames {
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: c.rx.Make(frame)})
		p.nic.InjectInbound(0, pkt)
		pkt.DecRef()
	}
	return nil
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
