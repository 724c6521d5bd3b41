package usb

import (
	"bytes"
	"errors"
	"testing"
)

// urbs serves the URBs of a device's transfers one read at a time, as
// gousb's ReadStream does.
type urbs struct {
	data [][]byte
	err  error // after the last URB
}

func (u *urbs) read(p []byte) (int, error) {
	if len(u.data) == 0 {
		return 0, u.err
	}
	n := copy(p, u.data[0])
	if n < len(u.data[0]) {
		panic("a read smaller than a URB")
	}
	u.data = u.data[1:]
	return n, nil
}

func filled(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }

func TestReadTransferJoinsTheURBsOfOneTransfer(t *testing.T) {
	const urb = 2048
	errUnplugged := errors.New("unplugged")
	for _, c := range []struct {
		name  string
		buf   int // bytes
		urbs  [][]byte
		err   error
		want  [][]byte // the transfers read, in turn
		final error
	}{
		{"one frame, one short URB", 8*urb + 512, [][]byte{filled(1558, 1), filled(100, 2)}, nil,
			[][]byte{filled(1558, 1), filled(100, 2)}, nil},
		{"an aggregated transfer over three URBs", 8*urb + 512, [][]byte{filled(urb, 1), filled(urb, 2), filled(700, 3), filled(60, 4)}, nil,
			[][]byte{append(append(filled(urb, 1), filled(urb, 2)...), filled(700, 3)...), filled(60, 4)}, nil},
		{"a multiple of the URB size ends with an empty URB", 8*urb + 512, [][]byte{filled(urb, 1), {}, filled(9, 2)}, nil,
			[][]byte{filled(urb, 1), filled(9, 2)}, nil},
		{"a transfer longer than the buffer goes on in the next", 2*urb + 512, [][]byte{filled(urb, 1), filled(urb, 2), filled(urb, 3), filled(5, 4)}, nil,
			[][]byte{append(filled(urb, 1), filled(urb, 2)...), append(filled(urb, 3), filled(5, 4)...)}, nil},
		{"an error mid-transfer is returned with it", 8*urb + 512, [][]byte{filled(urb, 1)}, errUnplugged,
			nil, errUnplugged},
	} {
		u := &urbs{data: c.urbs, err: c.err}
		buf := make([]byte, c.buf)
		for i, want := range c.want {
			n, err := readTransfer(u.read, buf, urb)
			if err != nil || !bytes.Equal(buf[:n], want) {
				t.Errorf("%s: transfer %d: %d bytes, %v; want %d bytes", c.name, i, n, err, len(want))
			}
		}
		if c.final != nil {
			if _, err := readTransfer(u.read, buf, urb); !errors.Is(err, c.final) {
				t.Errorf("%s: error %v, want %v", c.name, err, c.final)
			}
		}
	}
}
