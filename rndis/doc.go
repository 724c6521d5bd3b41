// Package rndis encodes and decodes Remote NDIS messages: the control messages
// that travel as CDC encapsulated commands and the PACKET_MSGs that carry
// Ethernet frames on the bulk pipes. It is pure Go and does no I/O.
//
// Every decoder treats its input as hostile: lengths and offsets are checked
// against the buffer with overflow-safe arithmetic and a bad message is
// reported as a *FormatError naming the field, never as a panic.
package rndis
