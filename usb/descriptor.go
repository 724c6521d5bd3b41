package usb

import "fmt"

// Descriptor types and CDC functional descriptor subtypes read from a raw
// configuration descriptor.
const (
	descConfig      = 0x02
	descInterface   = 0x04
	descEndpoint    = 0x05
	descCSInterface = 0x24

	cdcCallManagement = 0x01
	cdcACM            = 0x02
	cdcUnion          = 0x06
	cdcEthernet       = 0x0F
	cdcNCM            = 0x1A
)

// Configuration is a parsed configuration descriptor with what function
// matching needs: interfaces, endpoints, and the CDC functional descriptors
// of each interface.
type Configuration struct {
	Value      int // bConfigurationValue, what SET_CONFIGURATION takes
	Interfaces []InterfaceSetting
}

// InterfaceSetting is one alternate setting of an interface.
type InterfaceSetting struct {
	Number    int
	Alternate int
	Class     Class
	Endpoints []Endpoint

	// CDC functional descriptors, -1 when absent.
	UnionControl      int
	UnionSubordinates []int
	CallMgmtData      int
	ACMCapabilities   int
	// CDC Ethernet Networking and NCM functional descriptors, 0 when absent.
	MACAddressIndex int   // iMACAddress
	MaxSegmentSize  int   // wMaxSegmentSize
	NCMCapabilities uint8 // bmNetworkCapabilities
}

// Endpoint is one endpoint descriptor.
type Endpoint struct {
	Address       uint8 // bit 7 set for IN
	Attributes    uint8 // bits 0-1: 2 bulk, 3 interrupt
	MaxPacketSize int
}

// In reports whether the endpoint is device-to-host.
func (e Endpoint) In() bool { return e.Address&0x80 != 0 }

// Bulk reports whether it is a bulk endpoint.
func (e Endpoint) Bulk() bool { return e.Attributes&0x03 == 2 }

// Interrupt reports whether it is an interrupt endpoint.
func (e Endpoint) Interrupt() bool { return e.Attributes&0x03 == 3 }

// ParseConfiguration parses a raw configuration descriptor as
// GET_DESCRIPTOR(CONFIGURATION) returns it: the configuration, then its
// interfaces, each followed by its class-specific and endpoint descriptors.
// Descriptors of other types (interface association, SuperSpeed companions)
// are skipped. The bytes come from the device and are checked as such.
func ParseConfiguration(raw []byte) (Configuration, error) {
	var c Configuration
	if len(raw) < 9 || raw[1] != descConfig {
		return c, fmt.Errorf("usb: configuration descriptor: %d bytes, type %#x", len(raw), firstType(raw))
	}
	if total := int(raw[2]) | int(raw[3])<<8; total < len(raw) {
		raw = raw[:max(total, 9)]
	}
	c.Value = int(raw[5])
	var cur *InterfaceSetting
	for off := 0; off < len(raw); {
		n := int(raw[off])
		if n < 2 || off+n > len(raw) {
			return c, fmt.Errorf("usb: configuration %d: descriptor at byte %d has length %d past the end (%d)", c.Value, off, n, len(raw))
		}
		d := raw[off : off+n]
		off += n
		switch d[1] {
		case descInterface:
			if n < 9 {
				return c, fmt.Errorf("usb: configuration %d: interface descriptor of %d bytes", c.Value, n)
			}
			c.Interfaces = append(c.Interfaces, InterfaceSetting{
				Number: int(d[2]), Alternate: int(d[3]), Class: Class{d[5], d[6], d[7]},
				UnionControl: -1, CallMgmtData: -1, ACMCapabilities: -1,
			})
			cur = &c.Interfaces[len(c.Interfaces)-1]
		case descEndpoint:
			if n < 7 {
				return c, fmt.Errorf("usb: configuration %d: endpoint descriptor of %d bytes", c.Value, n)
			}
			if cur != nil {
				cur.Endpoints = append(cur.Endpoints, Endpoint{Address: d[2], Attributes: d[3], MaxPacketSize: (int(d[4]) | int(d[5])<<8) & 0x7ff})
			}
		case descCSInterface:
			if cur == nil || n < 3 {
				continue
			}
			switch d[2] {
			case cdcUnion:
				if n >= 5 {
					cur.UnionControl = int(d[3])
					for _, s := range d[4:] {
						cur.UnionSubordinates = append(cur.UnionSubordinates, int(s))
					}
				}
			case cdcCallManagement:
				if n >= 5 {
					cur.CallMgmtData = int(d[4])
				}
			case cdcACM:
				if n >= 4 {
					cur.ACMCapabilities = int(d[3])
				}
			case cdcEthernet:
				if n >= 10 {
					cur.MACAddressIndex = int(d[3])
					cur.MaxSegmentSize = int(d[8]) | int(d[9])<<8
				}
			case cdcNCM:
				if n >= 6 {
					cur.NCMCapabilities = d[5]
				}
			}
		}
	}
	return c, nil
}

func firstType(b []byte) int {
	if len(b) < 2 {
		return -1
	}
	return int(b[1])
}
