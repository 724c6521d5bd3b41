package sim

import (
	"context"
	"fmt"

	"github.com/rndis-netd/rndis-netd/ncm"
	"github.com/rndis-netd/rndis-netd/usb"
)

// cdcNotification passes NCM's and ECM's notifications through, watching
// them; while notify faults are enabled, a device quiet for a while sends a
// fault instead. None comes between a split speed change's header and its
// data, which a host could not tell from the data.
func (t *hostileTransport) cdcNotification(ctx context.Context) ([]byte, error) {
	h := t.h
	for {
		h.mu.Lock()
		if b := t.followUp; b != nil {
			t.followUp = nil
			h.mu.Unlock()
			return b, nil
		}
		active := len(h.notify) > 0 && !t.splitPending
		injecting := h.injecting
		h.mu.Unlock()
		var note []byte
		var err error
		if active {
			var quiet bool
			if note, quiet, err = t.waitQuiet(ctx); quiet {
				if b := t.notifyFault(); b != nil {
					return b, nil
				}
				continue
			}
		} else if note, err = t.waitUntilInjecting(ctx, injecting); err != nil && ctx.Err() == nil && injecting.Err() != nil {
			continue // the faults changed: look again
		}
		if err == nil {
			t.observe(note)
		}
		return note, err
	}
}

// waitUntilInjecting waits for the device's next notification, or until
// the faults change (injecting ends). An NCM or ECM device may say nothing
// for hours, and faults enabled meanwhile must reach the host.
func (t *hostileTransport) waitUntilInjecting(ctx, injecting context.Context) ([]byte, error) {
	wait, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(injecting, cancel)()
	return t.Transport.WaitNotification(wait)
}

// observe records what the host learns from a genuine notification.
func (t *hostileTransport) observe(b []byte) {
	t.h.mu.Lock()
	defer t.h.mu.Unlock()
	t.splitPending = len(b) == ncm.NotificationHeaderSize && b[0] == ncm.NotificationRequestType &&
		b[1] == byte(ncm.NotifyConnectionSpeedChange)
	t.notes.Feed(b)
	for n, ok := t.notes.Next(); ok; n, ok = t.notes.Next() {
		if n.Code == ncm.NotifyNetworkConnection {
			t.lastConnection = n.Marshal()
		}
	}
}

// notifyFault returns a notification fault, or nil when none is drawn.
func (t *hostileTransport) notifyFault() []byte {
	h := t.h
	h.mu.Lock()
	defer h.mu.Unlock()
	switch h.draw(h.notify, t.fn.Protocol, hostileRate) {
	case NotifyGarbage:
		h.count(NotifyGarbage)
		return h.cdcGarbageNotification()
	case SpeedWithoutData:
		if t.lastConnection == nil {
			return nil // nothing to repeat yet that would not change the host's view
		}
		h.count(SpeedWithoutData)
		t.followUp = t.lastConnection
		return ncm.SpeedNotification(uint16(t.fn.ControlIface), 0, 0).Marshal()[:ncm.NotificationHeaderSize]
	}
	return nil
}

// cdcGarbageNotification is 1 to 16 random bytes that a fresh
// ncm.NotificationReader rejects.
func (h *Hostile) cdcGarbageNotification() []byte {
	for {
		b := h.randomBytes(1 + h.rng.IntN(16))
		if h.rng.IntN(2) == 0 {
			b[0] = ncm.NotificationRequestType // garbage that starts like a notification
		}
		var r ncm.NotificationReader
		r.Feed(b)
		if _, ok := r.Next(); !ok && r.Err() != nil {
			return b
		}
	}
}

