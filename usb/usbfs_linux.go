package usb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// usbfsBus is the USB bus as Linux's sysfs lists it and usbfs reaches it.
type usbfsBus struct {
	sysfs string // /sys/bus/usb/devices
	dev   string // /dev/bus/usb
	watch *ueventWatcher
}

func newUsbfsBus() (bus, error) {
	return &usbfsBus{sysfs: "/sys/bus/usb/devices", dev: "/dev/bus/usb", watch: newUeventWatcher()}, nil
}

// Close stops watching for uevents.
func (b *usbfsBus) Close() error { return b.watch.Close() }

// List reads sysfs only: listing needs no access to the devices. A device
// this user may not open is listed with ErrPermission.
func (b *usbfsBus) List() ([]Candidate, error) {
	devs, err := scanSysfs(b.sysfs)
	if err != nil {
		return nil, err
	}
	var out []Candidate
	for _, d := range devs {
		if !HasTetherClass(d.classes()) {
			continue
		}
		fns, ferr := d.functions()
		c := Candidate{Info: d.info, Functions: fns}
		c.Function, c.OpenErr = Choose(fns, ProtocolAuto, ferr)
		if c.OpenErr == nil {
			c.OpenErr = accessError(d.node(b.dev))
		}
		if c.OpenErr != nil {
			c.OpenErr = fmt.Errorf("%v: %w", d.info, c.OpenErr)
		}
		out = append(out, c)
	}
	return out, nil
}

// accessError says whether this user may open a device node.
func accessError(node string) error {
	if err := unix.Access(node, unix.R_OK|unix.W_OK); err != nil {
		return classifyErrno(fmt.Errorf("%s: %w", node, err))
	}
	return nil
}

// Opener returns an Opener for the first tether sel selects.
func (b *usbfsBus) Opener(sel Selector) Opener { return usbfsOpener{b, sel} }

type usbfsOpener struct {
	b   *usbfsBus
	sel Selector
}

var (
	_ Opener                                         = usbfsOpener{}
	_ Narrower                                       = usbfsOpener{}
	_ interface{ WaitChange(context.Context) error } = usbfsOpener{}
)

// Narrow returns an Opener for the device described by i only, through
// the protocol the selector asks for (Selector.Narrow).
func (o usbfsOpener) Narrow(i Info) Opener { return usbfsOpener{o.b, o.sel.Narrow(i)} }

// WaitChange waits for a USB device to be added or bound on the bus (a
// kernel uevent), or for ctx to end.
func (o usbfsOpener) WaitChange(ctx context.Context) error { return o.b.watch.wait(ctx) }

// Open claims the first tether sel selects, through the function
// sel.Protocol asks for: it switches the device to the configuration that
// holds the function, detaches kernel drivers (rndis_host, cdc_ether,
// cdc_ncm) and claims the control and data interfaces, the data interface
// at the setting with the bulk pair for RNDIS and at setting 0 for NCM and
// ECM (their protocol selects the other with SetAlternate).
func (o usbfsOpener) Open(ctx context.Context) (Transport, error) {
	devs, err := scanSysfs(o.b.sysfs)
	if err != nil {
		return nil, err
	}
	var reasons []error
	for _, d := range devs {
		if !HasTetherClass(d.classes()) || !o.sel.Matches(d.info) {
			continue
		}
		fns, ferr := d.functions()
		fn, err := Choose(fns, o.sel.Protocol, ferr)
		if err != nil {
			reasons = append(reasons, fmt.Errorf("%v: %w", d.info, err))
			continue
		}
		info := d.info
		info.Function = fn
		return openUsbfs(ctx, d, d.node(o.b.dev), info)
	}
	return nil, fmt.Errorf("%w for %v%s", ErrNoDevice, o.sel, joinErrors(reasons))
}

func joinErrors(errs []error) string {
	if len(errs) == 0 {
		return ""
	}
	return " (" + errors.Join(errs...).Error() + ")"
}

// claimedIface is an interface the transport claimed, and the kernel driver
// it took it from, to give it back at Close.
type claimedIface struct {
	number int
	driver string // "" when none was bound
}

