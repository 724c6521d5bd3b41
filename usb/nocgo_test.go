//go:build !cgo

package usb

import (
	"strings"
	"testing"
)

func TestLibusbNeedsCgo(t *testing.T) {
	if _, err := NewHost(BackendLibusb); err == nil || !strings.Contains(err.Error(), "cgo") {
		t.Errorf("NewHost(libusb) without cgo = %v, want an error naming cgo", err)
	}
}
