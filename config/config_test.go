package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/rndis-netd/rndis-netd/stack"
	"github.com/rndis-netd/rndis-netd/usb"
)

func write(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const full = `
log: {level: debug, format: json}
device: {select: "18d1:4ee3"}
network: {ipv4: 192.168.42.5/24, ipv6: off, gateway: 192.168.42.129, dns: [192.168.42.129, "fd00::1"], mtu: 1400}
socks5: {listen: "0.0.0.0:1080", username: u, password: p, connect_timeout: 5s}
http_proxy: {listen: "127.0.0.1:8118"}
forwards:
  - {proto: tcp, listen: "127.0.0.1:2222", connect: "192.168.42.129:22"}
  - {proto: udp, listen: "127.0.0.1:5353", connect: "phone.test:53"}
exposes:
  - {proto: tcp, listen: ":8080", connect: "127.0.0.1:80"}
admin: {listen: "127.0.0.1:9741"}
capture: {pcap: /tmp/x.pcap}
`

func TestLoadEveryKey(t *testing.T) {
	c, err := Load(write(t, "c.yaml", full), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Log.Level != "debug" || c.Device.Select != "18d1:4ee3" || c.Network.MTU != 1400 || len(c.Network.DNS) != 2 ||
		c.SOCKS5.Username != "u" || c.SOCKS5.ConnectTimeout != 5*time.Second || c.HTTPProxy.ConnectTimeout != 30*time.Second || len(c.Forwards) != 2 || c.Forwards[1].Connect != "phone.test:53" ||
		c.Exposes[0].Listen != ":8080" || c.Capture.Pcap != "/tmp/x.pcap" || c.HTTPProxy.Listen != "127.0.0.1:8118" {
		t.Errorf("loaded %+v", c)
	}
}

func TestDefaults(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Device.Select != "auto" || !c.Device.Wait || c.Network.IPv4 != "dhcp" || c.SOCKS5.Listen != "127.0.0.1:1080" || c.Admin.Listen != "127.0.0.1:9741" || c.Log.Level != "info" {
		t.Errorf("defaults %+v", c)
	}
}

func TestTOMLAndJSONToo(t *testing.T) {
	for name, text := range map[string]string{
		"c.toml": "[device]\nselect = \"sim\"\n[[forwards]]\nproto = \"tcp\"\nlisten = \"127.0.0.1:2222\"\nconnect = \"192.168.42.129:22\"\n",
		"c.json": `{"device": {"select": "sim"}, "forwards": [{"proto": "tcp", "listen": "127.0.0.1:2222", "connect": "192.168.42.129:22"}]}`,
	} {
		c, err := Load(write(t, name, text), nil)
		if err != nil || c.Device.Select != "sim" || len(c.Forwards) != 1 {
			t.Errorf("%s: %+v, %v", name, c, err)
		}
	}
}

// Flags beat the environment, which beats the file.
func TestPrecedence(t *testing.T) {
	path := write(t, "c.yaml", "log: {level: warn}\ndevice: {select: sim}\nadmin: {listen: \"127.0.0.1:1\"}\n")
	t.Setenv("RNDIS_NETD_LOG_LEVEL", "error")
	t.Setenv("RNDIS_NETD_ADMIN_LISTEN", "127.0.0.1:2")
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	AddFlags(fs)
	if err := fs.Parse([]string{"--admin.listen", "127.0.0.1:3"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, fs)
	if err != nil {
		t.Fatal(err)
	}
	if c.Log.Level != "error" || c.Admin.Listen != "127.0.0.1:3" || c.Device.Select != "sim" {
		t.Errorf("level %q (env), admin %q (flag), device %q (file)", c.Log.Level, c.Admin.Listen, c.Device.Select)
	}
}

// brokenConfigs returns the corpus of broken configuration files in
// testdata/broken, each with the key its error must name (the file's first
// line, "# key: KEY"), and two that cannot be read at all.
func brokenConfigs(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("testdata/broken/*")
	if err != nil || len(files) < 30 {
		t.Fatalf("the corpus has %d files (%v), want at least 30", len(files), err)
	}
	out := map[string]string{}
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		first, _, _ := strings.Cut(string(text), "\n")
		key, ok := strings.CutPrefix(first, "# key: ")
		if !ok {
			t.Fatalf("%s: the first line must be \"# key: KEY\"", f)
		}
		out[f] = key
	}
	dir := t.TempDir()
	out[filepath.Join(dir, "missing.yaml")] = "(file)"
	unreadable := filepath.Join(dir, "directory.yaml")
	if err := os.Mkdir(unreadable, 0o755); err != nil {
		t.Fatal(err)
	}
	out[unreadable] = "(file)"
	return out
}

// Each broken file is refused with an error that names the key.
func TestBrokenConfigurations(t *testing.T) {
	for path, key := range brokenConfigs(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			_, err := Load(path, nil)
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("Load = %v, want a *config.Error", err)
			}
			if !strings.Contains(err.Error(), key) {
				t.Errorf("error does not name %q:\n%v", key, err)
			}
		})
	}
}

