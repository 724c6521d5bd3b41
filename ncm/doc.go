// Package ncm encodes and decodes the CDC-NCM wire format: the NCM Transfer
// Blocks (NTB16 and NTB32, each an NTH, one or more NDPs and the datagrams
// they point to) that carry Ethernet frames on the bulk pipes, and the
// GET_NTB_PARAMETERS structure that sets their limits. It is pure Go and does
// no I/O.
//
// It is also home to the small parts of CDC Ethernet control that NCM shares
// with CDC-ECM, so that the ECM host uses the same code: the notifications of
// the interrupt endpoint (NETWORK_CONNECTION, CONNECTION_SPEED_CHANGE,
// RESPONSE_AVAILABLE) and the SET_ETHERNET_PACKET_FILTER bits.
//
// Every decoder treats its input as hostile: indexes and lengths are checked
// against the block in 64-bit arithmetic, on 32- and 64-bit platforms alike,
// and a bad structure is reported as a *FormatError naming the structure,
// its offset and the field, never as a panic.
//
// The package is written by hand because there is no maintained Go library
// to take it from: the Go NCM code that exists lives inside applications
// (go-ios reads one NDP16 per block from Apple devices). What real devices
// send and accept is defined in practice by Linux's host driver
// (drivers/net/usb/cdc_ncm.c), its gadget (drivers/usb/gadget/function/f_ncm.c,
// which Android phones run) and Windows's NCM host driver; where this package
// chooses among them, the comment at the choice says which and why.
package ncm
