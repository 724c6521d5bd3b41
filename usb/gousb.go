//go:build cgo

package usb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/gousb"
)

// Host is the USB bus as libusb sees it.
type Host struct {
	ctx *gousb.Context
}

// NewHost opens libusb. Close it when done.
func NewHost() (*Host, error) {
	return &Host{ctx: gousb.NewContext()}, nil
}

// Close releases libusb.
func (h *Host) Close() error { return h.ctx.Close() }

// Candidate is one USB tether on the bus.
type Candidate struct {
	Info                 // Info.Function is the function Preference ranks first
	Functions []Function // every network function the device offers
	OpenErr   error      // why it cannot be used (permission, no usable function), or nil
}

const controlTimeout = 5 * time.Second

// List returns every device with the control interface of a tether, with
// its strings and functions where it could be opened and the reason where
// not.
func (h *Host) List() ([]Candidate, error) {
	var descs []*gousb.DeviceDesc
	devs, err := h.ctx.OpenDevices(func(d *gousb.DeviceDesc) bool {
		if hasTetherClass(d) {
			descs = append(descs, d)
			return true
		}
		return false
	})
	defer func() {
		for _, d := range devs {
			d.Close()
		}
	}()
	var out []Candidate
	for _, desc := range descs {
		i := slices.IndexFunc(devs, func(d *gousb.Device) bool { return d.Desc.Bus == desc.Bus && d.Desc.Address == desc.Address })
		if i < 0 {
			c := Candidate{Info: descInfo(desc)}
			c.OpenErr = classify(err, c.Info)
			if c.OpenErr == nil {
				c.OpenErr = fmt.Errorf("%v: cannot open", c.Info)
			}
			out = append(out, c)
			continue
		}
		info, fns, ferr := inspect(devs[i])
		c := Candidate{Info: info, Functions: fns}
		c.Function, c.OpenErr = Choose(fns, ProtocolAuto, ferr)
		if c.OpenErr != nil {
			c.OpenErr = fmt.Errorf("%v: %w", info, c.OpenErr)
		}
		out = append(out, c)
	}
	return out, nil
}

func hasTetherClass(d *gousb.DeviceDesc) bool {
	var classes []Class
	for _, c := range d.Configs {
		for _, i := range c.Interfaces {
			for _, a := range i.AltSettings {
				classes = append(classes, Class{uint8(a.Class), uint8(a.SubClass), uint8(a.Protocol)})
			}
		}
	}
	return HasTetherClass(classes)
}

func descInfo(d *gousb.DeviceDesc) Info {
	return Info{
		Bus: d.Bus, Address: d.Address, Path: PortPath(d.Bus, d.Path),
		VendorID: uint16(d.Vendor), ProductID: uint16(d.Product), Speed: d.Speed.String(),
	}
}

// inspect reads a device's strings and raw configuration descriptors and
// finds its network functions; the error explains control interfaces that
// could not be used.
func inspect(d *gousb.Device) (Info, []Function, error) {
	d.ControlTimeout = controlTimeout
	info := descInfo(d.Desc)
	info.Manufacturer, _ = d.Manufacturer()
	info.Product, _ = d.Product()
	info.Serial, _ = d.SerialNumber()
	var configs []Configuration
	for idx := range len(d.Desc.Configs) {
		raw, err := rawConfig(d, idx)
		if err != nil {
			return info, nil, fmt.Errorf("reading configuration %d: %w", idx, mapErr(err))
		}
		c, err := ParseConfiguration(raw)
		if err != nil {
			return info, nil, err
		}
		configs = append(configs, c)
	}
	fns, err := FindFunctions(configs)
	return info, fns, err
}

// rawConfig reads configuration descriptor idx with GET_DESCRIPTOR, since
// gousb does not expose the class-specific descriptors (the CDC Union).
func rawConfig(d *gousb.Device, idx int) ([]byte, error) {
	head := make([]byte, 9)
	if _, err := d.Control(0x80, requestGetDescriptor, 0x0200|uint16(idx), 0, head); err != nil {
		return nil, err
	}
	total := int(head[2]) | int(head[3])<<8
	if total < 9 {
		return nil, fmt.Errorf("wTotalLength %d", total)
	}
	raw := make([]byte, total)
	n, err := d.Control(0x80, requestGetDescriptor, 0x0200|uint16(idx), 0, raw)
	return raw[:n], err
}

