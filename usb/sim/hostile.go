package sim

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/rndis-netd/rndis-netd/rndis"
	"github.com/rndis-netd/rndis-netd/usb"
)

// Fault is one kind of misbehaviour a Hostile device injects.
type Fault string

// Faults added beside the genuine traffic: the host must count and drop
// each one and keep the link running.
const (
	// Control pipe: messages returned by GET_ENCAPSULATED_RESPONSE.
	ControlGarbage   Fault = "control garbage"    // random bytes that are no message
	ControlBadLength Fault = "control bad length" // a completion whose MessageLength lies
	ControlBadOffset Fault = "control bad offset" // a QUERY_CMPLT whose buffer points past the message
	ControlBadType   Fault = "control bad type"   // a message of a type RNDIS does not have
	ControlOrphan    Fault = "control orphan"     // a completion (any status) whose RequestId matches nothing
	ResetOrphan      Fault = "reset orphan"       // a RESET_CMPLT for a RESET never sent
	IndicationFlood  Fault = "indication flood"   // INDICATE_STATUS after INDICATE_STATUS (no media change)
	// Interrupt pipe.
	NotifyGarbage Fault = "notify garbage" // a notification that is not RESPONSE_AVAILABLE
	// Bulk IN: transfers returned by ReadBulk.
	BulkGarbage   Fault = "bulk garbage"    // random bytes that are no PACKET_MSG
	BulkOverlap   Fault = "bulk overlap"    // a frame running into the next message
	BulkOverflow  Fault = "bulk overflow"   // DataOffset + DataLength wrapping around 32 bits
	BulkPastEnd   Fault = "bulk past end"   // a MessageLength beyond the transfer
	BulkWrongType Fault = "bulk wrong type" // a control message on the data pipe
	BulkOversize  Fault = "bulk oversize"   // a well-formed PACKET_MSG with a 9000-byte frame
	BulkRunt      Fault = "bulk runt"       // a well-formed PACKET_MSG with a 6-byte frame
	BulkEmpty     Fault = "bulk empty"      // a zero-length transfer
)

// Faults that replace the genuine replies: the host must take the link
// down and bring it back once the device behaves.
const (
	AbsurdLimits  Fault = "absurd limits"  // every INITIALIZE_CMPLT: MaxTransferSize 0, 4 GiB, alignment 2^31, 0 packets in turn
	ErrorStatus   Fault = "error status"   // a genuine completion with an error status instead
	DropResponses Fault = "drop responses" // genuine responses lost
)

// AdditiveFaults are all the faults the link must survive while it carries traffic.
var AdditiveFaults = []Fault{ControlGarbage, ControlBadLength, ControlBadOffset, ControlBadType, ControlOrphan,
	ResetOrphan, IndicationFlood, NotifyGarbage, BulkGarbage, BulkOverlap, BulkOverflow, BulkPastEnd,
	BulkWrongType, BulkOversize, BulkRunt, BulkEmpty}

// DestructiveFaults are the faults that replace genuine replies.
var DestructiveFaults = []Fault{AbsurdLimits, ErrorStatus, DropResponses}

// Hostile wraps a device (usually a Phone) and, while faults are enabled,
// injects them on every pipe of the transports it opens. It counts what it
// injected, so that a test can check the host counted every fault.
type Hostile struct {
	inner usb.Opener

	mu       sync.Mutex
	rng      *rand.Rand
	control  []Fault // enabled faults of each pipe
	notify   []Fault
	bulk     []Fault
	replace  []Fault
	injected map[Fault]uint64
	absurd   int // the next of the absurd-limits variants
}

// How often a Hostile device misbehaves while faults are enabled.
const (
	hostileRate     = 0.5                    // of control reads and bulk reads that return a fault
	hostileInterval = 200 * time.Microsecond // a spurious notification when the device is quiet this long
)

