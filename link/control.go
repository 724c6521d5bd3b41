package link

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rndis-netd/rndis-netd/rndis"
	"github.com/rndis-netd/rndis-netd/usb"
)

// Errors of the control plane.
var (
	errControlTimeout = errors.New("no completion within the control timeout")
	errDiscarded      = errors.New("request discarded: the session ended or the device halted")
)

// controlBufferSize holds any control message a device sends: above the
// spec's 1024-byte minimum, with room for a long OID_GEN_SUPPORTED_LIST.
const controlBufferSize = 4096

// signal is something the session's goroutines tell the supervisor.
type signal struct {
	cause Cause
	err   error
	epoch uint64 // the link state it was seen in; a timeout from an earlier state is stale
}

func (s *session) raise(c Cause, err error) {
	s.raiseIn(s.l.epoch.Load(), c, err)
}

func (s *session) raiseIn(epoch uint64, c Cause, err error) {
	select {
	case s.signals <- signal{c, err, epoch}:
	case <-s.ctx.Done():
	}
}

// sendCommand sends one control message (CDC SEND_ENCAPSULATED_COMMAND).
func (s *session) sendCommand(ctx context.Context, m rndis.Message) error {
	_, err := s.t.Control(ctx, usb.ClassOut(usb.RequestSendEncapsulatedCommand, 0, s.t.Info().Function.ControlIface), rndis.Marshal(m))
	return err
}

// getResponse reads one control message (CDC GET_ENCAPSULATED_RESPONSE)
// into buf; 0 when the device has none (it may stall the request then).
func (s *session) getResponse(ctx context.Context, buf []byte) (int, error) {
	n, err := s.t.Control(ctx, usb.ClassIn(usb.RequestGetEncapsulatedResponse, 0, s.t.Info().Function.ControlIface), buf)
	if errors.Is(err, usb.ErrStall) {
		return 0, nil
	}
	return n, err
}

// request sends a control message built with a fresh RequestId and waits
// for its completion.
func (s *session) request(ctx context.Context, build func(rid uint32) rndis.Message) (rndis.Message, error) {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	s.mu.Lock()
	s.nextRID++
	rid := s.nextRID
	ch := make(chan rndis.Message, 1)
	s.pending[rid] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pending, rid)
		s.mu.Unlock()
	}()

	msg := build(rid)
	start := time.Now()
	if err := s.sendCommand(ctx, msg); err != nil {
		return nil, fmt.Errorf("sending %v: %w", msg.Type(), err)
	}
	timer := time.NewTimer(s.l.opts.ControlTimeout)
	defer timer.Stop()
	select {
	case m, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("%v: %w", msg.Type(), errDiscarded)
		}
		s.l.stats.controlRequests.Add(1)
		s.l.stats.controlRTT.Add(uint64(time.Since(start)))
		return m, nil
	case <-timer.C:
		s.l.stats.controlTimeouts.Add(1)
		return nil, fmt.Errorf("%v (RequestId %d): %w (%v)", msg.Type(), rid, errControlTimeout, s.l.opts.ControlTimeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.ctx.Done():
		return nil, fmt.Errorf("%v: %w", msg.Type(), errDiscarded)
	}
}

// discardRequests fails every outstanding request, as HALT requires.
func (s *session) discardRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for rid, ch := range s.pending {
		close(ch)
		delete(s.pending, rid)
	}
}

