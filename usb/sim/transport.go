package sim

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/rndis-netd/rndis-netd/rndis"
	"github.com/rndis-netd/rndis-netd/usb"
)

// conn is one plug of the phone: the host's usb.Transport. It dies with an
// unplug.
type conn struct {
	p       *Phone
	ctx     context.Context // done when unplugged or closed
	cancel  context.CancelFunc
	scratch []byte
}

func newConn(p *Phone) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	return &conn{p: p, ctx: ctx, cancel: cancel}
}

func (c *conn) gone() error {
	if c.ctx.Err() != nil {
		return fmt.Errorf("simulated phone %s: %w", c.p.cfg.Name, usb.ErrDeviceGone)
	}
	return nil
}

func (c *conn) Info() usb.Info {
	cfg := c.p.cfg
	return usb.Info{
		Bus: 1, Address: 2, Path: cfg.Path, VendorID: cfg.VendorID, ProductID: cfg.ProductID,
		Manufacturer: "rndis-netd", Product: "simulated phone (" + cfg.Name + ")", Serial: cfg.Serial,
		Speed: "high", Config: 1, Control: usb.Class{Class: 0xE0, SubClass: 0x01, Protocol: 0x03},
		ControlIface: 0, DataIface: 1, BulkInMaxPacket: cfg.BulkMaxPacket, BulkOutMaxPacket: cfg.BulkMaxPacket,
	}
}

func (c *conn) SendCommand(ctx context.Context, msg []byte) error {
	if err := c.gone(); err != nil {
		return err
	}
	c.p.command(msg)
	return nil
}

func (c *conn) GetResponse(ctx context.Context, buf []byte) (int, error) {
	if err := c.gone(); err != nil {
		return 0, err
	}
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.responses) == 0 {
		return 0, nil
	}
	r := p.responses[0]
	p.responses = p.responses[1:]
	return copy(buf, r), nil
}

func (c *conn) WaitNotification(ctx context.Context) ([]byte, error) {
	select {
	case <-c.p.notify:
		return binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, rndis.ResponseAvailable), 0), nil
	case <-c.ctx.Done():
		return nil, c.gone()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// ReadBulk waits for the phone's stack to send a frame, then packs as many
// queued frames as the phone's downlink limits and the host's
// MaxTransferSize allow.
func (c *conn) ReadBulk(ctx context.Context, buf []byte) (int, error) {
	p := c.p
	ctx, stop := mergeDone(ctx, c.ctx)
	defer stop()
	for {
		p.mu.Lock()
		pkt := p.pending
		p.pending = nil
		p.mu.Unlock()
		if pkt == nil {
			if pkt = p.nic.ReadContext(ctx); pkt == nil {
				if err := c.gone(); err != nil {
					return 0, err
				}
				return 0, ctx.Err()
			}
		}
		if n := c.pack(pkt, buf); n > 0 {
			return n, nil
		}
	}
}

// pack builds one transfer starting with first; it returns 0 when every
// frame was dropped.
func (c *conn) pack(first *stack.PacketBuffer, buf []byte) int {
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	limits := rndis.PacketLimits{
		MaxTransferSize:       min(p.cfg.DownlinkMaxSize, p.hostMaxXfer, len(buf)),
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
		c.scratch = c.scratch[:0]
		for _, s := range pkt.AsSlices() {
			c.scratch = append(c.scratch, s...)
		}
		ok, err := w.Add(c.scratch)
		if err != nil {
			p.stats.DroppedToHost++
			pkt.DecRef()
			continue
		}
		if !ok {
			p.pending = pkt // first of the next transfer
			break
		}
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
	if usb.ShortPacketPad(n, p.cfg.BulkMaxPacket) > 0 && n < len(buf) {
		buf[n] = 0 // the device side of the short-packet rule
		n++
	}
	return n
}

// WriteBulk takes one transfer from the host: it checks the phone's limits
// and delivers each frame to the phone's stack.
func (c *conn) WriteBulk(ctx context.Context, transfer []byte) error {
	if err := c.gone(); err != nil {
		return err
	}
	p := c.p
	p.mu.Lock()
	p.stats.TransfersFromHost++
	ready := p.dataReadyLocked()
	violation := c.violatesLimitsLocked(transfer)
	if violation {
		p.stats.LimitViolations++
	}
	p.mu.Unlock()
	if violation {
		return nil // a real device drops what it cannot parse
	}
	r := rndis.NewPacketReader(transfer)
	n := 0
	for frame, ok := r.Next(); ok; frame, ok = r.Next() {
		n++
		if !ready {
			continue
		}
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(bytes.Clone(frame))})
		p.nic.InjectInbound(0, pkt)
		pkt.DecRef()
	}
	p.mu.Lock()
	if ready {
		p.stats.FramesFromHost += n
	} else {
		p.stats.DroppedFromHost += n
	}
	p.stats.MaxPacketsFromHost = max(p.stats.MaxPacketsFromHost, n)
	p.mu.Unlock()
	return nil
}

// violatesLimitsLocked reports a transfer that breaks what the phone
// announced in INITIALIZE_CMPLT: size, packet count, alignment, or format.
func (c *conn) violatesLimitsLocked(transfer []byte) bool {
	cfg := c.p.cfg
	size := len(transfer) - usb.ShortPacketPad(len(transfer)-1, cfg.BulkMaxPacket)
	if size > cfg.MaxTransferSize {
		return true
	}
	r := rndis.NewPacketReader(transfer)
	n := 0
	for _, ok := r.Next(); ok; _, ok = r.Next() {
		if (r.Offset()-rndis.PacketHeaderSize)%(1<<cfg.AlignmentShift) != 0 {
			return true
		}
		n++
	}
	return r.Err() != nil || n == 0 || n > cfg.MaxPacketsPerTransfer
}

func (c *conn) Close() error {
	c.cancel()
	c.p.release(c)
	return nil
}

// mergeDone returns a context done when either a or b is.
func mergeDone(a, b context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(a)
	stop := context.AfterFunc(b, cancel)
	return ctx, func() { stop(); cancel() }
}