// usbfsTransport is a function claimed through usbfs. Control transfers
// and alternate settings are synchronous ioctls; the bulk and interrupt
// pipes move URBs that a reaper goroutine, parked in Go's poller, collects
// (usbfs_io_linux.go).
type usbfsTransport struct {
	dev     usbfsFD
	file    *os.File // dev.fd, registered with the poller
	info    Info
	claimed []claimedIface

	guard *fdGuard

	io        *urbIO
	closeOnce sync.Once
	closeErr  error
}

var _ Transport = (*usbfsTransport)(nil)

func openUsbfs(ctx context.Context, d sysfsDevice, node string, info Info) (*usbfsTransport, error) {
	fd, err := unix.Open(node, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("%v: opening %s: %w", info, node, classifyErrno(err))
	}
	t := &usbfsTransport{dev: usbfsFD{fd: fd, node: node}, info: info, guard: new(fdGuard)}
	t.file = os.NewFile(uintptr(fd), node)
	if err := t.claim(d); err != nil {
		t.release()
		t.file.Close()
		return nil, err
	}
	rc, err := t.file.SyscallConn()
	if err == nil {
		t.io, err = newURBIO(t.dev, fd, t.guard, rc, info)
	}
	if err != nil {
		t.release()
		t.file.Close()
		return nil, fmt.Errorf("%v: %w", info, err)
	}
	return t, ctx.Err()
}

// claim selects the function's configuration and claims its interfaces.
func (t *usbfsTransport) claim(d sysfsDevice) error {
	fn := t.info.Function
	if d.active != fn.Config {
		// SET_CONFIGURATION fails while any interface has a driver: detach
		// them all; the new configuration's get drivers again, which the
		// claims below detach.
		for _, c := range d.configs {
			if c.Value != d.active {
				continue
			}
			for _, s := range c.Interfaces {
				if s.Alternate == 0 {
					t.dev.interfaceIoctl(s.Number, reqDisconnect)
				}
			}
		}
		if err := t.dev.setConfiguration(fn.Config); err != nil {
			return t.fail(fmt.Sprintf("USBDEVFS_SETCONFIGURATION %d", fn.Config), err)
		}
	}
	for _, n := range []int{fn.ControlIface, fn.DataIface} {
		if err := t.claimIface(n); err != nil {
			return err
		}
	}
	alt := fn.DataAlt
	if fn.Protocol != ProtocolRNDIS {
		alt = 0
	}
	if err := t.dev.setInterface(fn.DataIface, alt); err != nil {
		return t.fail(fmt.Sprintf("USBDEVFS_SETINTERFACE %d alternate setting %d", fn.DataIface, alt), err)
	}
	return nil
}

// claimIface detaches interface n's kernel driver and claims it in one
// step, so that the driver cannot take it back in between; kernels before
// 3.7 lack DISCONNECT_CLAIM and do it in two.
func (t *usbfsTransport) claimIface(n int) error {
	drv, err := t.dev.driver(n)
	if err != nil {
		return t.fail(fmt.Sprintf("USBDEVFS_GETDRIVER interface %d", n), err)
	}
	if drv == "usbfs" {
		return fmt.Errorf("%v: interface %d: %w (another program holds it)", t.info, n, ErrBusy)
	}
	err = t.dev.disconnectClaim(n)
	if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL) {
		if drv != "" {
			if err := t.dev.interfaceIoctl(n, reqDisconnect); err != nil {
				return t.fail(fmt.Sprintf("USBDEVFS_DISCONNECT interface %d from %s", n, drv), err)
			}
		}
		err = t.dev.claim(n)
	}
	if err != nil {
		return t.fail(fmt.Sprintf("claiming interface %d", n), err)
	}
	t.claimed = append(t.claimed, claimedIface{n, drv})
	return nil
}

func (t *usbfsTransport) fail(what string, err error) error {
	return fmt.Errorf("%v: %s: %s: %w", t.info, t.dev.node, what, classifyErrno(err))
}

