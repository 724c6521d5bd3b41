package usb

import (
	"context"
	"errors"
	"testing"
)

// stringDevice answers GET_DESCRIPTOR(STRING) from a table of raw
// descriptors, keyed by index; it stalls the rest.
type stringDevice struct {
	Transport
	raw   map[int][]byte
	langs []uint16 // the wIndex of each string request but the list's
}

func (d *stringDevice) Control(ctx context.Context, s Setup, data []byte) (int, error) {
	idx := int(s.Value & 0xff)
	b, ok := d.raw[idx]
	if s != stringSetup(idx, s.Index) || !ok {
		return 0, ErrStall
	}
	if idx != 0 {
		d.langs = append(d.langs, s.Index)
	}
	return copy(data, b), nil
}

func TestReadString(t *testing.T) {
	mac := []byte{26, 3, '0', 0, '2', 0, '5', 0, '0', 0, '4', 0, '8', 0, '4', 0, 'f', 0, '4', 0, 'e', 0, '4', 0, '5', 0}
	tests := []struct {
		name     string
		raw      map[int][]byte
		want     string
		wantLang uint16
		fail     bool
	}{
		{"in the device's first language", map[int][]byte{0: {6, 3, 0x07, 0x04, 0x09, 0x04}, 4: mac}, "0250484f4e45", 0x0407, false},
		{"no language list: US English", map[int][]byte{4: mac}, "0250484f4e45", 0x0409, false},
		{"bLength past what arrived is cut", map[int][]byte{4: {200, 3, 'a', 0, 'b', 0}}, "ab", 0x0409, false},
		{"an odd byte is dropped", map[int][]byte{4: {5, 3, 'a', 0, 'b'}}, "a", 0x0409, false},
		{"not a string descriptor", map[int][]byte{4: {4, 2, 'a', 0}}, "", 0x0409, true},
		{"stalled", map[int][]byte{}, "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &stringDevice{raw: tt.raw}
			got, err := ReadString(context.Background(), d, 4)
			if (err != nil) != tt.fail || got != tt.want {
				t.Fatalf("ReadString = %q, %v; want %q (fail %v)", got, err, tt.want, tt.fail)
			}
			if tt.wantLang != 0 && (len(d.langs) != 1 || d.langs[0] != tt.wantLang) {
				t.Errorf("asked in languages %#x, want %#x", d.langs, tt.wantLang)
			}
		})
	}
	if _, err := ReadString(context.Background(), &stringDevice{}, 0); err == nil || errors.Is(err, ErrStall) {
		t.Errorf("ReadString(index 0) = %v, want a refusal without asking the device", err)
	}
}