// Opener returns an Opener for the device sel selects.
func (h *Host) Opener(sel Selector) Opener { return hostOpener{h, sel} }

type hostOpener struct {
	h   *Host
	sel Selector
}

func (o hostOpener) Open(ctx context.Context) (Transport, error) { return o.h.Open(ctx, o.sel) }

// Narrow returns an Opener for the device described by i only.
func (o hostOpener) Narrow(i Info) Opener { return hostOpener{o.h, Same(i)} }

// Open claims the first tether that sel selects, through the function
// sel.Protocol asks for: it switches the device to the configuration that
// holds the function, detaches kernel drivers (rndis_host, cdc_ether,
// cdc_ncm) and claims the control and data interfaces, the data interface
// at the setting with the bulk pair for RNDIS and at setting 0 for NCM and
// ECM (their protocol selects the other with SetAlternate).
//
// Each Open scans the bus with a libusb context of its own, which the
// transport closes: a long-lived context's device list can miss a device
// that came back (seen without udev, where libusb relies on netlink).
func (h *Host) Open(ctx context.Context, sel Selector) (Transport, error) {
	uctx := gousb.NewContext()
	t, err := open(uctx, sel)
	if err != nil {
		uctx.Close()
		return nil, err
	}
	t.uctx = uctx
	return t, nil
}

func open(uctx *gousb.Context, sel Selector) (*gousbTransport, error) {
	var denied error
	devs, err := uctx.OpenDevices(func(d *gousb.DeviceDesc) bool {
		i := descInfo(d)
		return hasTetherClass(d) && (sel.VendorID == 0 && sel.ProductID == 0 || sel.VendorID == i.VendorID && sel.ProductID == i.ProductID) &&
			(sel.Path == "" || sel.Path == i.Path)
	})
	if err != nil {
		denied = classify(err, Info{})
	}
	var chosen *gousb.Device
	var info Info
	var reasons []error
	for _, d := range devs {
		if chosen != nil {
			d.Close()
			continue
		}
		i, fns, ferr := inspect(d)
		if !sel.Matches(i) {
			d.Close()
			continue
		}
		fn, err := Choose(fns, sel.Protocol, ferr)
		if err != nil {
			reasons = append(reasons, fmt.Errorf("%v: %w", i, err))
			d.Close()
			continue
		}
		i.Function = fn
		chosen, info = d, i
	}
	if chosen == nil {
		if denied != nil {
			return nil, denied
		}
		return nil, fmt.Errorf("%w for %v%s", ErrNoDevice, sel, joinReasons(reasons))
	}
	t, err := claim(chosen, info)
	if err != nil {
		chosen.Close()
		return nil, err
	}
	return t, nil
}

func joinReasons(errs []error) string {
	if len(errs) == 0 {
		return ""
	}
	return " (" + errors.Join(errs...).Error() + ")"
}

// The bulk-IN stream: URBs of 2048 bytes, the size Linux's rndis_host uses,
// which holds one frame of a device that sends one per transfer. The kernel
// then allocates 2 KiB per URB instead of 32 KiB for a 16 KiB URB: under
// QEMU, against Linux's RNDIS gadget, that cut the daemon's CPU time per byte
// by about 30 %. A transfer of an aggregating device, up to the 16 KiB
// offered in INITIALIZE (or an NCM transfer block), spans several URBs
// (readTransfer); 16 in flight hold two of those.
const (
	rxURBSize  = 2048
	rxInFlight = 16
)

type gousbTransport struct {
	uctx   *gousb.Context // the transport's own libusb context
	dev    *gousb.Device
	cfg    *gousb.Config
	ctrl   *gousb.Interface
	notify *gousb.InEndpoint
	info   Info

	dataMu sync.Mutex // the data interface and its endpoints: SetAlternate against bulk I/O
	data   *gousb.Interface
	in     *gousb.InEndpoint // nil at a setting without the bulk pair
	out    *gousb.OutEndpoint
	rx     *gousb.ReadStream

	notifyBuf []byte
	closeOnce sync.Once
}

var _ Transport = (*gousbTransport)(nil)

