package sim

import (
	"strings"
	"unicode/utf16"

	"github.com/rndis-netd/rndis-netd/usb"
)

// The phone's string descriptors, as GET_DESCRIPTOR(STRING) returns them.
const (
	manufacturer       = "rndis-netd"
	stringLanguages    = 0
	stringManufacturer = 1
	stringProduct      = 2
	stringSerial       = 3
	stringMACAddress   = 4 // iMACAddress of NCM and ECM, as Linux's f_ncm and f_ecm number it in g_ether
	languageEnglishUS  = 0x0409
	// Standard request and descriptor type of GET_DESCRIPTOR(STRING).
	requestGetDescriptor = 0x06
	descriptorString     = 0x03
)

func product(cfg Config) string { return "simulated phone (" + cfg.Name + ")" }

// isGetString reports whether s is GET_DESCRIPTOR for a string.
func isGetString(s usb.Setup) bool {
	return s.RequestType == 0x80 && s.Request == requestGetDescriptor && s.Value>>8 == descriptorString
}

// stringDescriptor answers GET_DESCRIPTOR(STRING): the languages (US
// English only), the manufacturer, product and serial number, and for NCM
// and ECM the iMACAddress string. A string the phone does not have, or a
// language other than US English, it stalls, as Linux's composite gadget
// does.
func (p *Phone) stringDescriptor(s usb.Setup, data []byte) (int, error) {
	if p.hungLocked() {
		return 0, errNoAnswer
	}
	index := int(s.Value & 0xff)
	if index == stringLanguages {
		return copy(data, []byte{4, descriptorString, languageEnglishUS & 0xff, languageEnglishUS >> 8}), nil
	}
	if s.Index != languageEnglishUS {
		return 0, p.stall("string descriptor %d in language %#04x", index, s.Index)
	}
	var str string
	switch index {
	case stringManufacturer:
		str = manufacturer
	case stringProduct:
		str = product(p.cfg)
	case stringSerial:
		str = p.cfg.Serial
	case p.fn.descriptor().MACAddressIndex:
		str = macString(p.cfg)
	}
	if str == "" {
		return 0, p.stall("no string descriptor %d", index)
	}
	units := utf16.Encode([]rune(str))
	units = units[:min(len(units), 126)] // what bLength can state
	b := make([]byte, 2, 2+2*len(units))
	b[0], b[1] = byte(2+2*len(units)), descriptorString
	for _, u := range units {
		b = append(b, byte(u), byte(u>>8))
	}
	return copy(data, b), nil
}

// macString is the iMACAddress string of cfg.
func macString(cfg Config) string {
	if cfg.MACAddress != "" {
		return cfg.MACAddress
	}
	return strings.ToUpper(strings.ReplaceAll(cfg.HostMAC.String(), ":", ""))
}