// release releases the interfaces and gives each back to the kernel driver
// it had: the control interface's first, whose driver (usbnet) claims the
// data interface itself.
func (t *usbfsTransport) release() {
	for _, c := range t.claimed {
		t.dev.release(c.number)
	}
	for _, c := range t.claimed {
		if c.driver != "" {
			t.dev.interfaceIoctl(c.number, reqConnect)
		}
	}
	t.claimed = nil
}

func (t *usbfsTransport) Info() Info { return t.info }

// Control makes a synchronous control transfer: usbfs's CONTROL ioctl,
// with the context's deadline as its timeout, capped at controlTimeout.
func (t *usbfsTransport) Control(ctx context.Context, s Setup, data []byte) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	timeout := controlTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, max(time.Until(d), time.Millisecond))
	}
	if !t.guard.enter() {
		return 0, fmt.Errorf("%v: %v: %w", t.info, s, errClosed)
	}
	defer t.guard.leave()
	n, err := t.dev.control(s, data, uint32(timeout/time.Millisecond))
	switch {
	case errors.Is(err, unix.EPIPE):
		return 0, fmt.Errorf("%v: %v: %w", t.info, s, ErrStall)
	case err != nil:
		return 0, fmt.Errorf("%v: %v: USBDEVFS_CONTROL: %w", t.info, s, classifyErrno(err))
	}
	return n, ctx.Err()
}

// SetAlternate stops the bulk pipes (their URBs discarded and reaped: the
// kernel would end them with ESHUTDOWN, the status of an unplug), then
// selects setting alt. Bulk I/O starts again at the next read or write.
func (t *usbfsTransport) SetAlternate(ctx context.Context, alt int) error {
	fn := t.info.Function
	if err := t.io.stopBulk(ctx); err != nil {
		return fmt.Errorf("%v: stopping bulk transfers: %w", t.info, err)
	}
	if !t.guard.enter() {
		return fmt.Errorf("%v: %w", t.info, errClosed)
	}
	defer t.guard.leave()
	if err := t.dev.setInterface(fn.DataIface, alt); err != nil {
		return t.fail(fmt.Sprintf("USBDEVFS_SETINTERFACE %d alternate setting %d", fn.DataIface, alt), err)
	}
	t.io.setBulk(alt == fn.DataAlt)
	return ctx.Err()
}

func (t *usbfsTransport) WaitNotification(ctx context.Context) ([]byte, error) {
	return t.io.notification(ctx)
}

func (t *usbfsTransport) ReadBulk(ctx context.Context, buf []byte, sizes []int) (int, error) {
	return t.io.read(ctx, buf, sizes)
}

func (t *usbfsTransport) WriteBulk(ctx context.Context, p []byte) error {
	return t.io.write(ctx, p)
}

// Close discards every URB in flight and waits for their reaps, releases
// the interfaces, gives them back to their kernel drivers, and closes the
// device.
func (t *usbfsTransport) Close() error {
	t.closeOnce.Do(func() {
		t.io.stop()
		t.guard.shut(func() {
			t.release()
			t.closeErr = t.file.Close()
		})
		t.io.free()
	})
	return t.closeErr
}

var errClosed = errors.New("usb: transport closed")

// classifyErrno names the errors a user can act on, as classify does for
// libusb's.
func classifyErrno(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return fmt.Errorf("%w: %v (open /dev/bus/usb as a user allowed to: install examples/70-rndis-netd.rules and re-plug the device)", ErrPermission, err)
	case errors.Is(err, unix.EBUSY):
		return fmt.Errorf("%w: %v (another program or driver holds the interface)", ErrBusy, err)
	case goneErrno(err):
		return fmt.Errorf("%w (%v)", ErrDeviceGone, err)
	}
	return err
}

// goneErrno reports the errors of an unplugged device: ENODEV from an
// ioctl, ESHUTDOWN as a URB's status; ENOENT opening a node that went away.
func goneErrno(err error) bool {
	return errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ESHUTDOWN) || errors.Is(err, unix.ENOENT)
}
