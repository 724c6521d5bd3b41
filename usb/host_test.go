package usb

import (
	"context"
	"runtime"
	"strings"
	"testing"
)

func TestParseBackend(t *testing.T) {
	for in, want := range map[string]Backend{"": BackendAuto, "auto": BackendAuto, "usbfs": BackendUsbfs, "LibUSB": BackendLibusb} {
		if got, err := ParseBackend(in); err != nil || got != want {
			t.Errorf("ParseBackend(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseBackend("winusb"); err == nil || !strings.Contains(err.Error(), "usbfs") {
		t.Errorf("ParseBackend(winusb) = %v, want an error naming the backends", err)
	}
}

func TestAutoIsUsbfsOnLinux(t *testing.T) {
	want := BackendLibusb
	if runtime.GOOS == "linux" {
		want = BackendUsbfs
	}
	if got := BackendAuto.Resolve(); got != want {
		t.Errorf("auto is %q on %s, want %q", got, runtime.GOOS, want)
	}
	if got := BackendLibusb.Resolve(); got != BackendLibusb {
		t.Errorf("libusb resolves to %q", got)
	}
}

// NewHost with usbfs works where the kernel has no USB at all: the bus is
// empty, and opening finds no device.
func TestNewHostUsbfs(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("usbfs is Linux's")
	}
	h, err := NewHost(BackendAuto)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if h.Backend() != BackendUsbfs {
		t.Errorf("Backend() = %q", h.Backend())
	}
	if _, ok := h.Opener(Selector{}).(Narrower); !ok {
		t.Error("the usbfs Opener is no Narrower")
	}
	if _, ok := h.Opener(Selector{}).(interface {
		WaitChange(context.Context) error
	}); !ok {
		t.Error("the usbfs Opener cannot wait for the bus to change")
	}
	if _, err := h.List(); err != nil {
		t.Errorf("List = %v", err)
	}
}

func TestNewHostRefusesAnUnknownBackend(t *testing.T) {
	if _, err := NewHost("winusb"); err == nil {
		t.Error("NewHost(winusb) succeeded")
	}
}
