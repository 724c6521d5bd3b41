// Package usb finds RNDIS functions on the USB bus, claims them, and moves
// bytes to and from them: encapsulated commands and responses on the control
// pipe, notifications on the interrupt pipe, and transfers on the bulk pipes.
//
// The rest of rndis-netd sees a device only as a Transport. Open returns one
// backed by libusb through github.com/google/gousb; package usb/sim provides
// a simulated phone behind the same interface.
//
// gousb has no hotplug API, so a device that comes back after an unplug is
// found by polling the bus (see Reopen, every PollInterval).
package usb
