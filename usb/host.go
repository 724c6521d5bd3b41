package usb

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Backend is the way package usb reaches real devices.
type Backend string

// The backends. BackendAuto is usbfs on Linux and libusb elsewhere.
const (
	BackendAuto   Backend = "auto"
	BackendUsbfs  Backend = "usbfs"  // Linux's /dev/bus/usb and sysfs, in Go; no cgo
	BackendLibusb Backend = "libusb" // libusb through gousb; needs cgo
)

// ParseBackend reads "auto", "usbfs" or "libusb"; "" is auto.
func ParseBackend(s string) (Backend, error) {
	switch b := Backend(strings.ToLower(s)); b {
	case "", BackendAuto:
		return BackendAuto, nil
	case BackendUsbfs, BackendLibusb:
		return b, nil
	}
	return "", fmt.Errorf("usb: backend %q: want auto, usbfs or libusb", s)
}

// Resolve returns the backend auto stands for on this system; others are
// returned as they are.
func (b Backend) Resolve() Backend {
	if b == "" || b == BackendAuto {
		return autoBackend
	}
	return b
}

// Host is the USB bus as one backend sees it.
type Host struct {
	backend Backend
	bus     bus
}

// bus is what a backend provides.
type bus interface {
	List() ([]Candidate, error)
	Opener(Selector) Opener
	Close() error
}

// controlTimeout bounds a control transfer that the caller's context does
// not bound sooner.
const controlTimeout = 5 * time.Second

// Candidate is one USB tether on the bus.
type Candidate struct {
	Info                 // Info.Function is the function Preference ranks first
	Functions []Function // every network function the device offers
	OpenErr   error      // why it cannot be used (permission, no usable function), or nil
}

// NewHost opens the bus through backend b (BackendAuto: see Resolve).
// Close it when done.
func NewHost(b Backend) (*Host, error) {
	b = b.Resolve()
	var (
		bs  bus
		err error
	)
	switch b {
	case BackendUsbfs:
		bs, err = newUsbfsBus()
	case BackendLibusb:
		bs, err = newLibusbBus()
	default:
		_, err = ParseBackend(string(b))
	}
	if err != nil {
		return nil, err
	}
	return &Host{backend: b, bus: bs}, nil
}

// Backend returns the backend the host uses, never BackendAuto.
func (h *Host) Backend() Backend { return h.backend }

// List returns every device with the control interface of a tether, with
// its strings and functions where they could be read and the reason where
// not.
func (h *Host) List() ([]Candidate, error) { return h.bus.List() }

// Opener returns an Opener for the first tether sel selects. It is a
// Narrower, and with usbfs it can wait for the bus to change.
func (h *Host) Opener(sel Selector) Opener { return h.bus.Opener(sel) }

// Open claims the first tether sel selects.
func (h *Host) Open(ctx context.Context, sel Selector) (Transport, error) {
	return h.bus.Opener(sel).Open(ctx)
}

// Close releases the backend.
func (h *Host) Close() error { return h.bus.Close() }
