//go:build !linux

package usb

import "errors"

// autoBackend: elsewhere, libusb.
const autoBackend = BackendLibusb

func newUsbfsBus() (bus, error) {
	return nil, errors.New("usb: the usbfs backend exists only on Linux")
}