// NewHostile wraps inner; seed makes the faults repeatable.
func NewHostile(inner usb.Opener, seed uint64) *Hostile {
	return &Hostile{inner: inner, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), injected: map[Fault]uint64{}}
}

// Inject enables exactly the given faults; none makes the device behave.
func (h *Hostile) Inject(faults ...Fault) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.control, h.notify, h.bulk, h.replace = nil, nil, nil, nil
	for _, f := range faults {
		switch f {
		case NotifyGarbage:
			h.notify = append(h.notify, f)
		case BulkGarbage, BulkOverlap, BulkOverflow, BulkPastEnd, BulkWrongType, BulkOversize, BulkRunt, BulkEmpty:
			h.bulk = append(h.bulk, f)
		case AbsurdLimits, ErrorStatus, DropResponses:
			h.replace = append(h.replace, f)
		default:
			h.control = append(h.control, f)
		}
	}
}

// Injected returns how many faults of each kind reached the host.
func (h *Hostile) Injected() map[Fault]uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[Fault]uint64, len(h.injected))
	for f, n := range h.injected {
		out[f] = n
	}
	return out
}

// Total returns how many faults reached the host.
func (h *Hostile) Total() uint64 {
	var n uint64
	for _, c := range h.Injected() {
		n += c
	}
	return n
}

// Open opens the wrapped device.
func (h *Hostile) Open(ctx context.Context) (usb.Transport, error) {
	t, err := h.inner.Open(ctx)
	if err != nil {
		return nil, err
	}
	return &hostileTransport{Transport: t, h: h}, nil
}

// draw picks one of faults with probability rate; "" means behave.
func (h *Hostile) draw(faults []Fault, rate float64) Fault {
	if len(faults) == 0 || h.rng.Float64() >= rate {
		return ""
	}
	return faults[h.rng.IntN(len(faults))]
}

func (h *Hostile) count(f Fault) { h.injected[f]++ }

type hostileTransport struct {
	usb.Transport
	h *Hostile
}

var _ usb.Transport = (*hostileTransport)(nil)

// WaitNotification passes the device's notifications through; while
// control or notify faults are enabled, a quiet device also announces
// (spurious or garbage) notifications, so that the host keeps reading.
func (t *hostileTransport) WaitNotification(ctx context.Context) ([]byte, error) {
	h := t.h
	h.mu.Lock()
	active := len(h.control) > 0 || len(h.notify) > 0
	h.mu.Unlock()
	if !active {
		return t.Transport.WaitNotification(ctx)
	}
	wait, cancel := context.WithTimeout(ctx, hostileInterval)
	note, err := t.Transport.WaitNotification(wait)
	cancel()
	if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
		return note, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.draw(h.notify, hostileRate) == NotifyGarbage {
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

func (h *Hostile) randomBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(h.rng.Uint32())
	}
	return b
}

// Control passes requests through, but for GET_ENCAPSULATED_RESPONSE: it
// returns a fault before the genuine responses, or a genuine response
// damaged or withheld.
func (t *hostileTransport) Control(ctx context.Context, s usb.Setup, buf []byte) (int, error) {
	if s.Request != usb.RequestGetEncapsulatedResponse || !s.In() {
		return t.Transport.Control(ctx, s, buf)
	}
	h := t.h
	h.mu.Lock()
	f := h.draw(h.control, hostileRate)
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
	switch h.draw(h.replace, hostileRate) {
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

// ReadBulk returns a faulty transfer before the genuine ones.
func (t *hostileTransport) ReadBulk(ctx context.Context, buf []byte, sizes []int) (int, error) {
	h := t.h
	h.mu.Lock()
	f := h.draw(h.bulk, hostileRate)
	if f == "" {
		h.mu.Unlock()
		return t.Transport.ReadBulk(ctx, buf, sizes)
	}
	b := h.bulkFault(f)
	h.count(f)
	h.mu.Unlock()
	sizes[0] = copy(buf, b)
	return 1, nil
}

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
