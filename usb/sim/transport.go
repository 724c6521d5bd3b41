package sim

import (
	"context"
	"fmt"
	"sync"

	"github.com/rndis-netd/rndis-netd/internal/framebuf"
	"github.com/rndis-netd/rndis-netd/rndis"
	"github.com/rndis-netd/rndis-netd/usb"
)

// conn is one plug of the phone: the host's usb.Transport. It dies with an
// unplug. Bulk transfers are served on the host's calls (see bulk.go).
type conn struct {
	p      *Phone
	ctx    context.Context // done when unplugged or closed
	cancel context.CancelFunc
	frames [][]byte // of the host transfer being delivered, on the bulk-OUT caller

	rxMu sync.Mutex // a bulk-OUT transfer being delivered, or Close
	rx   framebuf.Receiver
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
		return rndis.ResponseAvailableNotification(), nil
	case <-c.ctx.Done():
		return nil, c.gone()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *conn) Close() error {
	c.cancel()
	c.p.release(c)
	c.rxMu.Lock()
	c.rx.Release()
	c.rxMu.Unlock()
	return nil
}
