package sim

import (
	"context"
	"encoding/binary"
	"slices"

	"github.com/rndis-netd/rndis-netd/rndis"
	"github.com/rndis-netd/rndis-netd/usb"
)

// rndisNotification: while control or notify faults are enabled, a quiet
// device also announces (spurious or garbage) notifications, so that the
// host reads the control faults.
func (t *hostileTransport) rndisNotification(ctx context.Context) ([]byte, error) {
	h := t.h
	h.mu.Lock()
	active := len(h.control) > 0 || len(h.notify) > 0
	h.mu.Unlock()
	if !active {
		return t.Transport.WaitNotification(ctx)
	}
	note, quiet, err := t.waitQuiet(ctx)
	if !quiet {
		return note, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.draw(h.notify, t.fn.Protocol, hostileRate) == NotifyGarbage {
		h.count(NotifyGarbage)
		return h.garbageNotification(), nil
	}
	return rndis.ResponseAvailableNotification(), nil
}

// garbageNotification is up to 16 random bytes that are not RESPONSE_AVAILABLE.
func (h *Hostile) garbageNotification() []byte {
	for {
		if b := h.randomBytes(h.rng.IntN(17)); !rndis.IsResponseAvailable(b) {
			return b
		}
	}
}

// rndisControl passes requests through, but for GET_ENCAPSULATED_RESPONSE:
// it returns a fault before the genuine responses, or a genuine response
// damaged or withheld.
func (t *hostileTransport) rndisControl(ctx context.Context, s usb.Setup, buf []byte) (int, error) {
	if s.Request != usb.RequestGetEncapsulatedResponse || !s.In() {
		return t.Transport.Control(ctx, s, buf)
	}
	h := t.h
	h.mu.Lock()
	f := h.draw(h.control, t.fn.Protocol, hostileRate)
	if f != "" {
		msg := h.controlFault(f)
		h.count(f)
		h.mu.Unlock()
		return copy(buf, msg), nil
	}
	replace := len(h.replace) > 0
	h.mu.Unlock()
	n, err := t.Transport.Control(ctx, s, buf)
	if err != nil || n == 0 || !replace {
		return n, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.damage(buf, n), nil
}

// An orphan RequestId: the host numbers its requests from 1 upward.
func (h *Hostile) orphanRID() uint32 { return 0xdead0000 | h.rng.Uint32()&0xffff }

func (h *Hostile) errorStatus() rndis.Status {
	errs := []rndis.Status{rndis.StatusFailure, rndis.StatusResources, rndis.StatusNotSupported, rndis.StatusInvalidData,
		rndis.StatusInvalidLength, rndis.StatusInvalidOID, rndis.StatusBufferOverflow, rndis.StatusBadVersion, rndis.Status(h.rng.Uint32())}
	return errs[h.rng.IntN(len(errs))]
}

func (h *Hostile) controlFault(f Fault) []byte {
	switch f {
	case ControlGarbage:
		for {
			b := h.randomBytes(1 + h.rng.IntN(64)) // no response is 0 bytes
			if _, err := rndis.Parse(b); err != nil {
				return b
			}
		}
	case ControlBadLength:
		b := rndis.Marshal(rndis.QueryComplete{RequestID: h.orphanRID(), Buffer: h.randomBytes(8)})
		lengths := []uint32{0, 7, uint32(len(b)) + 1 + h.rng.Uint32N(1<<20), 0xffffffff}
		binary.LittleEndian.PutUint32(b[4:], lengths[h.rng.IntN(len(lengths))])
		return b
	case ControlBadOffset:
		b := rndis.Marshal(rndis.QueryComplete{RequestID: h.orphanRID(), Buffer: h.randomBytes(8)})
		if h.rng.IntN(2) == 0 {
			binary.LittleEndian.PutUint32(b[20:], 0xfffffff0+h.rng.Uint32N(16)) // offset
		} else {
			binary.LittleEndian.PutUint32(b[16:], 9+h.rng.Uint32N(1<<30)) // length
		}
		return b
	case ControlBadType:
		b := rndis.Marshal(rndis.KeepAliveComplete{RequestID: h.orphanRID()})
		for {
			t := rndis.MessageType(h.rng.Uint32())
			binary.LittleEndian.PutUint32(b, uint32(t))
			if _, err := rndis.Parse(b); err != nil {
				return b
			}
		}
	case ControlOrphan:
		rid, status := h.orphanRID(), rndis.StatusSuccess
		if h.rng.IntN(2) == 0 {
			status = h.errorStatus()
		}
		msgs := []rndis.Message{
			rndis.QueryComplete{RequestID: rid, Status: status, Buffer: h.randomBytes(h.rng.IntN(32))},
			rndis.SetComplete{RequestID: rid, Status: status},
			rndis.KeepAliveComplete{RequestID: rid, Status: status},
			rndis.InitializeComplete{RequestID: rid, Status: status, DeviceFlags: rndis.DeviceFlagConnectionless,
				MaxTransferSize: h.rng.Uint32(), MaxPacketsPerTransfer: h.rng.Uint32(), PacketAlignmentFactor: h.rng.Uint32()},
		}
		return rndis.Marshal(msgs[h.rng.IntN(len(msgs))])
	case ResetOrphan:
		return rndis.Marshal(rndis.ResetComplete{Status: rndis.StatusSuccess, AddressingReset: h.rng.Uint32N(2)})
	case IndicationFlood:
		statuses := []rndis.Status{rndis.StatusMediaSpecificIndication, rndis.StatusLinkSpeedChange,
			rndis.StatusNetworkChange, rndis.Status(0x40020000 | h.rng.Uint32N(0x10000))}
		return rndis.Marshal(rndis.IndicateStatus{Status: statuses[h.rng.IntN(len(statuses))], Buffer: h.randomBytes(h.rng.IntN(64))})
	}
	panic("sim: not a control fault: " + string(f))
}

// damage applies a destructive fault to the genuine response in buf[:n].
func (h *Hostile) damage(buf []byte, n int) int {
	m, err := rndis.Parse(buf[:n])
	if err != nil {
		return n
	}
	if c, ok := m.(rndis.InitializeComplete); ok && slices.Contains(h.replace, AbsurdLimits) {
		h.absurd++ // each INITIALIZE_CMPLT gets the next variant
		switch h.absurd % 4 {
		case 1:
			c.MaxTransferSize = 0
		case 2:
			c.MaxTransferSize = 0xffffffff
		case 3:
			c.PacketAlignmentFactor = 31
		case 0:
			c.MaxPacketsPerTransfer = 0
		}
		h.count(AbsurdLimits)
		return copy(buf, rndis.Marshal(c))
	}
	switch h.draw(h.replace, usb.ProtocolRNDIS, hostileRate) {
	case DropResponses:
		h.count(DropResponses)
		return 0
	case ErrorStatus:
		if m.Type()&rndis.CompletionBit != 0 && len(buf) >= 16 && m.Type() != rndis.TypeResetComplete {
			binary.LittleEndian.PutUint32(buf[12:], uint32(h.errorStatus()))
			h.count(ErrorStatus)
		}
	}
	return n
}

// bulkFault builds an RNDIS transfer with fault f.
func (h *Hostile) bulkFault(f Fault) []byte {
	frame := func(n int) []byte {
		b := h.randomBytes(n)
		b[0] &^= 1 // a unicast destination
		return b
	}
	packet := func(n int) []byte { return rndis.Marshal(rndis.Packet{Data: frame(n)}) }
	switch f {
	case BulkGarbage:
		for {
			b := h.randomBytes(1 + h.rng.IntN(2048))
			r := rndis.NewPacketReader(b)
			if _, ok := r.Next(); !ok && r.Err() != nil {
				return b
			}
		}
	case BulkOverlap:
		b := append(packet(60), packet(60)...)
		binary.LittleEndian.PutUint32(b[12:], 60+44+h.rng.Uint32N(60)) // the first frame runs into the second message
		return b
	case BulkOverflow:
		b := packet(60)
		binary.LittleEndian.PutUint32(b[8:], 0xffffffff-h.rng.Uint32N(64)) // DataOffset
		binary.LittleEndian.PutUint32(b[12:], 0x80+h.rng.Uint32N(64))      // DataLength: the sum wraps
		return b
	case BulkPastEnd:
		b := packet(60)
		binary.LittleEndian.PutUint32(b[4:], uint32(len(b))+1+h.rng.Uint32N(1<<31))
		return b
	case BulkWrongType:
		return rndis.Marshal(rndis.InitializeComplete{RequestID: h.orphanRID(), MaxTransferSize: 16384})
	case BulkOversize:
		return packet(9000)
	case BulkRunt:
		return packet(1 + h.rng.IntN(13))
	case BulkEmpty:
		return nil
	}
	panic("sim: not a bulk fault: " + string(f))
}
