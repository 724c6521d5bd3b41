package sim

import (
	"context"
	"testing"
	"time"

	"github.com/rndis-netd/rndis-netd/ncm"
	"github.com/rndis-netd/rndis-netd/rndis"
	"github.com/rndis-netd/rndis-netd/usb"
)

// FuzzPhone drives a started phone of each protocol with an arbitrary
// control request, SET_INTERFACE and bulk-OUT transfer, as a broken host
// could: the phone answers, stalls or refuses, and never panics.
func FuzzPhone(f *testing.F) {
	type plug struct {
		p  *Phone
		tr usb.Transport
	}
	var plugs []plug
	for _, cfg := range []Config{Qualcomm(), Pixel(), Dongle()} {
		p, err := New(cfg)
		if err != nil {
			f.Fatal(err)
		}
		f.Cleanup(p.Close)
		tr, err := p.Open(context.Background())
		if err != nil {
			f.Fatal(err)
		}
		f.Cleanup(func() { tr.Close() })
		plugs = append(plugs, plug{p, tr})
	}
	arp := arpRequest(Pixel())
	w, _ := ncm.NewWriter(nil, hostileLimits, ncm.NTB16)
	w.Add(arp)
	ntb := w.Finish()
	init := rndis.Marshal(rndis.Initialize{RequestID: 1, MajorVersion: 1, MaxTransferSize: 16384})
	f.Add(uint8(0), uint8(0x21), uint8(usb.RequestSendEncapsulatedCommand), uint16(0), uint16(0), init, uint8(0), rndis.Marshal(rndis.Packet{Data: arp}))
	f.Add(uint8(1), uint8(0xA1), uint8(ncm.RequestGetNTBParameters), uint16(0), uint16(0), make([]byte, 28), uint8(1), ntb)
	f.Add(uint8(1), uint8(0x21), uint8(ncm.RequestSetNTBInputSize), uint16(0), uint16(0), le.AppendUint32(nil, 4096), uint8(1), append(ntb, 0))
	f.Add(uint8(1), uint8(0x21), uint8(ncm.RequestSetNTBFormat), uint16(1), uint16(0), []byte(nil), uint8(0), ntb)
	f.Add(uint8(1), uint8(0x80), uint8(requestGetDescriptor), uint16(descriptorString<<8|4), uint16(languageEnglishUS), make([]byte, 255), uint8(1), ntb)
	f.Add(uint8(2), uint8(0x21), uint8(ncm.RequestSetEthernetPacketFilter), uint16(0x0e), uint16(0), []byte(nil), uint8(1), arp)
	f.Fuzz(func(t *testing.T, which, requestType, request uint8, value, index uint16, data []byte, alt uint8, transfer []byte) {
		pl := plugs[int(which)%len(plugs)]
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		pl.tr.Control(ctx, usb.Setup{RequestType: requestType, Request: request, Value: value, Index: index}, data)
		pl.tr.SetAlternate(ctx, int(alt%3))
		if err := pl.tr.WriteBulk(ctx, transfer); err != nil {
			t.Fatal(err)
		}
	})
}