// cdcControl damages the replies its replacement faults name:
// GET_NTB_PARAMETERS, SET_NTB_INPUT_SIZE and the iMACAddress string.
func (t *hostileTransport) cdcControl(ctx context.Context, s usb.Setup, buf []byte) (int, error) {
	h := t.h
	h.mu.Lock()
	garbageParams, refuseSize, garbageMAC := h.enabled(NTBParametersGarbage), h.enabled(RefuseInputSize), h.enabled(MACGarbage)
	h.mu.Unlock()
	isNCM := t.fn.Protocol == usb.ProtocolNCM
	switch {
	case isNCM && s == usb.ClassIn(ncm.RequestGetNTBParameters, 0, t.fn.ControlIface) && garbageParams:
		h.mu.Lock()
		defer h.mu.Unlock()
		h.count(NTBParametersGarbage)
		return copy(buf, h.garbageNTBParameters()), nil
	case isNCM && s == usb.ClassOut(ncm.RequestSetNTBInputSize, 0, t.fn.ControlIface) && refuseSize:
		h.mu.Lock()
		defer h.mu.Unlock()
		h.count(RefuseInputSize)
		return 0, refused(s.String())
	case isGetString(s) && int(s.Value&0xff) == t.fn.MACAddressIndex && garbageMAC:
		h.mu.Lock()
		defer h.mu.Unlock()
		h.count(MACGarbage)
		return copy(buf, h.garbageMAC()), nil
	}
	n, err := t.Transport.Control(ctx, s, buf)
	if err == nil && isNCM && refuseSize && s == usb.ClassIn(ncm.RequestGetNTBParameters, 0, t.fn.ControlIface) && n >= 8 {
		le.PutUint32(buf[4:], 65536) // dwNtbInMaxSize
	}
	return n, err
}

// SetAlternate refuses the data interface's setting with the bulk pair
// while RefuseDataSetting is on.
func (t *hostileTransport) SetAlternate(ctx context.Context, alt int) error {
	h := t.h
	h.mu.Lock()
	refuse := alt == t.fn.DataAlt && alt != 0 && h.enabled(RefuseDataSetting) && appliesTo(RefuseDataSetting, t.fn.Protocol)
	if refuse {
		h.count(RefuseDataSetting)
	}
	h.mu.Unlock()
	if refuse {
		return refused(fmt.Sprintf("SET_INTERFACE %d", alt))
	}
	return t.Transport.SetAlternate(ctx, alt)
}

// garbageNTBParameters is an answer to GET_NTB_PARAMETERS that
// ncm.ParseNTBParameters rejects: too short, or with a maximum size that
// carries no frame.
func (h *Hostile) garbageNTBParameters() []byte {
	for {
		var b []byte
		if h.rng.IntN(2) == 0 {
			b = h.randomBytes(h.rng.IntN(ncm.NTBParametersSize))
		} else {
			b = h.randomBytes(ncm.NTBParametersSize)
			at := []int{4, 16}[h.rng.IntN(2)] // dwNtbInMaxSize or dwNtbOutMaxSize
			le.PutUint32(b[at:], h.rng.Uint32N(1542))
		}
		if _, err := ncm.ParseNTBParameters(b); err != nil {
			return b
		}
	}
}

// garbageMAC is a string descriptor that is not 12 hex digits.
func (h *Hostile) garbageMAC() []byte {
	texts := []string{"", "02524E44495300", "02524E4449", "02524E44495G", "02:52:4e:44:49:53", "not a MAC address"}
	text := texts[h.rng.IntN(len(texts))]
	b := []byte{byte(2 + 2*len(text)), descriptorString}
	for _, c := range text {
		b = append(b, byte(c), 0)
	}
	return b
}

// ecmFault builds an ECM transfer with fault f for a device whose frames
// are at most maxSegment bytes, into a host buffer of bufSize bytes.
func (h *Hostile) ecmFault(f Fault, maxSegment, bufSize int) ([]byte, bool) {
	switch f {
	case BulkOversize:
		// More than the frame and the short-packet rule's byte.
		lo := maxSegment + 2
		hi := min(9000, bufSize)
		if lo > hi {
			return nil, false
		}
		return h.frame(lo + h.rng.IntN(hi-lo+1)), true
	case BulkRunt:
		return h.randomBytes(1 + h.rng.IntN(13)), true
	case BulkEmpty:
		return nil, true
	}
	return nil, false
}

// frame is n random bytes to a unicast destination, of an EtherType for
// local experiments (0x88B5) that no host's stack takes.
func (h *Hostile) frame(n int) []byte {
	b := h.randomBytes(n)
	b[0] &^= 1
	if n >= 14 {
		b[12], b[13] = 0x88, 0xB5
	}
	return b
}