func claim(d *gousb.Device, info Info) (*gousbTransport, error) {
	fn := info.Function
	if err := d.SetAutoDetach(true); err != nil {
		return nil, fmt.Errorf("%v: kernel driver auto-detach: %w", info, classify(err, info))
	}
	cfg, err := d.Config(fn.Config)
	if err != nil {
		return nil, fmt.Errorf("%v: configuration %d: %w", info, fn.Config, classify(err, info))
	}
	t := &gousbTransport{dev: d, cfg: cfg, info: info, notifyBuf: make([]byte, 64)}
	fail := func(what string, err error) (*gousbTransport, error) {
		t.release()
		return nil, fmt.Errorf("%v: %s: %w", info, what, classify(err, info))
	}
	if t.ctrl, err = cfg.Interface(fn.ControlIface, 0); err != nil {
		return fail(fmt.Sprintf("claiming control interface %d", fn.ControlIface), err)
	}
	alt := fn.DataAlt
	if fn.Protocol != ProtocolRNDIS {
		alt = 0
	}
	if t.data, err = cfg.Interface(fn.DataIface, alt); err != nil {
		return fail(fmt.Sprintf("claiming data interface %d", fn.DataIface), err)
	}
	if t.notify, err = t.ctrl.InEndpoint(int(fn.Notify.Address & 0x0f)); err != nil {
		return fail("notification endpoint", err)
	}
	if err := t.openBulk(alt); err != nil {
		return fail("bulk endpoints", err)
	}
	return t, nil
}

// openBulk opens the bulk pair when alt is the setting that has it.
func (t *gousbTransport) openBulk(alt int) (err error) {
	t.in, t.out, t.rx = nil, nil, nil
	fn := t.info.Function
	if alt != fn.DataAlt {
		return nil
	}
	if t.in, err = t.data.InEndpoint(int(fn.BulkIn.Address & 0x0f)); err != nil {
		return err
	}
	t.out, err = t.data.OutEndpoint(int(fn.BulkOut.Address & 0x0f))
	return err
}

func (t *gousbTransport) Info() Info { return t.info }

func (t *gousbTransport) Control(ctx context.Context, s Setup, data []byte) (int, error) {
	n, err := t.dev.Control(s.RequestType, s.Request, s.Value, s.Index, data)
	if errors.Is(err, gousb.ErrorPipe) {
		return 0, fmt.Errorf("%v: %v: %w", t.info, s, ErrStall)
	}
	if err != nil {
		return 0, fmt.Errorf("%v: %v: %w", t.info, s, mapErr(err))
	}
	return n, ctx.Err()
}

// SetAlternate re-claims the data interface at setting alt: gousb selects a
// setting only when it claims. Auto-detach is off meanwhile, so that libusb
// does not hand the interface back to the kernel's driver in between.
func (t *gousbTransport) SetAlternate(ctx context.Context, alt int) error {
	t.dataMu.Lock()
	defer t.dataMu.Unlock()
	if t.rx != nil {
		t.rx.Close()
	}
	fn := t.info.Function
	if err := t.dev.SetAutoDetach(false); err != nil {
		return fmt.Errorf("%v: %w", t.info, classify(err, t.info))
	}
	defer t.dev.SetAutoDetach(true)
	t.data.Close()
	var err error
	if t.data, err = t.cfg.Interface(fn.DataIface, alt); err != nil {
		return fmt.Errorf("%v: data interface %d alternate setting %d: %w", t.info, fn.DataIface, alt, classify(err, t.info))
	}
	if err := t.openBulk(alt); err != nil {
		return fmt.Errorf("%v: bulk endpoints at alternate setting %d: %w", t.info, alt, classify(err, t.info))
	}
	return ctx.Err()
}

func (t *gousbTransport) WaitNotification(ctx context.Context) ([]byte, error) {
	for {
		n, err := t.notify.ReadContext(ctx, t.notifyBuf)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("%v: interrupt endpoint: %w", t.info, mapErr(err))
		}
		if n > 0 {
			return t.notifyBuf[:n], nil
		}
	}
}

var errNoBulk = errors.New("the data interface is at a setting without bulk endpoints")

