package usb

import (
	"context"
	"strings"
	"testing"
	"time"
)

// Messages in the format of the kernel's uevent group, as `udevadm monitor
// --kernel --property` shows them, with NULs between the fields.
func kernelMessage(lines ...string) []byte { return []byte(strings.Join(lines, "\x00") + "\x00") }

func TestParseUevent(t *testing.T) {
	for _, tc := range []struct {
		name    string
		msg     []byte
		ok      bool
		plugged bool
		want    uevent
	}{
		{"a phone plugged in", kernelMessage("add@/devices/pci0000:00/0000:00:14.0/usb1/1-2",
			"ACTION=add", "DEVPATH=/devices/pci0000:00/0000:00:14.0/usb1/1-2", "SUBSYSTEM=usb", "MAJOR=189", "MINOR=5",
			"DEVNAME=bus/usb/001/006", "DEVTYPE=usb_device", "PRODUCT=18d1/4ee3/440", "TYPE=0/0/0", "BUSNUM=001", "DEVNUM=006", "SEQNUM=4711"),
			true, true, uevent{Action: "add", DevPath: "/devices/pci0000:00/0000:00:14.0/usb1/1-2", Subsystem: "usb", DevType: "usb_device",
				BusNum: "001", DevNum: "006", DevName: "bus/usb/001/006"}},
		{"bound to usb's generic driver", kernelMessage("bind@/devices/platform/dummy_hcd.0/usb1/1-1",
			"ACTION=bind", "SUBSYSTEM=usb", "DEVTYPE=usb_device", "DRIVER=usb", "BUSNUM=001", "DEVNUM=002"),
			true, true, uevent{Action: "bind", DevPath: "/devices/platform/dummy_hcd.0/usb1/1-1", Subsystem: "usb", DevType: "usb_device",
				BusNum: "001", DevNum: "002"}},
		{"an interface", kernelMessage("add@/devices/platform/dummy_hcd.0/usb1/1-1/1-1:2.0",
			"ACTION=add", "SUBSYSTEM=usb", "DEVTYPE=usb_interface", "INTERFACE=2/2/255"), true, false,
			uevent{Action: "add", DevPath: "/devices/platform/dummy_hcd.0/usb1/1-1/1-1:2.0", Subsystem: "usb", DevType: "usb_interface"}},
		{"removed", kernelMessage("remove@/devices/platform/dummy_hcd.0/usb1/1-1", "ACTION=remove", "SUBSYSTEM=usb",
			"DEVTYPE=usb_device"), true, false,
			uevent{Action: "remove", DevPath: "/devices/platform/dummy_hcd.0/usb1/1-1", Subsystem: "usb", DevType: "usb_device"}},
		{"a network interface", kernelMessage("add@/devices/virtual/net/usb0", "ACTION=add", "SUBSYSTEM=net", "INTERFACE=usb0"),
			true, false, uevent{Action: "add", DevPath: "/devices/virtual/net/usb0", Subsystem: "net"}},
		{"udev's own", []byte("libudev\x00\xfe\xed\xca\xfe"), false, false, uevent{}},
		{"empty", nil, false, false, uevent{}},
		{"no action", []byte("@/devices\x00SUBSYSTEM=usb"), false, false, uevent{}},
	} {
		got, ok := parseUevent(tc.msg)
		if ok != tc.ok || got != tc.want || got.plugged() != tc.plugged {
			t.Errorf("%s: parseUevent = %+v, %v (plugged %v); want %+v, %v (plugged %v)", tc.name, got, ok, got.plugged(), tc.want, tc.ok, tc.plugged)
		}
	}
}

func FuzzParseUevent(f *testing.F) {
	f.Add(kernelMessage("add@/devices/usb1/1-1", "SUBSYSTEM=usb", "DEVTYPE=usb_device"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, ok := parseUevent(b)
		if ok && e.Action == "" {
			t.Fatalf("parsed %+v without an action", e)
		}
	})
}

// A wait ends with its context, whether or not netlink is allowed here,
// and a closed watcher refuses to wait.
func TestUeventWaitEndsWithItsContext(t *testing.T) {
	w := newUeventWatcher()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := w.wait(ctx); err != nil {
		t.Fatalf("wait = %v", err)
	}
	if d := time.Since(start); d < 40*time.Millisecond || d > 2*time.Second {
		t.Errorf("wait took %v, want its context's 50 ms", d)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.wait(context.Background())
	}()
	time.Sleep(20 * time.Millisecond)
	w.Close()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Close did not end a wait")
	}
	if err := w.wait(context.Background()); err == nil {
		t.Error("a closed watcher waited")
	}
}
