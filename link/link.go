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
	"github.com/rndis-netd/rndis-netd/rndis"
	"github.com/rndis-netd/rndis-netd/usb"
)

// Options tune a Link. Zero values take the spec's defaults.
type Options struct {
	Logger            *slog.Logger
	KeepAliveInterval time.Duration // KEEPALIVE after this long without traffic from the device; 5 s
	ControlTimeout    time.Duration // a request unanswered this long has failed; 10 s (ControlTimeoutPeriod)
	PollInterval      time.Duration // read the control pipe this often even without RESPONSE_AVAILABLE; 250 ms
	RetryMin          time.Duration // first delay of the capped exponential backoff; 100 ms
	RetryMax          time.Duration // its cap; 5 s
	TxQueue           int           // frames queued for bulk OUT before WritePackets blocks; 512
	Capture           *PcapWriter   // if set, every frame in and out is recorded
	MTU               int           // if set, caps the device's MTU
}

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
		o.TxQueue = 512
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Link is an RNDIS device as a NIC of gVisor's netstack.
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

	mu      sync.Mutex
	info    DeviceInfo
	session *session
	up      atomic.Bool
	epoch   atomic.Uint64 // counts link state changes
	last    Event
	gate    chan struct{} // closed when the link goes down; replaced when it comes up
}

// Open opens the device through opener, initializes it and returns a link
// that is up. The link keeps itself up until Close: it re-initializes the
// device after halts and timeouts and re-opens it after an unplug.
func Open(ctx context.Context, opener usb.Opener, opts Options) (*Link, error) {
	opts.defaults()
	t, err := opener.Open(ctx)
	if err != nil {
		return nil, err
	}
	lctx, cancel := context.WithCancel(context.Background())
	l := &Link{opts: opts, opener: opener, log: opts.Logger, ctx: lctx, cancel: cancel,
		done: make(chan struct{}), events: notify.New[Event](), gate: make(chan struct{})}
	close(l.gate)
	l.ep = newEndpoint(l)
	s := newSession(l, t)
	info, err := s.initialize(ctx, nil)
	if err != nil {
		s.stop()
		cancel()
		l.events.Close()
		return nil, fmt.Errorf("initializing %v: %w", t.Info(), err)
	}
	// After an unplug, wait for this device, not any device.
	if n, ok := opener.(usb.Narrower); ok {
		l.opener = n.Narrow(t.Info())
	}
	l.info = info
	l.ep.configure(info)
	l.session = s
	l.startData(s)
	if info.MediaConnected {
		l.setUp(CauseInitialized)
	}
	go l.supervise(s)
	return l, nil
}

// LinkEndpoint returns the NIC's link endpoint, Ethernet framing included:
// pass it to Stack.CreateNIC.
func (l *Link) LinkEndpoint() stack.LinkEndpoint { return ethernet.New(l.ep) }

// Info returns what the host learned from the device at the last
// initialization.
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

// Close sends REMOTE_NDIS_HALT_MSG, releases the device and stops the link.
func (l *Link) Close() error {
	l.cancel()
	<-l.done
	l.events.Close()
	return nil
}

func (l *Link) isUp() bool { return l.up.Load() }

func (l *Link) setUp(c Cause) {
	l.mu.Lock()
	if l.up.Load() {
		l.mu.Unlock()
		return
	}
	l.gate = make(chan struct{})
	l.up.Store(true)
	l.epoch.Add(1)
	ev := Event{Up: true, Cause: c, Time: time.Now()}
	l.last = ev
	l.mu.Unlock()
	l.stats.linkUps.Add(1)
	l.log.Info("link up", "cause", string(c))
	l.events.Publish(ev)
}

// setDown takes the link down and discards queued frames.
func (l *Link) setDown(c Cause, err error) {
	l.mu.Lock()
	if !l.up.Load() {
		l.mu.Unlock()
		return
	}
	l.up.Store(false)
	l.epoch.Add(1)
	close(l.gate)
	ev := Event{Up: false, Cause: c, Err: err, Time: time.Now()}
	l.last = ev
	l.mu.Unlock()
	l.ep.discardQueued()
	l.stats.linkDowns.Add(1)
	if err != nil {
		l.log.Warn("link down", "cause", string(c), "err", err)
	} else {
		l.log.Warn("link down", "cause", string(c))
	}
	l.events.Publish(ev)
}

