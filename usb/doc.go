// Package usb finds the network functions of USB tethers (RNDIS, CDC-NCM and
// CDC-ECM) on the bus, claims them, and moves bytes to and from them: control
// transfers on the default pipe, notifications on the interrupt pipe, and
// transfers on the bulk pipes. It knows no protocol: package link speaks
// them over a Transport.
//
// Descriptor parsing (ParseConfiguration) and function matching
// (FindFunctions, Choose) exist once, for every backend. Host.Open returns a
// Transport backed by libusb through github.com/google/gousb; package usb/sim
// provides a simulated phone behind the same interface.
//
// gousb has no hotplug API, so a device that comes back after an unplug is
// found by opening it again, which the link retries with backoff.
package usb
