package link

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rndis-netd/rndis-netd/rndis"
	"github.com/rndis-netd/rndis-netd/usb"
	"github.com/rndis-netd/rndis-netd/usb/sim"
)

// interceptor is a device whose host-to-device traffic a test can see and
// change: onCommand sees each RNDIS control message the host sends; nil
// passes it to the phone, errSwallowed loses it on the way, and any other
// error fails the host's request with it. afterCommand sees each one the
// phone got. writeBulk, if set, stands in for bulk OUT; next is the phone's.
type interceptor struct {
	phone        *sim.Phone
	mu           sync.Mutex
	onCommand    func(rndis.Message) error
	afterCommand func(rndis.Message)
	writeBulk    func(ctx context.Context, p []byte, next func(context.Context, []byte) error) error
	notes        [][]byte           // interrupt transfers to hand the host before the phone's own
	wakeNotes    context.CancelFunc // ends the wait for the phone's, when a note is queued
}

// notify hands the host an interrupt transfer of the test's.
func (i *interceptor) notify(b []byte) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.notes = append(i.notes, b)
	if i.wakeNotes != nil {
		i.wakeNotes()
	}
}

var errSwallowed = errors.New("lost on the way")

func (i *interceptor) setOnCommand(fn func(rndis.Message) error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.onCommand = fn
}

func (i *interceptor) Open(ctx context.Context) (usb.Transport, error) {
	t, err := i.phone.Open(ctx)
	if err != nil {
		return nil, err
	}
	return &interceptedTransport{Transport: t, i: i}, nil
}

type interceptedTransport struct {
	usb.Transport
	i *interceptor
}

func (t *interceptedTransport) Control(ctx context.Context, s usb.Setup, data []byte) (int, error) {
	t.i.mu.Lock()
	on, after := t.i.onCommand, t.i.afterCommand
	t.i.mu.Unlock()
	m, err := rndis.Parse(data)
	if err != nil || s.In() || s.Request != usb.RequestSendEncapsulatedCommand {
		return t.Transport.Control(ctx, s, data)
	}
	if on != nil {
		switch err := on(m); {
		case errors.Is(err, errSwallowed):
			return len(data), nil
		case err != nil:
			return 0, err
		}
	}
	n, err := t.Transport.Control(ctx, s, data)
	if err == nil && after != nil {
		after(m)
	}
	return n, err
}

func (t *interceptedTransport) WaitNotification(ctx context.Context) ([]byte, error) {
	for {
		t.i.mu.Lock()
		if len(t.i.notes) > 0 {
			b := t.i.notes[0]
			t.i.notes = t.i.notes[1:]
			t.i.mu.Unlock()
			return b, nil
		}
		wait, cancel := context.WithCancel(ctx)
		t.i.wakeNotes = cancel
		t.i.mu.Unlock()
		b, err := t.Transport.WaitNotification(wait)
		cancel()
		if err == nil || ctx.Err() != nil || wait.Err() == nil {
			return b, err
		}
	}
}

func (t *interceptedTransport) WriteBulk(ctx context.Context, p []byte) error {
	if t.i.writeBulk != nil {
		return t.i.writeBulk(ctx, p, t.Transport.WriteBulk)
	}
	return t.Transport.WriteBulk(ctx, p)
}

// floodMedia makes the phone send pairs of MEDIA_DISCONNECT and
// MEDIA_CONNECT, ending connected.
func floodMedia(p *sim.Phone, pairs int) {
	for range pairs {
		p.IndicateStatus(rndis.StatusMediaDisconnect)
		p.IndicateStatus(rndis.StatusMediaConnect)
	}
}

