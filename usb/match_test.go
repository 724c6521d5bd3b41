package usb

import (
	"bufio"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
)

// loadFixture reads the raw configuration descriptors of a device, one per
// line of hex, "#" lines being comments.
func loadFixture(t *testing.T, name string) []Configuration {
	t.Helper()
	f, err := os.Open("testdata/descriptors/" + name + ".hex")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var configs []Configuration
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		raw, err := hex.DecodeString(strings.ReplaceAll(line, " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		c, err := ParseConfiguration(raw)
		if err != nil {
			t.Fatal(err)
		}
		configs = append(configs, c)
	}
	return configs
}

// choose finds the functions of a fixture and picks one by protocol.
func choose(t *testing.T, fixture string, want Protocol) (Function, error) {
	t.Helper()
	fns, reasons := FindFunctions(loadFixture(t, fixture))
	return Choose(fns, want, reasons)
}

func TestChooseFunction(t *testing.T) {
	tests := []struct {
		fixture  string
		protocol Protocol
		want     Function
	}{
		{"linux-gadget-g_ether", ProtocolAuto, Function{Protocol: ProtocolRNDIS, Config: 2, Control: Class{2, 2, 0xff}, ControlIface: 0, DataIface: 1,
			Notify: Endpoint{0x83, 3, 8}, BulkIn: Endpoint{0x81, 2, 512}, BulkOut: Endpoint{0x02, 2, 512}}},
		{"linux-gadget-g_ether", ProtocolECM, Function{Protocol: ProtocolECM, Config: 1, Control: Class{2, 6, 0}, ControlIface: 0, DataIface: 1, DataAlt: 1,
			Notify: Endpoint{0x83, 3, 16}, BulkIn: Endpoint{0x81, 2, 512}, BulkOut: Endpoint{0x02, 2, 512},
			MACAddressIndex: 4, MaxSegmentSize: 1514}},
		{"linux-gadget-ncm", ProtocolAuto, Function{Protocol: ProtocolNCM, Config: 1, Control: Class{2, 0x0d, 0}, ControlIface: 0, DataIface: 1, DataAlt: 1,
			Notify: Endpoint{0x81, 3, 16}, BulkIn: Endpoint{0x82, 2, 512}, BulkOut: Endpoint{0x01, 2, 512},
			MACAddressIndex: 4, MaxSegmentSize: 1514, NCMCapabilities: 0x11}},
		{"android-e0-01-03", ProtocolAuto, Function{Protocol: ProtocolRNDIS, Config: 1, Control: Class{0xe0, 1, 3}, ControlIface: 0, DataIface: 1,
			Notify: Endpoint{0x81, 3, 8}, BulkIn: Endpoint{0x82, 2, 512}, BulkOut: Endpoint{0x01, 2, 512}}},
		{"android-ef-04-01", ProtocolRNDIS, Function{Protocol: ProtocolRNDIS, Config: 1, Control: Class{0xef, 4, 1}, ControlIface: 0, DataIface: 1,
			Notify: Endpoint{0x81, 3, 8}, BulkIn: Endpoint{0x8e, 2, 512}, BulkOut: Endpoint{0x0f, 2, 512}}},
		{"android-bogus-union", ProtocolAuto, Function{Protocol: ProtocolRNDIS, Config: 1, Control: Class{0xe0, 1, 3}, ControlIface: 0, DataIface: 1,
			Notify: Endpoint{0x81, 3, 8}, BulkIn: Endpoint{0x82, 2, 512}, BulkOut: Endpoint{0x01, 2, 512}, UnionFallback: true}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture+"/"+string(tt.protocol), func(t *testing.T) {
			got, err := choose(t, tt.fixture, tt.protocol)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Choose\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestFindFunctionsListsEveryProtocol(t *testing.T) {
	fns, err := FindFunctions(loadFixture(t, "linux-gadget-g_ether"))
	if err != nil || len(fns) != 2 || fns[0].Protocol != ProtocolECM || fns[1].Protocol != ProtocolRNDIS {
		t.Errorf("FindFunctions(g_ether) = %v, %v; want ECM in configuration 1, then RNDIS", fns, err)
	}
}

func TestChooseRejectsACMModem(t *testing.T) {
	_, err := choose(t, "acm-modem-02-02-ff", ProtocolAuto)
	if !errors.Is(err, ErrNoFunction) || !strings.Contains(err.Error(), "modem") {
		t.Errorf("Choose(modem) = %v, want ErrNoFunction saying it is a modem", err)
	}
}

func TestChooseNamesWhatTheDeviceOffers(t *testing.T) {
	_, err := choose(t, "linux-gadget-ncm", ProtocolRNDIS)
	if err == nil || !strings.Contains(err.Error(), "no rndis function") || !strings.Contains(err.Error(), "offers ncm") {
		t.Errorf("Choose(NCM device, rndis) = %v, want one naming what it offers", err)
	}
}

func TestParseProtocol(t *testing.T) {
	for in, want := range map[string]Protocol{"": ProtocolAuto, "auto": ProtocolAuto, "NCM": ProtocolNCM, "rndis": ProtocolRNDIS, "ecm": ProtocolECM} {
		if got, err := ParseProtocol(in); err != nil || got != want {
			t.Errorf("ParseProtocol(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseProtocol("eem"); err == nil {
		t.Error("ParseProtocol(eem) succeeded")
	}
}

func TestParseConfigurationRejectsTruncated(t *testing.T) {
	raw, _ := hex.DecodeString("09023000010100800009040000")
	if _, err := ParseConfiguration(raw); err == nil {
		t.Error("a descriptor running past the end parsed")
	}
	if _, err := ParseConfiguration([]byte{9, 4}); err == nil {
		t.Error("a non-configuration descriptor parsed")
	}
}

func FuzzParseConfiguration(f *testing.F) {
	for _, name := range []string{"linux-gadget-g_ether", "linux-gadget-ncm", "android-bogus-union", "android-e0-01-03"} {
		b, _ := os.ReadFile("testdata/descriptors/" + name + ".hex")
		for _, line := range strings.Split(string(b), "\n") {
			if raw, err := hex.DecodeString(strings.ReplaceAll(line, " ", "")); err == nil && len(raw) > 0 {
				f.Add(raw)
			}
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := ParseConfiguration(raw)
		if err != nil {
			return
		}
		fns, _ := FindFunctions([]Configuration{c})
		for _, fn := range fns {
			if !fn.BulkIn.Bulk() || !fn.BulkIn.In() || !fn.BulkOut.Bulk() || fn.BulkOut.In() || !fn.Notify.Interrupt() {
				t.Fatalf("FindFunctions returned wrong endpoints: %+v", fn)
			}
		}
	})
}

func TestShortPacketPad(t *testing.T) {
	for _, tt := range []struct{ n, mps, want int }{{512, 512, 1}, {1024, 512, 1}, {513, 512, 0}, {64, 64, 1}, {0, 512, 0}, {100, 0, 0}} {
		if got := ShortPacketPad(tt.n, tt.mps); got != tt.want {
			t.Errorf("ShortPacketPad(%d, %d) = %d, want %d", tt.n, tt.mps, got, tt.want)
		}
	}
}
