//go:build cgo

package usb

import "testing"

// A device opened for a protocol is opened again for that protocol once it
// comes back, not at the function auto would choose.
func TestNarrowKeepsProtocol(t *testing.T) {
	for _, p := range []Protocol{ProtocolAuto, ProtocolNCM, ProtocolRNDIS, ProtocolECM} {
		o := hostOpener{sel: Selector{Protocol: p}}
		i := Info{VendorID: 0x0525, ProductID: 0xa4a2, Path: "1-1"}
		n, ok := o.Narrow(i).(hostOpener)
		if !ok {
			t.Fatalf("Narrow returned %T", o.Narrow(i))
		}
		if want := (Selector{VendorID: 0x0525, ProductID: 0xa4a2, Path: "1-1", Protocol: p}); n.sel != want {
			t.Errorf("protocol %q: narrowed to %+v, want %+v", p, n.sel, want)
		}
	}
}
