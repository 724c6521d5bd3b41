package usb

import (
	"context"
	"errors"
	"fmt"
)

// Transport is one RNDIS function as its host sees it. Methods of different
// pipes may be called concurrently; each pipe has one caller at a time.
type Transport interface {
	// SendCommand sends one RNDIS control message (CDC SEND_ENCAPSULATED_COMMAND).
	SendCommand(ctx context.Context, msg []byte) error
	// GetResponse reads one RNDIS control message (CDC GET_ENCAPSULATED_RESPONSE)
	// into buf, which should hold at least ResponseBufferSize bytes. It
	// returns 0 when no response is pending.
	GetResponse(ctx context.Context, buf []byte) (int, error)
	// WaitNotification blocks until the device signals on its interrupt
	// endpoint (RESPONSE_AVAILABLE) and returns the notification's bytes.
	WaitNotification(ctx context.Context) ([]byte, error)
	// ReadBulk reads one bulk-IN transfer into buf, which must hold the
	// largest transfer the device may send. Several transfers are kept in
	// flight behind it.
	ReadBulk(ctx context.Context, buf []byte) (int, error)
	// WriteBulk sends p as one bulk-OUT transfer, applying the short-packet
	// rule. It may return before the transfer completes (several are kept in
	// flight) and blocks while all are busy; p may be reused on return.
	WriteBulk(ctx context.Context, p []byte) error
	// Info describes the device.
	Info() Info
	// Close releases the interfaces and the device. It does not send HALT.
	Close() error
}

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

// ResponseBufferSize is the size of the buffer for a control response: the
// spec requires a host to accept 1024 bytes; Linux uses 1025.
const ResponseBufferSize = 1025

// Info identifies a device and the endpoints of its RNDIS function.
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
	Config       int   // the configuration value of the RNDIS function
	Control      Class // class triple of the control interface
	ControlIface int
	DataIface    int

	BulkInMaxPacket  int // wMaxPacketSize of the bulk-IN endpoint
	BulkOutMaxPacket int // wMaxPacketSize of the bulk-OUT endpoint, for the short-packet rule
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

// Errors that callers tell apart with errors.Is.
var (
	// ErrDeviceGone: the device was unplugged or reset; it may come back.
	ErrDeviceGone = errors.New("usb: device gone")
	// ErrNoDevice: no RNDIS device matches the selection.
	ErrNoDevice = errors.New("usb: no RNDIS device found")
	// ErrPermission: the device node cannot be opened by this user.
	ErrPermission = errors.New("usb: permission denied")
	// ErrBusy: another driver or program holds the interface.
	ErrBusy = errors.New("usb: device busy")
)

// ShortPacketPad returns how many zero bytes to append to a bulk-OUT transfer
// of n bytes: one when n is a multiple of the endpoint's wMaxPacketSize, so
// that the device sees a short packet end the transfer (RNDIS hosts send no
// zero-length packets).
func ShortPacketPad(n, maxPacket int) int {
	if maxPacket > 0 && n > 0 && n%maxPacket == 0 {
		return 1
	}
	return 0
}
