package sim

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/rndis-netd/rndis-netd/internal/framebuf"
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
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	cfg := p.cfg
	return usb.Info{
		Bus: 1, Address: 2, Path: cfg.Path, VendorID: cfg.VendorID, ProductID: cfg.ProductID,
		Manufacturer: manufacturer, Product: product(cfg), Serial: cfg.Serial, Speed: "high",
		Function: p.fn.descriptor(),
	}
}

// Control serves the function's class requests and GET_DESCRIPTOR for
// strings; anything else the phone stalls, as a device does a request it
// does not support.
func (c *conn) Control(ctx context.Context, s usb.Setup, data []byte) (int, error) {
	if err := c.gone(); err != nil {
		return 0, err
	}
	p := c.p
	p.mu.Lock()
	var n int
	var err error
	if isGetString(s) {
		n, err = p.stringDescriptor(s, data)
	} else {
		n, err = p.fn.control(s, data)
	}
	p.mu.Unlock()
	if errors.Is(err, errNoAnswer) {
		return 0, c.hang(ctx)
	}
	return n, err
}

// hang waits for the host to give up on a request the phone does not
// answer.
func (c *conn) hang(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-c.ctx.Done():
		return c.gone()
	}
}

// SetAlternate is SET_INTERFACE for the data interface.
func (c *conn) SetAlternate(ctx context.Context, alt int) error {
	if err := c.gone(); err != nil {
		return err
	}
	p := c.p
	p.mu.Lock()
	p.stats.SetInterfaces++
	err := p.fn.setAlternate(alt)
	p.mu.Unlock()
	if errors.Is(err, errNoAnswer) {
		return c.hang(ctx)
	}
	return err
}

// WaitNotification returns the function's next interrupt-IN transfer,
// waiting for one.
func (c *conn) WaitNotification(ctx context.Context) ([]byte, error) {
	p := c.p
	for {
		if err := c.gone(); err != nil {
			return nil, err
		}
		p.mu.Lock()
		b := p.fn.notification()
		p.mu.Unlock()
		if b != nil {
			return b, nil
		}
		select {
		case <-p.wake:
		case <-c.ctx.Done():
			return nil, c.gone()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
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
