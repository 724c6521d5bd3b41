package link

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/rndis-netd/rndis-netd/internal/notify"
	"github.com/rndis-netd/rndis-netd/usb"
)

// Options tune a Link. Zero values take the spec's defaults.
type Options struct {
	Logger            *slog.Logger
	KeepAliveInterval time.Duration // RNDIS: KEEPALIVE after this long without traffic from the device; 5 s
	ControlTimeout    time.Duration // a request unanswered this long has failed; 10 s (ControlTimeoutPeriod)
	PollInterval      time.Duration // RNDIS: read the control pipe this often even without RESPONSE_AVAILABLE; 250 ms
	RetryMin          time.Duration // first delay of the capped exponential backoff; 100 ms
	RetryMax          time.Duration // its cap; 5 s
	TxQueue           int           // frames queued for bulk OUT; more are dropped; defaultTxQueue
	Capture           *PcapWriter   // if set, every frame in and out is recorded
	MTU               int           // if set, caps the device's MTU
	// WaitForDevice makes Open succeed when there is no device yet: the
	// link starts down (CauseNoDevice) and comes up when one appears.
	WaitForDevice bool
}

// defaultTxQueue holds a whole flight of one of gVisor's TCP connections
// when bulk OUT is the bottleneck. gVisor grows a connection's send buffer
// with its window (to 4-6 MiB, some 2,900-4,300 frames) and, unlike Linux,
// has no TCP Small Queues to hold the excess in the socket: with 1,024
// (about Linux's txqueuelen of 1,000) the queue overflowed in bursts, each
// overflow a loss that SACK recovery (gVisor's scoreboard then took a fifth
// of the CPU) and a halved window repaired. Only the frames' headers are extra memory: their
// payloads are the views TCP keeps for retransmission anyway.
const defaultTxQueue = 4096

