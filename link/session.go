package link

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rndis-netd/rndis-netd/usb"
)

// session is one opened transport, from its Open until the device is gone
// or the link closes: the function spoken over it, the goroutines that read
// its control side and move its frames, and what they raise.
type session struct {
	l   *Link
	t   usb.Transport
	fn  function
	ctx context.Context
	end context.CancelFunc
	wg  sync.WaitGroup

	sig       *signals
	media     atomic.Bool // the medium is connected, as the device last said
	lastHeard atomic.Int64
}

// newSession starts a session on t: its function's control side runs from
// here on; the data path starts with startData once the function is up.
func newSession(l *Link, t usb.Transport) (*session, error) {
	ctx, end := context.WithCancel(l.ctx)
	s := &session{l: l, t: t, ctx: ctx, end: end, sig: newSignals()}
	fn, err := newFunction(s)
	if err != nil {
		end()
		return nil, err
	}
	s.fn = fn
	s.media.Store(true)
	s.heard()
	s.goRun(fn.watch)
	return s, nil
}

func (s *session) goRun(fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

// startData starts the session's data path.
func (s *session) startData() {
	s.goRun(func() { s.l.ep.receive(s) })
	s.goRun(func() { s.l.ep.transmit(s) })
}

// start starts the function and counts a failure of a device that is there.
func (s *session) start(ctx context.Context, mac []byte) (DeviceInfo, error) {
	info, err := s.fn.start(ctx, mac)
	if err != nil && ctx.Err() == nil && s.ctx.Err() == nil && !isGone(err) {
		s.l.stats.initFailures.Add(1)
	}
	if err == nil {
		s.media.Store(info.MediaConnected)
	}
	return info, err
}

// stop ends the session's goroutines and closes the transport.
func (s *session) stop() {
	s.quiesce()
	s.t.Close()
}

// quiesce ends the session's goroutines and fails its requests, leaving
// the transport open: a function may only change the data interface's
// setting while no bulk transfer is in progress.
func (s *session) quiesce() {
	s.end()
	s.fn.discard()
	s.wg.Wait()
}

// raise tells the supervisor of cause, seen in the link state of now.
func (s *session) raise(c Cause, err error) {
	s.raiseIn(s.l.epoch.Load(), c, err)
}

func (s *session) raiseIn(epoch uint64, c Cause, err error) {
	s.sig.raise(signal{c, err, epoch})
}

// setMedia records the state of the medium and tells the supervisor.
func (s *session) setMedia(connected bool) {
	s.media.Store(connected)
	if connected {
		s.raise(CauseMediaConnect, nil)
	} else {
		s.raise(CauseMediaDisconnect, nil)
	}
}

// countMedia counts what the device said of its medium.
func (s *session) countMedia(connected bool) {
	if connected {
		s.l.stats.mediaConnects.Add(1)
	} else {
		s.l.stats.mediaDisconnects.Add(1)
	}
}

func (s *session) heard() { s.lastHeard.Store(time.Now().UnixNano()) }

func (s *session) lastHeardTime() time.Time { return time.Unix(0, s.lastHeard.Load()) }
