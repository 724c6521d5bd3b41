package usb

import (
	"context"
	"fmt"
	"unicode/utf16"
)

// langEnglishUS is the language asked for when a device lists none.
const langEnglishUS = 0x0409

// ReadString reads string descriptor index in the device's first language,
// as Linux's usb_string does. The bytes come from the device and are checked
// as such: a descriptor whose length lies is cut to what arrived.
func ReadString(ctx context.Context, t Transport, index int) (string, error) {
	if index <= 0 || index > 0xff {
		return "", fmt.Errorf("usb: string descriptor %d: no such index", index)
	}
	buf := make([]byte, 255)
	lang := uint16(langEnglishUS)
	if n, err := t.Control(ctx, stringSetup(0, 0), buf); err == nil {
		if langs := descriptorBody(buf[:n]); len(langs) >= 2 {
			lang = uint16(langs[0]) | uint16(langs[1])<<8
		}
	}
	n, err := t.Control(ctx, stringSetup(index, lang), buf)
	if err != nil {
		return "", fmt.Errorf("usb: reading string descriptor %d: %w", index, err)
	}
	body := descriptorBody(buf[:n])
	if body == nil {
		return "", fmt.Errorf("usb: string descriptor %d: %d bytes, not a string descriptor", index, n)
	}
	units := make([]uint16, len(body)/2)
	for i := range units {
		units[i] = uint16(body[2*i]) | uint16(body[2*i+1])<<8
	}
	return string(utf16.Decode(units)), nil
}

func stringSetup(index int, lang uint16) Setup {
	return Setup{RequestType: 0x80, Request: requestGetDescriptor, Value: descriptorString<<8 | uint16(index), Index: lang}
}

// descriptorBody returns what follows the two-byte header of a string
// descriptor, within both its bLength and the bytes received; nil when b is
// not a string descriptor.
func descriptorBody(b []byte) []byte {
	if len(b) < 2 || b[1] != descriptorString {
		return nil
	}
	n := min(int(b[0]), len(b))
	if n < 2 {
		return nil
	}
	return b[2:n]
}