func (o *Options) defaults() {
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	set(&o.KeepAliveInterval, 5*time.Second)
	set(&o.ControlTimeout, 10*time.Second)
	set(&o.PollInterval, 250*time.Millisecond)
	set(&o.RetryMin, 100*time.Millisecond)
	set(&o.RetryMax, 5*time.Second)
	if o.TxQueue <= 0 {
		o.TxQueue = defaultTxQueue
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Link is a USB tether's network function (RNDIS, CDC-NCM or CDC-ECM) as a
// NIC of gVisor's netstack.
type Link struct {
	opts   Options
	opener usb.Opener
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	ep     *endpoint
	events *notify.Hub[Event]
	stats  counters

	mu    sync.Mutex
	info  DeviceInfo
	up    atomic.Bool
	epoch atomic.Uint64 // counts link state changes
	// awaitingMedia: the link is down for its medium alone (a media
	// disconnect, or a start that found it disconnected), so that a media
	// connect brings it up.
	awaitingMedia atomic.Bool
	last          Event
	closeErr      error // what went wrong telling the device the host left
}

// Open opens the device through opener, starts its function and returns a
// link that is up (or down with CauseNoDevice, with WaitForDevice and no
// device yet). The link keeps itself up until Close: it starts the function
// again after halts and timeouts and re-opens the device after an unplug.
func Open(ctx context.Context, opener usb.Opener, opts Options) (*Link, error) {
	opts.defaults()
	lctx, cancel := context.WithCancel(context.Background())
	l := &Link{opts: opts, opener: opener, log: opts.Logger, ctx: lctx, cancel: cancel,
		done: make(chan struct{}), events: notify.New[Event]()}
	l.ep = newEndpoint(l)
	fail := func(err error) (*Link, error) {
		cancel()
		l.events.Close()
		return nil, err
	}
	t, err := opener.Open(ctx)
	if err != nil {
		if !opts.WaitForDevice || !errors.Is(err, usb.ErrNoDevice) {
			return fail(err)
		}
		l.last = Event{Cause: CauseNoDevice, Err: err, Time: time.Now()}
		go l.run(nil, err)
		return l, nil
	}
	s, err := newSession(l, t)
	if err != nil {
		t.Close()
		return fail(err)
	}
	info, err := s.start(ctx, nil)
	if err != nil {
		s.stop()
		return fail(fmt.Errorf("starting %v: %w", t.Info(), err))
	}
	l.narrow(t.Info())
	s.startData()
	l.started(info, CauseInitialized)
	go l.run(s, nil)
	return l, nil
}

// narrow makes the link wait for this device, and no other, after an unplug.
func (l *Link) narrow(i usb.Info) {
	if n, ok := l.opener.(usb.Narrower); ok {
		l.opener = n.Narrow(i)
	}
}

// LinkEndpoint returns the NIC's link endpoint, Ethernet framing included:
// pass it to Stack.CreateNIC.
func (l *Link) LinkEndpoint() stack.LinkEndpoint { return ethernet.New(l.ep) }

// Info returns what the host learned from the device at the last start of
// its function; the zero DeviceInfo before the first.
func (l *Link) Info() DeviceInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.info
}

// MAC returns the host's Ethernet address on the link.
func (l *Link) MAC() net.HardwareAddr { return l.Info().MAC }

// Up reports whether the link carries packets.
func (l *Link) Up() bool { return l.isUp() }

// LastEvent returns the most recent link event.
func (l *Link) LastEvent() Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// Stats returns the counters.
func (l *Link) Stats() Stats { return l.stats.snapshot() }

// Subscribe calls fn with every link event, in order, on a goroutine of the
// link's; fn must not block for long. It returns a function that cancels
// the subscription.
func (l *Link) Subscribe(fn func(Event)) (cancel func()) { return l.events.Subscribe(fn) }

// Close tells the device the host is leaving (RNDIS HALT; NCM and ECM: the
// data interface back to alternate setting 0), releases it and stops the
// link. It returns what went wrong telling the device.
func (l *Link) Close() error {
	l.cancel()
	<-l.done
	l.ep.discardQueued()
	l.events.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closeErr
}

func (l *Link) isUp() bool { return l.up.Load() }

func isGone(err error) bool  { return errors.Is(err, usb.ErrDeviceGone) }
func isStall(err error) bool { return errors.Is(err, usb.ErrStall) }

func (l *Link) setUp(c Cause) {
	l.mu.Lock()
	if l.up.Load() {
		l.mu.Unlock()
		return
	}
	l.up.Store(true)
	l.awaitingMedia.Store(false)
	l.ep.ready.set(true)
	l.epoch.Add(1)
	ev := Event{Up: true, Cause: c, Time: time.Now()}
	l.last = ev
	l.mu.Unlock()
	l.stats.linkUps.Add(1)
	l.log.Info("link up", "cause", string(c))
	l.events.Publish(ev)
}

// setDown takes the link down; queued frames wait for it to come back.
func (l *Link) setDown(c Cause, err error) {
	l.mu.Lock()
	if !l.up.Load() {
		l.mu.Unlock()
		return
	}
	l.ep.ready.set(false)
	l.up.Store(false)
	l.awaitingMedia.Store(c == CauseMediaDisconnect)
	l.epoch.Add(1)
	ev := Event{Up: false, Cause: c, Err: err, Time: time.Now()}
	l.last = ev
	l.mu.Unlock()
	l.stats.linkDowns.Add(1)
	if err != nil {
		l.log.Warn("link down", "cause", string(c), "err", err)
	} else {
		l.log.Warn("link down", "cause", string(c))
	}
	l.events.Publish(ev)
}

// run supervises sessions until Close, starting with s (nil: wait for the
// device first, which Open did not find for reason).
func (l *Link) run(s *session, reason error) {
	defer close(l.done)
	if s == nil {
		if s = l.reopen(reason); s == nil {
			return // closed while waiting for the device
		}
	}
	for s != nil {
		s = l.supervise(s)
	}
}

// supervise reacts to what s raises. It returns the next session after the
// device was gone and came back, or nil when the link closed.
func (l *Link) supervise(s *session) *session {
	for {
		select {
		case <-l.ctx.Done():
			l.shutdown(s)
			return nil
		case <-s.sig.wake:
		}
		for _, sig := range s.sig.take() {
			switch sig.cause {
			case CauseDeviceGone:
				l.setDown(CauseDeviceGone, sig.err)
				s.stop()
				return l.reopen(nil)
			case CauseDeviceHalt:
				l.setDown(CauseDeviceHalt, nil)
				l.restart(s)
			case CauseKeepAliveTimeout:
				if sig.epoch != l.epoch.Load() {
					continue // raised before the link last changed state
				}
				l.setDown(sig.cause, sig.err)
				if err := s.fn.reset(l.ctx); err != nil {
					if !errors.Is(err, errNoReset) {
						l.log.Warn("reset failed, starting the function again", "err", err)
					}
					l.restart(s)
				} else if s.media.Load() {
					l.setUp(CauseReset)
				}
			case CauseMediaDisconnect, CauseMediaConnect:
				// The medium is a level: a disconnect seen while up takes
				// the link down even if the device is connected again by
				// now; then the level decides.
				if sig.cause == CauseMediaDisconnect {
					l.setDown(CauseMediaDisconnect, nil)
				}
				if s.media.Load() && l.awaitingMedia.Load() {
					l.setUp(CauseMediaConnect)
				}
			}
		}
	}
}

// restart starts the function again on the same transport, with backoff,
// until it succeeds, the device is gone, or the link closes; the link is
// up after it when the medium is connected.
func (l *Link) restart(s *session) {
	for delay := l.opts.RetryMin; ; delay = min(2*delay, l.opts.RetryMax) {
		s.fn.discard()
		info, err := s.start(l.ctx, l.MAC())
		if err == nil {
			l.stats.reinits.Add(1)
			l.started(info, CauseReinitialized)
			return
		}
		if l.ctx.Err() != nil {
			return
		}
		if isGone(err) {
			s.raise(CauseDeviceGone, err)
			return
		}
		l.log.Warn("starting the function again failed", "err", err, "retry_in", delay)
		if !l.sleep(delay) {
			return
		}
	}
}

// changeWaiter is an Opener that can wait for the bus to change (a device
// plugged in or re-enumerated), so that waiting for a device need not poll.
type changeWaiter interface {
	WaitChange(ctx context.Context) error
}

// reopen waits for the device to come back (or to appear, the first time,
// when the first try failed for why), with backoff, and starts a new session
// on it. It says what it sees once, and again when that changes, not on
// every try. It returns nil when the link is closed first.
func (l *Link) reopen(why error) *session {
	said := ""
	say := func(err error) {
		if err.Error() != said {
			said = err.Error()
			l.log.Info("waiting for the device", "reason", err)
		}
	}
	if why != nil {
		say(why)
	}
	for delay := l.opts.RetryMin; ; delay = min(2*delay, l.opts.RetryMax) {
		if !l.waitForBus(delay) {
			return nil
		}
		t, err := l.opener.Open(l.ctx)
		if err != nil {
			say(err)
			continue
		}
		s, err := newSession(l, t)
		if err != nil {
			l.log.Warn("opening the device", "err", err)
			t.Close()
			continue
		}
		info, err := s.start(l.ctx, l.MAC())
		if err != nil {
			l.log.Warn("starting the device's function", "err", err)
			s.stop()
			continue
		}
		first := l.Info().MAC == nil
		if first {
			l.narrow(t.Info())
		} else {
			l.stats.reinits.Add(1)
		}
		s.startData()
		c := CauseReinitialized
		if first {
			c = CauseInitialized
		}
		l.started(info, c)
		return s
	}
}

// waitForBus waits delay, or less when the opener says the bus changed. It
// returns false when the link closes first.
func (l *Link) waitForBus(delay time.Duration) bool {
	w, ok := l.opener.(changeWaiter)
	if !ok {
		return l.sleep(delay)
	}
	ctx, cancel := context.WithTimeout(l.ctx, delay)
	defer cancel()
	w.WaitChange(ctx)
	return l.ctx.Err() == nil
}

// setLinkSpeed records a speed the device reported after its start.
func (l *Link) setLinkSpeed(bps int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.info.LinkSpeed = bps
}

// started records what a start of the function learned, and brings the
// link up for cause if the medium is connected; if not, a later media
// connect will. A CDC device reports its speed in a notification that may
// come while the start ends, after the start has read the speed it knew:
// if the start learned none, the speed last reported stays.
func (l *Link) started(info DeviceInfo, cause Cause) {
	l.mu.Lock()
	if info.LinkSpeed == 0 {
		info.LinkSpeed = l.info.LinkSpeed
	}
	l.info = info
	l.mu.Unlock()
	l.ep.configure(info)
	if info.MediaConnected {
		l.setUp(cause)
	} else {
		l.awaitingMedia.Store(true)
	}
}

func (l *Link) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.ctx.Done():
		return false
	}
}

// shutdown stops the session's transfers, tells the device the host
// leaves, which it does not answer, and releases it.
func (l *Link) shutdown(s *session) {
	l.setDown(CauseClosed, nil)
	s.quiesce()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.fn.stop(ctx); err != nil {
		l.log.Debug("telling the device the host leaves", "err", err)
		l.mu.Lock()
		l.closeErr = err
		l.mu.Unlock()
	}
	s.t.Close()
}