// readControl reads the control messages the device announces on the
// interrupt pipe. It also polls every PollInterval, for devices that never
// signal RESPONSE_AVAILABLE.
func (s *session) readControl() {
	buf := make([]byte, controlBufferSize)
	for s.ctx.Err() == nil {
		wait, cancel := context.WithTimeout(s.ctx, s.l.opts.PollInterval)
		note, err := s.t.WaitNotification(wait)
		cancel()
		if s.ctx.Err() != nil {
			return
		}
		if err == nil && !rndis.IsResponseAvailable(note) {
			s.l.stats.notifyMalformed.Add(1) // the control pipe is read all the same
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			if errors.Is(err, usb.ErrDeviceGone) {
				s.raise(CauseDeviceGone, err)
				return
			}
			s.l.log.Debug("interrupt pipe", "err", err)
		}
		for s.ctx.Err() == nil {
			n, err := s.getResponse(s.ctx, buf)
			if err != nil {
				if errors.Is(err, usb.ErrDeviceGone) {
					s.raise(CauseDeviceGone, err)
					return
				}
				s.l.log.Debug("control pipe", "err", err)
				break
			}
			if n == 0 {
				break
			}
			s.handleControl(buf[:n])
		}
	}
}

// handleControl dispatches one control message from the device.
func (s *session) handleControl(b []byte) {
	m, err := rndis.Parse(b)
	if err != nil {
		s.l.stats.controlMalformed.Add(1)
		s.l.log.Debug("malformed control message", "err", err, "bytes", len(b))
		return
	}
	s.heard()
	switch m := m.(type) {
	case rndis.Halt:
		s.l.stats.halts.Add(1)
		s.discardRequests()
		s.raise(CauseDeviceHalt, nil)
	case rndis.IndicateStatus:
		s.l.stats.indications.Add(1)
		switch m.Status {
		case rndis.StatusMediaDisconnect:
			s.raise(CauseMediaDisconnect, nil)
		case rndis.StatusMediaConnect:
			s.raise(CauseMediaConnect, nil)
		default:
			s.l.log.Debug("device indication", "status", m.Status)
		}
	case rndis.KeepAlive:
		s.l.stats.deviceKeepAlives.Add(1)
		reply := rndis.KeepAliveComplete{RequestID: m.RequestID, Status: rndis.StatusSuccess}
		if err := s.sendCommand(s.ctx, reply); err != nil {
			s.l.log.Debug("answering device keepalive", "err", err)
		}
	case rndis.ResetComplete:
		if !s.resetting.Load() {
			s.l.stats.controlUnmatched.Add(1)
			return
		}
		select {
		case s.resetDone <- m:
		default:
			s.l.stats.controlUnmatched.Add(1)
		}
	default:
		rid, ok := rndis.RequestID(m)
		s.mu.Lock()
		ch := s.pending[rid]
		delete(s.pending, rid)
		s.mu.Unlock()
		if !ok || ch == nil || m.Type()&rndis.CompletionBit == 0 {
			s.l.stats.controlUnmatched.Add(1)
			s.l.log.Debug("unmatched control message", "msg", rndis.Describe(m))
			return
		}
		// The requester reads the completion after b is reused for the
		// next response: hand over a copy.
		owned, _ := rndis.Parse(bytes.Clone(b))
		ch <- owned
	}
}

// keepAlive sends KEEPALIVE after KeepAliveInterval without a word from
// the device, and raises a keepalive timeout when it goes unanswered.
func (s *session) keepAlive() {
	tick := time.NewTicker(s.l.opts.KeepAliveInterval / 5)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
		epoch := s.l.epoch.Load()
		if !s.l.isUp() || time.Since(s.lastHeardTime()) < s.l.opts.KeepAliveInterval {
			continue
		}
		m, err := s.request(s.ctx, func(rid uint32) rndis.Message { return rndis.KeepAlive{RequestID: rid} })
		if s.ctx.Err() != nil {
			return
		}
		if err == nil {
			if c, ok := m.(rndis.KeepAliveComplete); !ok || c.Status != rndis.StatusSuccess {
				err = fmt.Errorf("KEEPALIVE answered with %s", rndis.Describe(m))
			}
		}
		if err != nil {
			s.raiseIn(epoch, CauseKeepAliveTimeout, err) // the link goes down; keepalives resume once it is up
		}
	}
}

func (s *session) heard() { s.lastHeard.Store(time.Now().UnixNano()) }

func (s *session) lastHeardTime() time.Time { return time.Unix(0, s.lastHeard.Load()) }
