package usb

import (
	"context"
	"errors"
	"fmt"
)

// Transport is one USB network function (RNDIS, CDC-NCM or CDC-ECM) claimed
// on a device: the default control pipe, the notification endpoint of the
// function's control interface, and the bulk pair of its data interface. It
// moves bytes and knows nothing of the protocol spoken over them. Methods of
// different pipes may be called concurrently; each pipe has one caller at a
// time.
type Transport interface {
	// Control makes a control transfer on the default pipe. For a request
	// with RequestType bit 7 set (device to host) data receives up to
	// len(data) bytes; otherwise data is sent. It returns the bytes moved. A
	// request the device stalls fails with an error wrapping ErrStall.
	Control(ctx context.Context, s Setup, data []byte) (int, error)
	// SetAlternate selects alternate setting alt of the data interface.
	// CDC-NCM and CDC-ECM move data only at the setting that has the bulk
	// endpoints (Info().Function.DataAlt) and stop at 0; bulk I/O is valid
	// only at the setting with the bulk endpoints.
	SetAlternate(ctx context.Context, alt int) error
	// WaitNotification waits for one interrupt-IN transfer of the control
	// interface and returns its bytes, valid until the next call.
	WaitNotification(ctx context.Context) ([]byte, error)
	// ReadBulk waits for at least one bulk-IN transfer, then copies it and
	// each further transfer that has already completed and fits into buf,
	// back to back; sizes[i] receives the length of the i-th. It returns how
	// many transfers it copied: at least one when err is nil, at most
	// len(sizes). buf must hold the largest transfer the device may send.
	ReadBulk(ctx context.Context, buf []byte, sizes []int) (int, error)
	// WriteBulk sends p as one bulk-OUT transfer, exactly as given: the
	// protocol applies the short-packet rule itself. It may return before
	// the transfer completes and blocks while all of the transport's
	// transfers are in flight; p may be reused on return. The failure of an
	// earlier transfer may be reported by a later call.
	WriteBulk(ctx context.Context, p []byte) error
	// Info describes the device and its function.
	Info() Info
	// Close releases the interfaces and the device. It sends nothing to the
	// function (no RNDIS HALT, no alternate setting 0).
	Close() error
}

// Setup is the setup packet of a control transfer, without wLength (the
// length of the data buffer).
type Setup struct {
	RequestType uint8 // bmRequestType
	Request     uint8 // bRequest
	Value       uint16
	Index       uint16
}

// In reports whether the request moves data from the device to the host.
func (s Setup) In() bool { return s.RequestType&0x80 != 0 }

func (s Setup) String() string {
	return fmt.Sprintf("control request %#02x/%#02x value %#04x index %d", s.RequestType, s.Request, s.Value, s.Index)
}

// bmRequestType values of the class requests a host sends to an interface.
const (
	classOut = 0x21 // host to device, class, interface
	classIn  = 0xA1 // device to host, class, interface
)

// ClassOut is a class request sending data to the interface iface.
func ClassOut(request uint8, value uint16, iface int) Setup {
	return Setup{RequestType: classOut, Request: request, Value: value, Index: uint16(iface)}
}

// ClassIn is a class request reading data from the interface iface.
func ClassIn(request uint8, value uint16, iface int) Setup {
	return Setup{RequestType: classIn, Request: request, Value: value, Index: uint16(iface)}
}

// The CDC class requests that carry RNDIS control messages (NCM's and ECM's
// own are in package ncm).
const (
	RequestSendEncapsulatedCommand = 0x00 // host to device
	RequestGetEncapsulatedResponse = 0x01 // device to host
)

// Standard requests.
const (
	requestClearFeature  = 0x01
	requestGetDescriptor = 0x06
	descriptorString     = 0x03
	featureEndpointHalt  = 0
)

// Opener opens a device: the one a Selector names, or the same device again
// after it was unplugged.
type Opener interface {
	Open(ctx context.Context) (Transport, error)
}

// Narrower is an Opener that can narrow itself to the device it opened,
// so that what comes back after an unplug is that device and no other.
type Narrower interface {
	Narrow(Info) Opener
}

// Info identifies a device and the function the transport claimed.
type Info struct {
	Bus          int
	Address      int
	Path         string // bus and port numbers, "1-2.3", stable across re-plugs into the same port
	VendorID     uint16
	ProductID    uint16
	Manufacturer string
	Product      string
	Serial       string
	Speed        string
	Function     Function
}

// ID returns "vvvv:pppp".
func (i Info) ID() string { return fmt.Sprintf("%04x:%04x", i.VendorID, i.ProductID) }

func (i Info) String() string {
	s := fmt.Sprintf("%s at %s", i.ID(), i.Path)
	if i.Product != "" {
		s += " (" + i.Product + ")"
	}
	if i.Serial != "" {
		s += " serial " + i.Serial
	}
	return s
}

// Class is a USB class/subclass/protocol triple.
type Class struct{ Class, SubClass, Protocol uint8 }

func (c Class) String() string { return fmt.Sprintf("%02x/%02x/%02x", c.Class, c.SubClass, c.Protocol) }

// errNoBulk: bulk I/O at a setting of the data interface without the bulk pair.
var errNoBulk = errors.New("the data interface is at a setting without bulk endpoints")

// Errors that callers tell apart with errors.Is.
var (
	// ErrDeviceGone: the device was unplugged or reset; it may come back.
	ErrDeviceGone = errors.New("usb: device gone")
	// ErrNoDevice: no USB tether matches the selection.
	ErrNoDevice = errors.New("usb: no USB tether found")
	// ErrPermission: the device node cannot be opened by this user.
	ErrPermission = errors.New("usb: permission denied")
	// ErrBusy: another driver or program holds the interface.
	ErrBusy = errors.New("usb: device busy")
	// ErrStall: the device stalled the request or the endpoint (a control
	// request it does not support, or a bulk endpoint the transport has
	// cleared again).
	ErrStall = errors.New("usb: stalled")
)

// ResponseBufferSize is the size of a buffer for one RNDIS control response:
// the spec requires a host to accept 1024 bytes; Linux uses 1025.
const ResponseBufferSize = 1025

// ShortPacketPad returns how many zero bytes to append to a bulk-OUT transfer
// of n bytes: one when n is a multiple of the endpoint's wMaxPacketSize, so
// that the device sees a short packet end the transfer, as Linux's usbnet
// does for devices that take no zero-length packets.
func ShortPacketPad(n, maxPacket int) int {
	if maxPacket > 0 && n > 0 && n%maxPacket == 0 {
		return 1
	}
	return 0
}