// gateChan returns a channel closed when the link is (or goes) down.
func (l *Link) gateChan() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gate
}

// startData starts the session's data path and keepalives.
func (l *Link) startData(s *session) {
	s.goRun(func() { l.ep.receive(s) })
	s.goRun(func() { l.ep.transmit(s) })
	s.goRun(s.keepAlive)
}

// supervise reacts to what sessions raise until Close.
func (l *Link) supervise(s *session) {
	defer close(l.done)
	mediaDown := !l.Info().MediaConnected
	for {
		select {
		case <-l.ctx.Done():
			l.shutdown(s)
			return
		case sig := <-s.signals:
			switch sig.cause {
			case CauseMediaConnect:
				if mediaDown {
					mediaDown = false
					l.setUp(CauseMediaConnect)
				}
			case CauseMediaDisconnect:
				mediaDown = true
				l.setDown(CauseMediaDisconnect, nil)
			case CauseDeviceHalt:
				l.setDown(CauseDeviceHalt, nil)
				mediaDown = !l.reinitialize(s)
			case CauseKeepAliveTimeout, CauseControlTimeout:
				if sig.epoch != l.epoch.Load() {
					continue // raised before the link last changed state
				}
				l.setDown(sig.cause, sig.err)
				if err := s.reset(l.ctx); err != nil {
					l.log.Warn("reset failed, re-initializing", "err", err)
					mediaDown = !l.reinitialize(s)
				} else {
					l.setUp(CauseReset)
				}
			case CauseDeviceGone:
				l.setDown(CauseDeviceGone, sig.err)
				s.stop()
				if s = l.reopen(); s == nil {
					return // closed while waiting for the device
				}
				mediaDown = !l.Info().MediaConnected
			}
		}
	}
}

// reinitialize runs INITIALIZE again on the same transport, with backoff,
// until it succeeds, the device is gone, or the link closes. It reports
// whether the medium is connected; the link is up when it is.
func (l *Link) reinitialize(s *session) bool {
	for delay := l.opts.RetryMin; ; delay = min(2*delay, l.opts.RetryMax) {
		s.discardRequests()
		info, err := s.initialize(l.ctx, l.MAC())
		if err == nil {
			l.stats.reinits.Add(1)
			l.adopt(s, info)
			return info.MediaConnected
		}
		if l.ctx.Err() != nil || errors.Is(err, usb.ErrDeviceGone) {
			l.raiseGone(s, err)
			return false
		}
		l.log.Warn("re-initialization failed", "err", err, "retry_in", delay)
		if !l.sleep(delay) {
			return false
		}
	}
}

// raiseGone re-queues a device-gone signal for the supervisor loop.
func (l *Link) raiseGone(s *session, err error) {
	if l.ctx.Err() == nil {
		go s.raise(CauseDeviceGone, err)
	}
}

// reopen waits for the same device to come back, polling the bus with
// backoff, and starts a new session on it. It returns nil when the link is
// closed first.
func (l *Link) reopen() *session {
	for delay := l.opts.RetryMin; ; delay = min(2*delay, l.opts.RetryMax) {
		if !l.sleep(delay) {
			return nil
		}
		t, err := l.opener.Open(l.ctx)
		if err != nil {
			l.log.Debug("waiting for the device", "err", err)
			continue
		}
		s := newSession(l, t)
		info, err := s.initialize(l.ctx, l.MAC())
		if err != nil {
			l.log.Warn("initializing the re-plugged device", "err", err)
			s.stop()
			continue
		}
		l.stats.reinits.Add(1)
		l.mu.Lock()
		l.session = s
		l.mu.Unlock()
		l.startData(s)
		l.adopt(s, info)
		return s
	}
}

// adopt records a fresh initialization and brings the link up.
func (l *Link) adopt(s *session, info DeviceInfo) {
	l.mu.Lock()
	l.info = info
	l.mu.Unlock()
	l.ep.configure(info)
	if info.MediaConnected {
		l.setUp(CauseReinitialized)
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

// shutdown sends HALT, which has no reply, and releases the device.
func (l *Link) shutdown(s *session) {
	l.setDown(CauseClosed, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s.mu.Lock()
	s.nextRID++
	rid := s.nextRID
	s.mu.Unlock()
	if err := s.sendCommand(ctx, rndis.Halt{RequestID: rid}); err != nil {
		l.log.Debug("sending HALT", "err", err)
	}
	s.stop()
}
