package sim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/rndis-netd/rndis-netd/ncm"
	"github.com/rndis-netd/rndis-netd/usb"
)

// Hostile wraps a device (usually a Phone) and, while faults are enabled,
// injects them on every pipe of the transports it opens: those of the
// transport's protocol (AdditiveFaultsFor, DestructiveFaultsFor), the rest
// it leaves alone. It counts what it injected, so that a test can check
// the host counted every fault.
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
	// injecting ends when Inject changes the faults, so that a wait begun
	// without them looks again.
	injecting     context.Context
	stopInjecting context.CancelFunc
}

// How often a Hostile device misbehaves while faults are enabled.
const (
	hostileRate     = 0.5                    // of control reads and bulk reads that return a fault
	hostileInterval = 200 * time.Microsecond // a spurious notification when the device is quiet this long
)

// NewHostile wraps inner; seed makes the faults repeatable.
func NewHostile(inner usb.Opener, seed uint64) *Hostile {
	h := &Hostile{inner: inner, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), injected: map[Fault]uint64{}}
	h.injecting, h.stopInjecting = context.WithCancel(context.Background())
	return h
}

// Inject enables exactly the given faults; none makes the device behave.
func (h *Hostile) Inject(faults ...Fault) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.control, h.notify, h.bulk, h.replace = nil, nil, nil, nil
	h.stopInjecting()
	h.injecting, h.stopInjecting = context.WithCancel(context.Background())
	for _, f := range faults {
		switch pipeOf(f) {
		case pipeNotify:
			h.notify = append(h.notify, f)
		case pipeBulk:
			h.bulk = append(h.bulk, f)
		case pipeReplace:
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
	return &hostileTransport{Transport: t, h: h, fn: t.Info().Function}, nil
}

// draw picks one of the faults of protocol p with probability rate; ""
// means behave.
func (h *Hostile) draw(faults []Fault, p usb.Protocol, rate float64) Fault {
	n := 0
	for _, f := range faults {
		if appliesTo(f, p) {
			n++
		}
	}
	if n == 0 || h.rng.Float64() >= rate {
		return ""
	}
	k := h.rng.IntN(n)
	for _, f := range faults {
		if appliesTo(f, p) {
			if k == 0 {
				return f
			}
			k--
		}
	}
	return ""
}

// enabled reports whether replacement fault f is on.
func (h *Hostile) enabled(f Fault) bool { return slices.Contains(h.replace, f) }

func (h *Hostile) count(f Fault) { h.injected[f]++ }

func (h *Hostile) randomBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(h.rng.Uint32())
	}
	return b
}

// hostileTransport injects the faults into one plug of the device.
type hostileTransport struct {
	usb.Transport
	h  *Hostile
	fn usb.Function

	// Of the genuine notifications, under h.mu: the last
	// NETWORK_CONNECTION, and whether a speed change waits for its data.
	notes          ncm.NotificationReader
	lastConnection []byte
	splitPending   bool
	followUp       []byte // the transfer that must come next
}

var _ usb.Transport = (*hostileTransport)(nil)

func (t *hostileTransport) rndis() bool { return t.fn.Protocol == usb.ProtocolRNDIS }

// WaitNotification passes the device's notifications through; while its
// protocol's notify faults (or, for RNDIS, control faults) are enabled, a
// device quiet for a while also sends spurious or garbage ones, so that the
// host keeps reading.
func (t *hostileTransport) WaitNotification(ctx context.Context) ([]byte, error) {
	if t.rndis() {
		return t.rndisNotification(ctx)
	}
	return t.cdcNotification(ctx)
}

// waitQuiet waits for the device's next notification for hostileInterval
// at most; quiet reports that it sent none.
func (t *hostileTransport) waitQuiet(ctx context.Context) (note []byte, quiet bool, err error) {
	wait, cancel := context.WithTimeout(ctx, hostileInterval)
	note, err = t.Transport.WaitNotification(wait)
	cancel()
	if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
		return note, false, err
	}
	return nil, true, nil
}

// Control passes requests through, but for the replies its protocol's
// faults damage.
func (t *hostileTransport) Control(ctx context.Context, s usb.Setup, buf []byte) (int, error) {
	if !t.rndis() {
		return t.cdcControl(ctx, s, buf)
	}
	return t.rndisControl(ctx, s, buf)
}

// ReadBulk returns a faulty transfer before the genuine ones.
func (t *hostileTransport) ReadBulk(ctx context.Context, buf []byte, sizes []int) (int, error) {
	h := t.h
	h.mu.Lock()
	f := h.draw(h.bulk, t.fn.Protocol, hostileRate)
	var b []byte
	ok := f != ""
	if ok {
		b, ok = t.bulkFault(f, len(buf))
	}
	if !ok {
		h.mu.Unlock()
		return t.Transport.ReadBulk(ctx, buf, sizes)
	}
	h.count(f)
	h.mu.Unlock()
	sizes[0] = copy(buf, b)
	return 1, nil
}

// bulkFault builds a transfer with fault f for a host buffer of bufSize
// bytes; false when f cannot be built so.
func (t *hostileTransport) bulkFault(f Fault, bufSize int) ([]byte, bool) {
	switch t.fn.Protocol {
	case usb.ProtocolRNDIS:
		return t.h.bulkFault(f), true
	case usb.ProtocolNCM:
		format, inputSize := negotiatedNTB(t.Transport)
		return t.h.ntbFault(f, format, inputSize, bufSize)
	}
	return t.h.ecmFault(f, t.fn.MaxSegmentSize, bufSize)
}

// negotiator is a simulated NCM phone's transport, which tells the NTB
// format and input size in force.
type negotiator interface {
	negotiated() (ncm.Format, int)
}

// negotiatedNTB returns the NTB format and input size of t: the phone's,
// else NTB16 and 16 KiB, what hosts negotiate with Linux's f_ncm.
func negotiatedNTB(t usb.Transport) (ncm.Format, int) {
	if n, ok := t.(negotiator); ok {
		return n.negotiated()
	}
	return ncm.NTB16, ncm.DefaultNTBSize
}

// refused is the error of a request the hostile device stalls.
func refused(what string) error {
	return fmt.Errorf("hostile device: %s: %w", what, usb.ErrStall)
}
