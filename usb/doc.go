// Package usb finds the network functions of USB tethers (RNDIS, CDC-NCM and
// CDC-ECM) on the bus, claims them, and moves bytes to and from them: control
// transfers on the default pipe, notifications on the interrupt pipe, and
// transfers on the bulk pipes. It knows no protocol: package link speaks
// them over a Transport.
//
// Descriptor parsing (ParseConfiguration) and function matching
// (FindFunctions, Choose) exist once, for every backend. NewHost takes the
// Backend that reaches real devices:
//
//   - usbfs, the default on Linux: devices are listed from sysfs
//     (/sys/bus/usb/devices, which needs no access to them) and claimed
//     through their /dev/bus/usb node with usbfs's ioctls. Bulk and
//     interrupt transfers are URBs in memory Go does not manage, which one
//     goroutine per device reaps when Go's poller reports the node writable
//     (usbfs's sign of completed URBs), so no thread blocks per transfer;
//     dozens of URBs stay in flight each way. Kernel uevents (a
//     NETLINK_KOBJECT_UEVENT socket, no privileges needed) tell a link
//     waiting for its device when to look again. It is written here, on
//     golang.org/x/sys/unix, because there is no maintained pure-Go usbfs
//     library with asynchronous URBs, and gousb needs cgo and libusb: with
//     usbfs, CGO_ENABLED=0 builds a static daemon that runs on any Linux.
//   - libusb, through github.com/google/gousb, in builds with cgo, and the
//     default elsewhere. gousb has no hotplug API, so a device that comes
//     back after an unplug is found by opening it again, which the link
//     retries with backoff.
//
// Package usb/sim provides a simulated phone behind the same interface.
package usb
