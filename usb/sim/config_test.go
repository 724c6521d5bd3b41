package sim

import (
	"strings"
	"testing"

	"github.com/rndis-netd/rndis-netd/ncm"
	"github.com/rndis-netd/rndis-netd/usb"
)

func TestPresetsByName(t *testing.T) {
	want := map[string]usb.Protocol{"qualcomm": usb.ProtocolRNDIS, "linux-gadget": usb.ProtocolRNDIS, "pixel": usb.ProtocolNCM, "dongle": usb.ProtocolECM}
	names := PresetNames()
	if len(names) != len(want) {
		t.Errorf("presets %v", names)
	}
	for _, name := range names {
		cfg, ok := Preset(name)
		if !ok || cfg.Name != name || cfg.Protocol != want[name] {
			t.Errorf("Preset(%q) = %s %s, %v", name, cfg.Name, cfg.Protocol, ok)
			continue
		}
		p, err := New(cfg)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		p.Close()
	}
	if _, ok := Preset("iphone"); ok {
		t.Error("a preset that does not exist")
	}
}

// New refuses a configuration whose function could not work, or that asks
// for what the phone does not implement, naming what is wrong.
func TestNewRefusesFunctionsThatCannotWork(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"an unknown protocol", func(c *Config) { c.Protocol = "token ring" }, "protocol"},
		{"RNDIS transfers smaller than a frame", func(c *Config) { *c = Qualcomm(); c.MaxTransferSize = 1000 }, "MaxTransferSize"},
		{"NCM blocks smaller than a frame", func(c *Config) { c.NTBParameters.InMaxSize = 1024 }, "dwNtbInMaxSize"},
		{"NCM without NTB16", func(c *Config) { c.NTBParameters.FormatsSupported = ncm.NTB32Supported }, "NTB16"},
		{"NCM GET/SET_MAX_DATAGRAM_SIZE", func(c *Config) { c.NCMCapabilities |= ncm.CapMaxDatagramSize }, "capabilities"},
		{"a segment smaller than the MTU's frame", func(c *Config) { c.MaxSegmentSize = 1500 }, "wMaxSegmentSize"},
		{"ECM with a segment smaller than the MTU's frame", func(c *Config) { *c = Dongle(); c.MaxSegmentSize = 1500 }, "wMaxSegmentSize"},
		{"a 4-byte interrupt endpoint", func(c *Config) { c.NotifyMaxPacket = 4 }, "interrupt endpoint"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Pixel()
			c.mod(&cfg)
			p, err := New(cfg)
			if err == nil {
				p.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("%v: does not name %s", err, c.want)
			}
		})
	}
}
