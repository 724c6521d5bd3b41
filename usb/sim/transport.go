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

var _ usb.Transport = (*conn)(nil)

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
		Manufacturer: "rndis-netd", Product: "simulated phone (" + cfg.Name + ")", Serial: cfg.Serial, Speed: "high",
		Function: usb.Function{
			Protocol: usb.ProtocolRNDIS, Config: 1, Control: usb.Class{Class: 0xE0, SubClass: 0x01, Protocol: 0x03},
			ControlIface: 0, DataIface: 1,
			Notify:  usb.Endpoint{Address: 0x81, Attributes: 3, MaxPacketSize: 8},
			BulkIn:  usb.Endpoint{Address: 0x82, Attributes: 2, MaxPacketSize: cfg.BulkMaxPacket},
			BulkOut: usb.Endpoint{Address: 0x01, Attributes: 2, MaxPacketSize: cfg.BulkMaxPacket},
		},
	}
}

// Control serves the class requests of the phone's RNDIS function: the
// encapsulated commands and responses. Anything else it stalls, as a
// device does a request it does not support.
func (c *conn) Control(ctx context.Context, s usb.Setup, data []byte) (int, error) {
	if err := c.gone(); err != nil {
		return 0, err
	}
	switch {
	case s == usb.ClassOut(usb.RequestSendEncapsulatedCommand, 0, 0):
		c.p.command(data)
		return len(data), nil
	case s == usb.ClassIn(usb.RequestGetEncapsulatedResponse, 0, 0):
		return c.response(data)
	}
	return 0, fmt.Errorf("simulated phone %s: %v: %w", c.p.cfg.Name, s, usb.ErrStall)
}

// response hands out the oldest queued control response; with none queued
// the phone stalls the request, as Linux's f_rndis does.
func (c *conn) response(buf []byte) (int, error) {
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.responses) == 0 {
		return 0, fmt.Errorf("simulated phone %s: no response pending: %w", p.cfg.Name, usb.ErrStall)
	}
	r := p.responses[0]
	p.responses = p.responses[1:]
	return copy(buf, r), nil
}

// SetAlternate accepts setting 0, the only one an RNDIS data interface has.
func (c *conn) SetAlternate(ctx context.Context, alt int) error {
	if err := c.gone(); err != nil {
		return err
	}
	if alt != 0 {
		return fmt.Errorf("simulated phone %s: data interface has no alternate setting %d: %w", c.p.cfg.Name, alt, usb.ErrStall)
	}
	return nil
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
