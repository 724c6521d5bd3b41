package usb

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/sysfs from testdata/descriptors")

// sysfsFixtures are the devices of the fake sysfs tree in testdata/sysfs,
// each built from a descriptor fixture: its directory (the port path) and
// attributes.
var sysfsFixtures = []struct {
	port, fixture string
	vid, pid      uint16
	busnum        int
	devnum        int
	active        string
	attrs         map[string]string
}{
	{"1-1", "linux-gadget-g_ether", 0x0525, 0xa4a2, 1, 2, "1",
		map[string]string{"manufacturer": "Linux 6.1.0 with dummy_udc", "product": "RNDIS/Ethernet Gadget", "speed": "480"}},
	{"1-2", "linux-gadget-ncm", 0x1d6b, 0x0104, 1, 3, "1",
		map[string]string{"product": "NCM Gadget", "serial": "ncm-0001", "speed": "480"}},
	{"2-1.4", "android-e0-01-03", 0x18d1, 0x4ee3, 2, 7, "1",
		map[string]string{"manufacturer": "Google", "product": "Pixel", "serial": "0A1B2C", "speed": "480"}},
	{"1-3", "acm-modem-02-02-ff", 0x1234, 0x5678, 1, 4, "1", map[string]string{"speed": "12"}},
	{"1-4", "android-bogus-union", 0x2717, 0xff88, 1, 5, "", map[string]string{"speed": "5000"}},
}

// rawFixture reads a descriptor fixture's configurations as bytes.
func rawFixture(t *testing.T, name string) [][]byte {
	t.Helper()
	text, err := os.ReadFile("testdata/descriptors/" + name + ".hex")
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, line := range strings.Split(string(text), "\n") {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		raw, err := hex.DecodeString(strings.ReplaceAll(line, " ", ""))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, raw)
	}
	return out
}

// sysfsDescriptors is what sysfs's descriptors file holds: a device
// descriptor, then the configurations.
func sysfsDescriptors(vid, pid uint16, configs [][]byte) []byte {
	dev := []byte{18, 0x01, 0x00, 0x02, 0, 0, 0, 64, byte(vid), byte(vid >> 8), byte(pid), byte(pid >> 8), 0x00, 0x01, 1, 2, 3, byte(len(configs))}
	return append(dev, bytes.Join(configs, nil)...)
}

const sysfsRoot = "testdata/sysfs/bus/usb/devices"

// The fake sysfs tree is what the descriptor fixtures give; -update
// rewrites it.
func TestSysfsTreeMatchesTheFixtures(t *testing.T) {
	files := map[string][]byte{
		"usb1/busnum": []byte("1\n"), "usb1/devnum": []byte("1\n"), // a root hub: skipped
	}
	for _, d := range sysfsFixtures {
		files[d.port+"/descriptors"] = sysfsDescriptors(d.vid, d.pid, rawFixture(t, d.fixture))
		files[d.port+"/busnum"] = []byte(strconv.Itoa(d.busnum) + "\n")
		files[d.port+"/devnum"] = []byte(strconv.Itoa(d.devnum) + "\n")
		files[d.port+"/bConfigurationValue"] = []byte(d.active + "\n")
		for k, v := range d.attrs {
			files[d.port+"/"+k] = []byte(v + "\n")
		}
	}
	for name, want := range files {
		path := filepath.Join(sysfsRoot, name)
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s differs from the fixtures (%v): go test ./usb -run TestSysfsTree -update", path, err)
		}
	}
}

func TestScanSysfs(t *testing.T) {
	devs, err := scanSysfs(sysfsRoot)
	if err != nil {
		t.Fatal(err)
	}
	var ports []string
	for _, d := range devs {
		ports = append(ports, d.info.Path)
	}
	if got := strings.Join(ports, " "); got != "1-1 1-2 1-3 1-4 2-1.4" {
		t.Fatalf("devices %q, want the five fixtures without the root hub and the interface", got)
	}
	g := devs[0]
	want := Info{Bus: 1, Address: 2, Path: "1-1", VendorID: 0x0525, ProductID: 0xa4a2,
		Manufacturer: "Linux 6.1.0 with dummy_udc", Product: "RNDIS/Ethernet Gadget", Speed: "high"}
	if g.info != want {
		t.Errorf("g_ether: %+v, want %+v", g.info, want)
	}
	if g.active != 1 || len(g.configs) != 2 || g.node("/dev/bus/usb") != "/dev/bus/usb/001/002" {
		t.Errorf("g_ether: active %d, %d configurations, node %s", g.active, len(g.configs), g.node("/dev/bus/usb"))
	}
	fns, err := g.functions()
	if err != nil || len(fns) != 2 || fns[0].Protocol != ProtocolECM || fns[1].Protocol != ProtocolRNDIS || fns[1].Config != 2 {
		t.Errorf("g_ether functions %v, %v; want ECM then RNDIS in configuration 2", fns, err)
	}
	if devs[4].info.Serial != "0A1B2C" || devs[4].info.Bus != 2 || devs[3].active != 0 || devs[3].info.Speed != "super" {
		t.Errorf("2-1.4: %+v; 1-4: active %d speed %s", devs[4].info, devs[3].active, devs[3].info.Speed)
	}
}

// Interfaces ("1-1:1.0") and root hubs ("usb1") are no port paths.
func TestScanSysfsSkipsInterfacesAndHubs(t *testing.T) {
	for _, name := range []string{"1-1:1.0", "usb1", "1-1.2:2.1"} {
		if validPath(name) {
			t.Errorf("%s is taken for a device", name)
		}
	}
}

