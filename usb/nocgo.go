//go:build !cgo

package usb

import "errors"

// newLibusbBus fails: libusb needs cgo.
func newLibusbBus() (bus, error) {
	return nil, errors.New("usb: the libusb backend needs cgo (build with CGO_ENABLED=1), or use the usbfs backend on Linux")
}
