package usb

import "testing"

func TestParseSelector(t *testing.T) {
	good := map[string]Selector{
		"":              {},
		"auto":          {},
		"18d1:4ee3":     {VendorID: 0x18d1, ProductID: 0x4ee3},
		"serial=ABC123": {Serial: "ABC123"},
		"path=1-2.3":    {Path: "1-2.3"},
		"path=3-1":      {Path: "3-1"},
	}
	for in, want := range good {
		got, err := ParseSelector(in)
		if err != nil || got != want {
			t.Errorf("ParseSelector(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if again, _ := ParseSelector(got.String()); again != got {
			t.Errorf("String() of %+v does not parse back", got)
		}
	}
	for _, in := range []string{"18d1", "18d1:", "zzzz:0001", "serial=", "path=", "path=1", "path=1-x", "12345:1", "sim2"} {
		if _, err := ParseSelector(in); err == nil {
			t.Errorf("ParseSelector(%q) accepted", in)
		}
	}
}

func TestSelectorMatchesAndNarrow(t *testing.T) {
	phone := Info{VendorID: 0x18d1, ProductID: 0x4ee3, Serial: "X1", Path: "1-2"}
	noSerial := Info{VendorID: 0x0525, ProductID: 0xa4a2, Path: "1-1"}
	if !(Selector{}).Matches(phone) || !(Selector{}).Narrow(phone).Matches(phone) || !(Selector{}).Narrow(noSerial).Matches(noSerial) {
		t.Error("a selector does not match its own device")
	}
	moved := phone
	moved.Path = "2-4"
	if !(Selector{}).Narrow(phone).Matches(moved) {
		t.Error("a device with a serial number is not found in another port")
	}
	other := noSerial
	other.Path = "1-3"
	if (Selector{}).Narrow(noSerial).Matches(other) {
		t.Error("a device without serial number matched in another port")
	}
	// A device opened for a protocol comes back through that protocol
	// (g_ether opened for ECM came back as RNDIS when it did not).
	for _, p := range []Protocol{ProtocolAuto, ProtocolNCM, ProtocolRNDIS, ProtocolECM} {
		want := Selector{VendorID: 0x0525, ProductID: 0xa4a2, Path: "1-1", Protocol: p}
		if got := (Selector{Protocol: p}).Narrow(noSerial); got != want {
			t.Errorf("protocol %q: narrowed to %+v, want %+v", p, got, want)
		}
	}
	if got := PortPath(1, []int{2, 3}); got != "1-2.3" {
		t.Errorf("PortPath = %q", got)
	}
}
