package sim

import (
	"context"

	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/rndis-netd/rndis-netd/internal/framebuf"
)

// ReadBulk is the host's bulk-IN transfer: the phone packs the frames its
// stack has queued into buf, as many as are waiting and fit its function's
// limits and the host's, waiting for the first. Frames queued before a
// HALT or RESET were dropped with the phone's queue, as the spec says of
// outstanding packets. One transfer per call: the phone builds it when
// asked, so no other has completed.
func (c *conn) ReadBulk(ctx context.Context, buf []byte, sizes []int) (int, error) {
	c.countInactive()
	n, err := c.readTransfer(ctx, buf)
	if err != nil {
		return 0, err
	}
	sizes[0] = n
	return 1, nil
}

// countInactive counts a bulk transfer begun while the data interface has
// no bulk endpoints.
func (c *conn) countInactive() {
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if fn := p.fn.descriptor(); fn.DataAlt != 0 && p.stats.DataAlt != fn.DataAlt {
		p.stats.BulkWhileInactive++
	}
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
	w := p.fn.tx()
	w.begin(buf)
	for pkt := first; pkt != nil; pkt = p.nic.Read() {
		if !p.dataReadyLocked() || p.faults.dropToHost > 0 || !p.fn.passes(pkt) {
			if p.faults.dropToHost > 0 {
				p.faults.dropToHost--
			}
			p.stats.DroppedToHost++
			pkt.DecRef()
			continue
		}
		dst, ok, err := w.reserve(pkt.Size())
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
	count := w.count()
	if count == 0 {
		return 0
	}
	corrupt := p.faults.corruptBulk > 0
	if corrupt {
		p.faults.corruptBulk--
	}
	p.stats.TransfersToHost++
	p.stats.MaxPacketsToHost = max(p.stats.MaxPacketsToHost, count)
	return w.finish(corrupt)
}

// WriteBulk is the host's bulk-OUT transfer: the phone checks it against
// its function's rules and hands each frame to its stack.
func (c *conn) WriteBulk(ctx context.Context, data []byte) error {
	if err := c.gone(); err != nil {
		return err
	}
	c.countInactive()
	p := c.p
	p.mu.Lock()
	var violation bool
	c.frames, violation = p.fn.fromHost(data, c.frames[:0])
	ready := p.dataReadyLocked()
	p.stats.TransfersFromHost++
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