func TestOpenProxyAllowedWhenAsked(t *testing.T) {
	if _, err := Load(write(t, "c.yaml", "allow_open_proxy: true\nsocks5: {listen: \"0.0.0.0:1080\"}\n"), nil); err != nil {
		t.Error(err)
	}
}

// The commented example configuration is valid and has every key.
func TestExampleConfiguration(t *testing.T) {
	c, err := Load("../examples/rndis-netd.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Device.Select != "auto" || c.Admin.Listen != "127.0.0.1:9741" {
		t.Errorf("%+v", c)
	}
	text, _ := os.ReadFile("../examples/rndis-netd.yaml")
	for k := range defaults {
		last := k[strings.LastIndex(k, ".")+1:]
		if !strings.Contains(string(text), last+":") {
			t.Errorf("examples/rndis-netd.yaml lacks %s", k)
		}
	}
}

// device.select names the simulated phone with its preset, started
// unplugged if asked.
func TestSimulatedPhoneSelection(t *testing.T) {
	for sel, want := range map[string]struct {
		preset    string
		unplugged bool
	}{
		"sim":                        {"qualcomm", false},
		"sim:linux-gadget":           {"linux-gadget", false},
		"sim:unplugged":              {"qualcomm", true},
		"sim:linux-gadget:unplugged": {"linux-gadget", true},
	} {
		_, phone, err := Device{Select: sel}.Parse()
		if err != nil || phone == nil || phone.Config.Name != want.preset || phone.Unplugged != want.unplugged {
			t.Errorf("%q: %+v, %v; want %s, unplugged %v", sel, phone, err, want.preset, want.unplugged)
		}
	}
}

// device.protocol picks the function of a device that offers several.
func TestDeviceProtocol(t *testing.T) {
	for in, want := range map[string]usb.Protocol{"": usb.ProtocolAuto, "auto": usb.ProtocolAuto, "ncm": usb.ProtocolNCM,
		"rndis": usb.ProtocolRNDIS, "ecm": usb.ProtocolECM} {
		sel, _, err := Device{Select: "auto", Protocol: in}.Parse()
		if err != nil || sel.Protocol != want {
			t.Errorf("protocol %q: selector %+v, %v; want protocol %q", in, sel, err, want)
		}
	}
}

// network.tcp reaches the netstack as stack.TCP; the defaults are the
// netstack's own (RACK off, Reno, its buffer caps).
func TestNetworkTCP(t *testing.T) {
	c, err := Load(write(t, "c.yaml", "network:\n  tcp: {recovery: rack, congestion_control: cubic, receive_buffer_max: 4194304}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := stack.TCP{Recovery: stack.RecoveryRACK, CongestionControl: "cubic", ReceiveBufferMax: 4 << 20}
	if got := c.Network.StackTCP(); got != want {
		t.Errorf("stack TCP %+v; want %+v", got, want)
	}
	d, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Network.StackTCP(); got != (stack.TCP{Recovery: stack.RecoveryOff, CongestionControl: "reno"}) {
		t.Errorf("default stack TCP %+v", got)
	}
}
