package rndis

import (
	"bytes"
	"testing"
)

func TestResponseAvailableNotification(t *testing.T) {
	n := ResponseAvailableNotification()
	if want := []byte{1, 0, 0, 0, 0, 0, 0, 0}; !bytes.Equal(n, want) {
		t.Errorf("notification %x, want %x", n, want)
	}
	for _, tt := range []struct {
		note []byte
		want bool
	}{
		{n, true},
		{[]byte{0xA1, 0x01, 0, 0, 0, 0, 0, 0}, true}, // the CDC form
		{nil, false},
		{[]byte{1, 0, 0, 0}, false},
		{[]byte{1, 0, 0, 0, 0, 0, 0, 0, 0}, false},
		{[]byte{2, 0, 0, 0, 0, 0, 0, 0}, false},
		{[]byte{0xA1, 0x00, 0, 0, 0, 0, 0, 0}, false}, // CDC NETWORK_CONNECTION
	} {
		if got := IsResponseAvailable(tt.note); got != tt.want {
			t.Errorf("IsResponseAvailable(%x) = %v, want %v", tt.note, got, tt.want)
		}
	}
}