// The medium is a level, not a queue: a flood of media indications while
// the supervisor is busy with a RESET, or with a re-initialization, never
// blocks the control reader, which alone reads the RESET_CMPLT and
// INITIALIZE_CMPLT the supervisor waits for. The link recovers and every
// indication is counted under its cause.
func TestMediaFloodDuringRecovery(t *testing.T) {
	const pairs = 100 // far more than any queue between reader and supervisor would hold
	tests := []struct {
		name    string
		during  rndis.MessageType // the host's message that the flood follows
		provoke func(tb *testbed, ic *interceptor)
		down    Cause
		up      Cause
	}{
		{"reset", rndis.TypeReset, func(tb *testbed, ic *interceptor) {}, CauseKeepAliveTimeout, CauseReset},
		{"re-initialization", rndis.TypeInitialize, func(tb *testbed, ic *interceptor) { tb.phone.Halt() }, CauseDeviceHalt, CauseReinitialized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			armed := false
			ic := &interceptor{}
			if tt.during == rndis.TypeReset {
				ic.onCommand = func(m rndis.Message) error {
					if m.Type() == rndis.TypeKeepAlive {
						return errSwallowed // unanswered: a keepalive timeout, then RESET
					}
					return nil
				}
			}
			// The phone has queued its completion (RESET_CMPLT,
			// INITIALIZE_CMPLT) when the flood follows it: the host reads
			// the flood with the completions of the requests that come next
			// (the packet filter after RESET, the queries after INITIALIZE).
			ic.afterCommand = func(m rndis.Message) {
				mu.Lock()
				defer mu.Unlock()
				if armed && m.Type() == tt.during {
					armed = false
					floodMedia(ic.phone, pairs)
				}
			}
			tb := newTestbedVia(t, sim.LinuxGadget(), fastOptions(), func(p *sim.Phone) usb.Opener { ic.phone = p; return ic })
			before := tb.link.Stats()
			mu.Lock()
			armed = true
			mu.Unlock()
			tt.provoke(tb, ic)
			if ev := tb.nextEvent(t, 10*time.Second); ev.Up || ev.Cause != tt.down {
				t.Fatalf("got %v, want link down: %s", ev, tt.down)
			}
			if tt.during == rndis.TypeReset {
				ic.setOnCommand(nil) // keepalives answered again
			}
			// The link comes back up; then the supervisor, free again, takes the
			// flood as the level it is: one disconnect seen while up (down),
			// and the medium connected at the end (up).
			want := []Cause{tt.up, CauseMediaDisconnect, CauseMediaConnect}
			for i, c := range want {
				if ev := tb.nextEvent(t, 20*time.Second); ev.Up != (i != 1) || ev.Cause != c {
					t.Fatalf("event %d after the flood: %v; want up %v: %s\n%s", i, ev, i != 1, c, tb.state())
				}
			}
			s := tb.link.Stats()
			if got := s.Indications - before.Indications; got != 2*pairs {
				t.Errorf("indications counted %d, want %d", got, 2*pairs)
			}
			if got := s.MediaDisconnects - before.MediaDisconnects; got != pairs {
				t.Errorf("media disconnects counted %d, want %d", got, pairs)
			}
			if got := s.MediaConnects - before.MediaConnects; got != pairs {
				t.Errorf("media connects counted %d, want %d", got, pairs)
			}
			if tt.during == rndis.TypeReset && (s.Resets-before.Resets != 1 || s.Reinits != before.Reinits) {
				t.Errorf("resets %d, re-initializations %d: want one RESET, and no re-initialization (it must not have timed out)",
					s.Resets-before.Resets, s.Reinits-before.Reinits)
			}
			tb.carries(t, "after the flood")
		})
	}
}

// Close reports a HALT that could not be sent.
func TestCloseReportsAFailedHalt(t *testing.T) {
	errRefused := errors.New("refused by the test")
	for _, fail := range []bool{false, true} {
		ic := &interceptor{}
		tb := newTestbedVia(t, sim.LinuxGadget(), fastOptions(), func(p *sim.Phone) usb.Opener { ic.phone = p; return ic })
		if fail {
			ic.setOnCommand(func(m rndis.Message) error {
				if m.Type() == rndis.TypeHalt {
					return errRefused
				}
				return nil
			})
		}
		err := tb.link.Close()
		if fail != errors.Is(err, errRefused) || !fail && err != nil {
			t.Errorf("HALT refused %v: Close = %v", fail, err)
		}
	}
}
