package link

import (
	"testing"
	"unicode/utf16"

	"github.com/rndis-netd/rndis-netd/ncm"
	"github.com/rndis-netd/rndis-netd/usb"
)

// stringDescriptor is a USB string descriptor holding s.
func stringDescriptor(s string) []byte {
	b := []byte{0, 3}
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u), byte(u>>8))
	}
	b[0] = byte(len(b))
	return b
}

// genuineCDCScript is an NCM (or ECM) device starting as Linux's f_ncm
// does, carrying two frames, losing and regaining its medium, and
// changing its speed.
func genuineCDCScript(isNCM bool) []byte {
	var s []byte
	note := func(n ncm.Notification) { s = appendRecord(s, recNotify, n.Marshal()) }
	if isNCM {
		s = appendRecord(s, recControl, ncm.NTBParameters{Length: 28, FormatsSupported: 3, InMaxSize: 16384, InDivisor: 4,
			InAlignment: 4, OutMaxSize: 16384, OutDivisor: 4, OutAlignment: 4}.Marshal())
	}
	s = appendRecord(s, recControl, []byte{4, 3, 0x09, 0x04}) // string 0: US English
	s = appendRecord(s, recControl, stringDescriptor("0250484F4E45"))
	note(ncm.SpeedNotification(0, 425984000, 425984000))
	note(ncm.ConnectionNotification(0, true))
	arp := make([]byte, 42)
	copy(arp, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x50, 0x48, 0x4f, 0x4e, 0x45, 0x08, 0x06})
	if isNCM {
		limits := ncm.Limits{MaxSize: 16384, Divisor: 4, Remainder: 2, NDPAlignment: 4, MaxDatagrams: 31}
		w, _ := ncm.NewWriter(nil, limits, ncm.NTB16)
		w.Add(arp)
		w.Add(arp)
		s = appendRecord(s, recBulk, w.Finish())
	} else {
		s = appendRecord(s, recBulk, arp)
	}
	note(ncm.ConnectionNotification(0, false))
	note(ncm.ConnectionNotification(0, true))
	sp := ncm.SpeedNotification(0, 100e6, 50e6).Marshal()
	s = appendRecord(s, recNotify, sp[:8]) // split over two transfers
	s = appendRecord(s, recNotify, sp[8:])
	return s
}

// FuzzCDCSession drives the NCM or ECM host (the first byte picks which)
// with arbitrary device replies: it must never panic or hang, and a link it
// brings up has limits the writer accepts and an MTU its frames fit.
func FuzzCDCSession(f *testing.F) {
	f.Add(append([]byte{0}, genuineCDCScript(true)...))
	f.Add(append([]byte{1}, genuineCDCScript(false)...))
	f.Add(append([]byte{0}, genuineCDCScript(true)[:60]...))
	f.Fuzz(func(t *testing.T, script []byte) {
		if len(script) == 0 {
			return
		}
		protocol := usb.ProtocolNCM
		if script[0]&1 != 0 {
			protocol = usb.ProtocolECM
		}
		playScript(t, protocol, script[1:], func(info DeviceInfo) {
			if protocol == usb.ProtocolNCM {
				n := info.NCM
				if err := n.Out.Validate(n.Format); err != nil || info.MTU+ethernetHeaderBytes > n.Out.MaxFrame(n.Format) || n.InputSize > ncmBlockSize {
					t.Fatalf("NCM link up with MTU %d, %+v: %v", info.MTU, n, err)
				}
			}
		})
	})
}