// ReadBulk reads one transfer: gousb hands over URBs one at a time, so
// there is never a second one known to have completed. dataMu is held only
// to find the stream, not while the read waits: WriteBulk takes it too,
// and a read waits for as long as the device is quiet (holding it, every
// frame out waited for the next frame in, and an ARP request to a quiet
// phone never went).
func (t *gousbTransport) ReadBulk(ctx context.Context, buf []byte, sizes []int) (int, error) {
	t.dataMu.Lock()
	if t.in == nil {
		t.dataMu.Unlock()
		return 0, fmt.Errorf("%v: bulk IN: %w", t.info, errNoBulk)
	}
	if t.rx == nil {
		rx, err := t.in.NewStream(rxURBSize, rxInFlight)
		if err != nil {
			t.dataMu.Unlock()
			return 0, fmt.Errorf("%v: bulk IN stream: %w", t.info, mapErr(err))
		}
		t.rx = rx
	}
	rx := t.rx
	t.dataMu.Unlock()
	n, err := readTransfer(func(p []byte) (int, error) { return rx.ReadContext(ctx, p) }, buf, rxURBSize)
	if err != nil {
		t.dataMu.Lock()
		if t.rx == rx {
			t.rx = nil // a stream ends at its first error; the next read starts a new one
		}
		t.dataMu.Unlock()
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if errors.Is(err, gousb.TransferStall) {
			t.clearHalt(t.info.Function.BulkIn)
			return 0, fmt.Errorf("%v: bulk IN: %w", t.info, ErrStall)
		}
		return 0, fmt.Errorf("%v: bulk IN: %w", t.info, mapErr(err))
	}
	sizes[0] = n
	return 1, nil
}

// WriteBulk sends one transfer and waits for it: gousb's WriteStream, the
// only way it offers to keep several OUT transfers in flight, submits its
// whole buffer whatever the length written (seen against Linux's gadget:
// 64 KiB transfers, rejected as overruns), so OUT transfers go one at a
// time. The link packs the next transfer while this one is on the bus.
// Bulk OUT has its own lock in libusb; only SetAlternate excludes it here.
func (t *gousbTransport) WriteBulk(ctx context.Context, p []byte) error {
	t.dataMu.Lock()
	out := t.out
	t.dataMu.Unlock()
	if out == nil {
		return fmt.Errorf("%v: bulk OUT: %w", t.info, errNoBulk)
	}
	n, err := out.WriteContext(ctx, p)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, gousb.TransferStall) {
			t.clearHalt(t.info.Function.BulkOut)
			return fmt.Errorf("%v: bulk OUT: %w", t.info, ErrStall)
		}
		return fmt.Errorf("%v: bulk OUT: %w", t.info, mapErr(err))
	}
	if n != len(p) {
		return fmt.Errorf("%v: bulk OUT: %d of %d bytes sent", t.info, n, len(p))
	}
	return nil
}

// clearHalt sends CLEAR_FEATURE(ENDPOINT_HALT): gousb has no clear-halt call.
func (t *gousbTransport) clearHalt(ep Endpoint) {
	t.dev.Control(0x02, requestClearFeature, featureEndpointHalt, uint16(ep.Address), nil)
}

func (t *gousbTransport) Close() error {
	t.closeOnce.Do(t.release)
	return nil
}

func (t *gousbTransport) release() {
	t.dataMu.Lock()
	if t.rx != nil {
		t.rx.Close()
	}
	if t.data != nil {
		t.data.Close()
	}
	t.dataMu.Unlock()
	if t.ctrl != nil {
		t.ctrl.Close()
	}
	if t.cfg != nil {
		t.cfg.Close()
	}
	t.dev.Close()
	if t.uctx != nil {
		t.uctx.Close()
	}
}

// mapErr turns libusb's "no device" into ErrDeviceGone.
func mapErr(err error) error {
	if errors.Is(err, gousb.ErrorNoDevice) || errors.Is(err, gousb.TransferNoDevice) {
		return fmt.Errorf("%w (%v)", ErrDeviceGone, err)
	}
	return err
}

// classify names the errors a user can act on.
func classify(err error, info Info) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gousb.ErrorAccess):
		return fmt.Errorf("%w: %v (open /dev/bus/usb as a user allowed to: install examples/70-rndis-netd.rules and re-plug the device)", ErrPermission, err)
	case errors.Is(err, gousb.ErrorBusy):
		return fmt.Errorf("%w: %v (another program or driver holds the interface)", ErrBusy, err)
	}
	return mapErr(err)
}
