package usb

import (
	"runtime"
	"testing"
	"unsafe"
)

// The ioctl numbers and structure sizes are those of <linux/usbdevice_fs.h>
// as compiled for amd64 and arm64 (64-bit) and arm and 386 (32-bit).
func TestUsbfsIoctlNumbers(t *testing.T) {
	var want map[string]uintptr
	switch runtime.GOARCH {
	case "amd64", "arm64", "riscv64", "loong64", "s390x":
		want = map[string]uintptr{"CONTROL": 0xc0185500, "SUBMITURB": 0x8038550a, "REAPURBNDELAY": 0x4008550d,
			"DISCONNECT_CLAIM": 0x8108551b, "IOCTL": 0xc0105512, "CLAIMINTERFACE": 0x8004550f, "SETINTERFACE": 0x80085504,
			"GETDRIVER": 0x41045508, "DISCARDURB": 0x550b, "CONNECT": 0x5517, "DISCONNECT": 0x5516, "CLEAR_HALT": 0x80045515}
	case "arm", "386":
		want = map[string]uintptr{"CONTROL": 0xc0105500, "SUBMITURB": 0x802c550a, "REAPURBNDELAY": 0x4004550d,
			"DISCONNECT_CLAIM": 0x8108551b, "IOCTL": 0xc00c5512}
	default:
		t.Skipf("no reference numbers for %s", runtime.GOARCH)
	}
	got := map[string]uintptr{"CONTROL": reqControl, "SUBMITURB": reqSubmitURB, "REAPURBNDELAY": reqReapURBNDelay,
		"DISCONNECT_CLAIM": reqDisconnectClaim, "IOCTL": reqIoctl, "CLAIMINTERFACE": reqClaimInterface,
		"SETINTERFACE": reqSetInterface, "GETDRIVER": reqGetDriver, "DISCARDURB": reqDiscardURB, "CONNECT": reqConnect,
		"DISCONNECT": reqDisconnect, "CLEAR_HALT": reqClearHalt}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("USBDEVFS_%s = %#x, want %#x", name, got[name], w)
		}
	}
	if s := unsafe.Sizeof(usbdevfsURB{}); s != 56 && unsafe.Sizeof(uintptr(0)) == 8 || s != 44 && unsafe.Sizeof(uintptr(0)) == 4 {
		t.Errorf("struct usbdevfs_urb is %d bytes", s)
	}
}
