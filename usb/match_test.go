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

func TestFindFunction(t *testing.T) {
	tests := []struct {
		fixture string
		want    Function
	}{
		{"linux-gadget-g_ether", Function{Config: 2, Control: Class{2, 2, 0xff}, ControlIface: 0, DataIface: 1,
			Notify: Endpoint{0x83, 3, 8}, BulkIn: Endpoint{0x81, 2, 512}, BulkOut: Endpoint{0x02, 2, 512}}},
		{"android-e0-01-03", Function{Config: 1, Control: Class{0xe0, 1, 3}, ControlIface: 0, DataIface: 1,
			Notify: Endpoint{0x81, 3, 8}, BulkIn: Endpoint{0x82, 2, 512}, BulkOut: Endpoint{0x01, 2, 512}}},
		{"android-ef-04-01", Function{Config: 1, Control: Class{0xef, 4, 1}, ControlIface: 0, DataIface: 1,
			Notify: Endpoint{0x81, 3, 8}, BulkIn: Endpoint{0x8e, 2, 512}, BulkOut: Endpoint{0x0f, 2, 512}}},
		{"android-bogus-union", Function{Config: 1, Control: Class{0xe0, 1, 3}, ControlIface: 0, DataIface: 1,
			Notify: Endpoint{0x81, 3, 8}, BulkIn: Endpoint{0x82, 2, 512}, BulkOut: Endpoint{0x01, 2, 512}, UnionFallback: true}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			got, err := FindFunction(loadFixture(t, tt.fixture))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("FindFunction\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestFindFunctionRejectsACMModem(t *testing.T) {
	_, err := FindFunction(loadFixture(t, "acm-modem-02-02-ff"))
	if err == nil || !strings.Contains(err.Error(), "modem") {
		t.Errorf("FindFunction(modem) = %v, want an error saying it is a modem", err)
	}
}

func TestFindFunctionNoRNDIS(t *testing.T) {
	configs := loadFixture(t, "linux-gadget-g_ether")[:1] // the CDC-ECM configuration alone
	if _, err := FindFunction(configs); !errors.Is(err, ErrNotRNDIS) {
		t.Errorf("FindFunction(ECM only) = %v, want ErrNotRNDIS", err)
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
	for _, name := range []string{"linux-gadget-g_ether", "android-bogus-union", "android-e0-01-03"} {
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
		if fn, err := FindFunction([]Configuration{c}); err == nil {
			if !fn.BulkIn.Bulk() || !fn.BulkIn.In() || !fn.BulkOut.Bulk() || fn.BulkOut.In() || !fn.Notify.Interrupt() {
				t.Fatalf("FindFunction returned wrong endpoints: %+v", fn)
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
