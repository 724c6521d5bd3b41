package usb

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// sysfsDevice is one USB device as /sys/bus/usb/devices/<port path>
// describes it: what listing and matching need, read without opening the
// device. Its descriptors are those the kernel read at enumeration, the
// same bytes the device node gives.
type sysfsDevice struct {
	dir     string
	info    Info // without Function
	configs []Configuration
	active  int   // bConfigurationValue, 0 when unconfigured
	err     error // why the descriptors could not be parsed
}

// node returns the device's usbfs node under dev (normally /dev/bus/usb).
func (d sysfsDevice) node(dev string) string {
	return filepath.Join(dev, fmt.Sprintf("%03d", d.info.Bus), fmt.Sprintf("%03d", d.info.Address))
}

// classes returns the class triples of every interface setting.
func (d sysfsDevice) classes() []Class {
	var cs []Class
	for _, c := range d.configs {
		for _, s := range c.Interfaces {
			cs = append(cs, s.Class)
		}
	}
	return cs
}

// functions returns the device's network functions and why others failed.
func (d sysfsDevice) functions() ([]Function, error) {
	if d.err != nil {
		return nil, d.err
	}
	return FindFunctions(d.configs)
}

// scanSysfs reads every USB device under root (normally
// /sys/bus/usb/devices), ordered by port path. Root hubs and interfaces are
// skipped. A kernel without USB has no root: that is no device.
func scanSysfs(root string) ([]sysfsDevice, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("usb: listing devices: %w", err)
	}
	var out []sysfsDevice
	for _, e := range entries {
		if !validPath(e.Name()) { // "usb1" (a root hub), "1-1:1.0" (an interface)
			continue
		}
		d, err := readSysfsDevice(filepath.Join(root, e.Name()))
		if err != nil {
			continue // gone while listing, or not a device
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b sysfsDevice) int { return strings.Compare(a.info.Path, b.info.Path) })
	return out, nil
}

// readSysfsDevice reads one device directory. Errors of its descriptors
// are kept in the result: the device is still listed, with the reason.
func readSysfsDevice(dir string) (sysfsDevice, error) {
	d := sysfsDevice{dir: dir}
	attr := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		return strings.TrimSpace(string(b))
	}
	num := func(name string) (int, error) {
		v, err := strconv.Atoi(attr(name))
		if err != nil {
			return 0, fmt.Errorf("usb: %s: %s: %w", dir, name, err)
		}
		return v, nil
	}
	var err error
	if d.info.Bus, err = num("busnum"); err != nil {
		return d, err
	}
	if d.info.Address, err = num("devnum"); err != nil {
		return d, err
	}
	d.active, _ = num("bConfigurationValue") // empty when unconfigured
	d.info.Path = filepath.Base(dir)
	d.info.Manufacturer = attr("manufacturer")
	d.info.Product = attr("product")
	d.info.Serial = attr("serial")
	d.info.Speed = sysfsSpeed(attr("speed"))
	raw, err := os.ReadFile(filepath.Join(dir, "descriptors"))
	if err != nil {
		return d, fmt.Errorf("usb: %s: %w", dir, err)
	}
	var dev deviceDescriptor
	dev, d.configs, d.err = parseDescriptors(raw)
	d.info.VendorID, d.info.ProductID = dev.vendor, dev.product
	if d.err != nil {
		d.err = fmt.Errorf("%s/descriptors: %w", dir, d.err)
	}
	return d, nil
}

// deviceDescriptor is what matching needs of a device descriptor.
type deviceDescriptor struct {
	vendor, product uint16
	configs         int // bNumConfigurations
}

// parseDescriptors parses sysfs's descriptors file: the device descriptor,
// then each configuration descriptor with its interfaces and endpoints,
// wTotalLength bytes each.
func parseDescriptors(raw []byte) (deviceDescriptor, []Configuration, error) {
	var dev deviceDescriptor
	if len(raw) < 18 || raw[0] < 18 || raw[1] != 0x01 {
		return dev, nil, fmt.Errorf("usb: device descriptor: %d bytes, type %#x", len(raw), firstType(raw))
	}
	dev = deviceDescriptor{vendor: uint16(raw[8]) | uint16(raw[9])<<8, product: uint16(raw[10]) | uint16(raw[11])<<8, configs: int(raw[17])}
	var configs []Configuration
	for off := int(raw[0]); off < len(raw); {
		if len(raw)-off < 4 {
			return dev, configs, fmt.Errorf("usb: %d stray bytes after configuration %d", len(raw)-off, len(configs))
		}
		total := int(raw[off+2]) | int(raw[off+3])<<8
		if total < 9 || off+total > len(raw) {
			return dev, configs, fmt.Errorf("usb: configuration descriptor at byte %d: wTotalLength %d of %d bytes left", off, total, len(raw)-off)
		}
		c, err := ParseConfiguration(raw[off : off+total])
		if err != nil {
			return dev, configs, err
		}
		configs = append(configs, c)
		off += total
	}
	return dev, configs, nil
}

// sysfsSpeed names sysfs's speed (Mbit/s) as gousb names speeds.
func sysfsSpeed(s string) string {
	switch s {
	case "1.5":
		return "low"
	case "12":
		return "full"
	case "480":
		return "high"
	case "5000":
		return "super"
	case "10000", "20000":
		return "super-plus"
	}
	return "unknown"
}
