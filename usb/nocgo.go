//go:build !cgo

package usb

import (
	"context"
	"errors"
)

// errNoCgo: libusb needs cgo; without it only the simulated phone works.
var errNoCgo = errors.New("usb: built without cgo: real devices need libusb (build with CGO_ENABLED=1)")

// Host is unavailable without cgo.
type Host struct{}

// Candidate is one USB tether on the bus.
type Candidate struct {
	Info
	Functions []Function
	OpenErr   error
}

// NewHost fails without cgo.
func NewHost() (*Host, error) { return nil, errNoCgo }

// Close does nothing.
func (h *Host) Close() error { return nil }

// List fails without cgo.
func (h *Host) List() ([]Candidate, error) { return nil, errNoCgo }

// Open fails without cgo.
func (h *Host) Open(context.Context, Selector) (Transport, error) { return nil, errNoCgo }

// Opener returns an Opener that fails without cgo.
func (h *Host) Opener(sel Selector) Opener { return nocgoOpener{} }

type nocgoOpener struct{}

func (nocgoOpener) Open(context.Context) (Transport, error) { return nil, errNoCgo }