func TestScanSysfsWithoutUSB(t *testing.T) {
	devs, err := scanSysfs(filepath.Join(t.TempDir(), "absent"))
	if err != nil || len(devs) != 0 {
		t.Fatalf("scanSysfs of a kernel without USB = %v, %v; want nothing", devs, err)
	}
}

func TestParseDescriptorsRejectsGarbage(t *testing.T) {
	good := sysfsDescriptors(1, 2, rawFixture(t, "linux-gadget-ncm"))
	for name, raw := range map[string][]byte{
		"empty":            nil,
		"not a device":     append([]byte{18, 0x02}, good[2:]...),
		"cut":              good[:len(good)-3],
		"stray bytes":      append(bytes.Clone(good), 9, 2),
		"zero total":       append(bytes.Clone(good[:18]), 9, 2, 0, 0, 1, 1, 0, 0x80, 0),
		"total past end":   append(bytes.Clone(good[:18]), 9, 2, 0xff, 0, 1, 1, 0, 0x80, 0),
		"bad inner length": append(bytes.Clone(good[:18]), 9, 2, 11, 0, 1, 1, 0, 0x80, 0, 0, 4),
	} {
		if _, _, err := parseDescriptors(raw); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	if dev, cfgs, err := parseDescriptors(good); err != nil || dev.vendor != 1 || dev.product != 2 || dev.configs != 1 || len(cfgs) != 1 {
		t.Errorf("parseDescriptors = %+v, %d configurations, %v", dev, len(cfgs), err)
	}
}

// List reads sysfs alone: every tether with its functions, the modem with
// why it is not one, nothing for a device without a tether's class.
func TestUsbfsList(t *testing.T) {
	dev := t.TempDir()
	for _, d := range sysfsFixtures {
		node := filepath.Join(dev, (sysfsDevice{info: Info{Bus: d.busnum, Address: d.devnum}}).node(""))
		os.MkdirAll(filepath.Dir(node), 0o755)
		os.WriteFile(node, nil, 0o600)
	}
	b := &usbfsBus{sysfs: sysfsRoot, dev: dev, watch: newUeventWatcher()}
	defer b.Close()
	cands, err := b.List()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Candidate{}
	for _, c := range cands {
		got[c.Path] = c
	}
	if c := got["1-1"]; c.Function.Protocol != ProtocolRNDIS || len(c.Functions) != 2 || c.OpenErr != nil && os.Geteuid() == 0 {
		t.Errorf("g_ether: %v %v %v", c.Function, c.Functions, c.OpenErr)
	}
	if c := got["1-2"]; c.Function.Protocol != ProtocolNCM || c.Serial != "ncm-0001" {
		t.Errorf("ncm: %+v", c)
	}
	if c := got["1-3"]; !errors.Is(c.OpenErr, ErrNoFunction) {
		t.Errorf("the ACM modem: %v, want ErrNoFunction", c.OpenErr)
	}
	if c, ok := got["2-1.4"]; !ok || c.Function.Protocol != ProtocolRNDIS {
		t.Errorf("android e0/01/03: %+v", c)
	}
}

func TestUsbfsListNamesAMissingNode(t *testing.T) {
	b := &usbfsBus{sysfs: sysfsRoot, dev: t.TempDir(), watch: newUeventWatcher()}
	defer b.Close()
	cands, _ := b.List()
	for _, c := range cands {
		if c.Function.Protocol != "" && (c.OpenErr == nil || !strings.Contains(c.OpenErr.Error(), c.Info.String())) {
			t.Errorf("%s without a device node: %v", c.Path, c.OpenErr)
		}
	}
}

func TestUsbfsOpenSelects(t *testing.T) {
	dev := t.TempDir()
	b := &usbfsBus{sysfs: sysfsRoot, dev: dev, watch: newUeventWatcher()}
	defer b.Close()
	ctx := context.Background()
	if _, err := b.Opener(Selector{VendorID: 0xdead, ProductID: 0xbeef}).Open(ctx); !errors.Is(err, ErrNoDevice) {
		t.Errorf("no such device: %v, want ErrNoDevice", err)
	}
	_, err := b.Opener(Selector{VendorID: 0x1234, ProductID: 0x5678}).Open(ctx)
	if !errors.Is(err, ErrNoDevice) || !strings.Contains(err.Error(), "modem") {
		t.Errorf("the modem: %v, want ErrNoDevice saying why", err)
	}
	// A node that is no usbfs node: the first ioctl fails and says which.
	node := filepath.Join(dev, "001", "003")
	os.MkdirAll(filepath.Dir(node), 0o755)
	os.WriteFile(node, nil, 0o600)
	_, err = b.Opener(Selector{Serial: "ncm-0001"}).Open(ctx)
	if err == nil || !strings.Contains(err.Error(), "USBDEVFS_") || !strings.Contains(err.Error(), node) {
		t.Errorf("opening a regular file: %v, want the ioctl and the node named", err)
	}
	o := b.Opener(Selector{}).(Narrower).Narrow(Info{VendorID: 1, ProductID: 2, Serial: "x"})
	if s := o.(usbfsOpener).sel; s.Serial != "x" {
		t.Errorf("Narrow: selector %v", s)
	}
}

func TestSysfsSpeed(t *testing.T) {
	for in, want := range map[string]string{"1.5": "low", "12": "full", "480": "high", "5000": "super", "10000": "super-plus", "": "unknown"} {
		if got := sysfsSpeed(in); got != want {
			t.Errorf("sysfsSpeed(%q) = %q, want %q", in, got, want)
		}
	}
}
