package ncm

import (
	"errors"
	"testing"
)

// goldenNotifications are the notifications Linux's f_ncm sends
// (ncm_do_notify): the speed first, both rates gether_bitrate's (425984000
// bit/s at high speed), then the connection.
var goldenNotifications = []struct {
	name string
	n    Notification
	hex  string
}{
	{"NETWORK_CONNECTION connected", ConnectionNotification(0, true), "a1 00 0100 0000 0000"},
	{"NETWORK_CONNECTION disconnected, interface 2", ConnectionNotification(2, false), "a1 00 0000 0200 0000"},
	{"CONNECTION_SPEED_CHANGE at high speed", SpeedNotification(0, 425984000, 425984000), "a1 2a 0000 0000 0800 00006419 00006419"},
	{"RESPONSE_AVAILABLE", Notification{Code: NotifyResponseAvailable, Interface: 1}, "a1 01 0000 0100 0000"},
}

// readNotifications feeds each transfer and returns what came out and the
// errors.
func readNotifications(transfers ...[]byte) ([]Notification, []error) {
	var r NotificationReader
	var got []Notification
	var errs []error
	for _, tr := range transfers {
		r.Feed(tr)
		for n, ok := r.Next(); ok; n, ok = r.Next() {
			got = append(got, n)
		}
		if r.Err() != nil {
			errs = append(errs, r.Err())
		}
	}
	return got, errs
}

func TestNotificationGolden(t *testing.T) {
	for _, g := range goldenNotifications {
		t.Run(g.name, func(t *testing.T) {
			want := unhex(t, g.hex)
			if got := g.n.Marshal(); string(got) != string(want) {
				t.Errorf("Marshal = %x, want %x", got, want)
			}
			got, errs := readNotifications(want)
			if len(got) != 1 || got[0] != g.n || errs != nil {
				t.Errorf("read %+v, errors %v", got, errs)
			}
		})
	}
}

func TestNotificationConnected(t *testing.T) {
	for v, want := range map[uint16]bool{0: false, 1: true, 0x100: true} {
		if got := (Notification{Code: NotifyNetworkConnection, Value: v}).Connected(); got != want {
			t.Errorf("wValue %#x: Connected = %v", v, got)
		}
	}
}

func TestNotificationSpeedChangeSplit(t *testing.T) {
	speed := SpeedNotification(0, 480000000, 12000000)
	whole := speed.Marshal()
	tests := []struct {
		name      string
		transfers [][]byte
	}{
		{"header, then the data", [][]byte{whole[:8], whole[8:]}},
		{"header and half the data, then the rest", [][]byte{whole[:12], whole[12:]}},
		{"header, then the data 4 bytes at a time", [][]byte{whole[:8], whole[8:12], whole[12:]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := readNotifications(tt.transfers...)
			if len(got) != 1 || got[0] != speed || errs != nil {
				t.Errorf("read %+v, errors %v; want %+v", got, errs, speed)
			}
		})
	}
}

func TestNotificationsBackToBack(t *testing.T) {
	// A speed change and the connection in one transfer, as a device with
	// a 16-byte endpoint and a host with a larger buffer may see them.
	speed, up := SpeedNotification(0, 1000, 2000), ConnectionNotification(0, true)
	got, errs := readNotifications(up.Append(speed.Marshal()))
	if len(got) != 2 || got[0] != speed || got[1] != up || errs != nil {
		t.Errorf("read %+v, errors %v", got, errs)
	}
}

func TestNotificationResync(t *testing.T) {
	up, down := ConnectionNotification(0, true), ConnectionNotification(0, false)
	speed := SpeedNotification(0, 1000, 2000).Marshal()
	tests := []struct {
		name      string
		transfers [][]byte
		want      []Notification
		errs      int
		field     string
	}{
		{"garbage, then a notification", [][]byte{{0x21, 0, 1, 0, 0, 0, 0, 0}, up.Marshal()}, []Notification{up}, 1, "bmRequestType"},
		{"a short transfer", [][]byte{{0xa1, 0}, down.Marshal()}, []Notification{down}, 1, "bmRequestType"},
		{"garbage after a notification in one transfer", [][]byte{append(up.Marshal(), 0xff, 0xff, 0xff)}, []Notification{up}, 1, "bmRequestType"},
		{"a speed change of the wrong length", [][]byte{{0xa1, 0x2a, 0, 0, 0, 0, 4, 0, 1, 2, 3, 4}, up.Marshal()}, []Notification{up}, 1, "wLength"},
		{"a speed change whose data never comes", [][]byte{speed[:8], down.Marshal()}, []Notification{down}, 1, "wLength"},
		{"a speed change cut by a whole speed change", [][]byte{speed[:8], speed}, []Notification{SpeedNotification(0, 1000, 2000)}, 1, "wLength"},
		{"an empty transfer", [][]byte{{}, up.Marshal()}, []Notification{up}, 0, ""},
		{"data on a NETWORK_CONNECTION is skipped", [][]byte{{0xa1, 0, 1, 0, 0, 0, 2, 0, 9, 9}, down.Marshal()}, []Notification{up, down}, 0, ""},
		{"an unknown notification counts, its data skipped", [][]byte{{0xa1, 0x20, 0, 0, 0, 0, 2, 0, 3, 0}}, []Notification{{Code: 0x20}}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := readNotifications(tt.transfers...)
			if len(got) != len(tt.want) {
				t.Fatalf("read %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("notification %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
			var fe *FormatError
			if len(errs) != tt.errs || tt.errs > 0 && (!errors.As(errs[0], &fe) || fe.Field != tt.field) {
				t.Errorf("errors %v, want %d on %s", errs, tt.errs, tt.field)
			}
		})
	}
}

func TestNotificationReaderReset(t *testing.T) {
	var r NotificationReader
	r.Feed(SpeedNotification(0, 1, 2).Marshal()[:8])
	if _, ok := r.Next(); ok {
		t.Fatal("a header without data gave a notification")
	}
	r.Reset()
	r.Feed([]byte{0xa1, 0, 1, 0, 0, 0, 0, 0})
	if n, ok := r.Next(); !ok || !n.Connected() || r.Err() != nil {
		t.Errorf("after Reset: %+v, %v, %v", n, ok, r.Err())
	}
}
