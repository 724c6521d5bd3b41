package link

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rndis-netd/rndis-netd/rndis"
	"github.com/rndis-netd/rndis-netd/usb"
)

// Errors of the control plane.
var (
	errControlTimeout = errors.New("no completion within the control timeout")
	errDiscarded      = errors.New("request discarded: the session ended or the device halted")
	errNoReset        = errors.New("the protocol has no reset")
)

// hostMaxTransferSize is the MaxTransferSize offered in INITIALIZE.
const hostMaxTransferSize = 16384

// packetFilter is what Linux sets: directed, broadcast, all-multicast.
const packetFilter = rndis.FilterDirected | rndis.FilterBroadcast | rndis.FilterAllMulticast

// Bounds on what an RNDIS device reports.
const (
	maxDeviceTransfer = 64 * 1024
	maxAlignmentShift = 8
)

// controlBufferSize holds any control message a device sends: above the
// spec's 1024-byte minimum, with room for a long OID_GEN_SUPPORTED_LIST.
const controlBufferSize = 4096

// rndisFunction is the host side of RNDIS: control messages as CDC
// encapsulated commands, RequestIds matched to completions, KEEPALIVE,
// RESET and HALT, and PACKET_MSGs on the bulk pipes.
type rndisFunction struct {
	s *session
	l *Link

	reqMu     sync.Mutex // one control request at a time
	mu        sync.Mutex
	nextRID   uint32
	pending   map[uint32]chan rndis.Message
	resetDone chan rndis.ResetComplete
	resetting atomic.Bool // a RESET awaits its RESET_CMPLT
	frames    atomic.Pointer[rndisFraming]
}

var _ function = (*rndisFunction)(nil)

func newRNDIS(s *session) *rndisFunction {
	return &rndisFunction{s: s, l: s.l, pending: map[uint32]chan rndis.Message{}, resetDone: make(chan rndis.ResetComplete, 1)}
}

// framing returns the last start's framing as the pointer it stored: an
// rndisFraming value would be copied into a new interface on every call,
// and the transmit path asks once a transfer.
func (r *rndisFunction) framing() framing { return r.frames.Load() }

// start runs INITIALIZE, the queries and SET filter.
func (r *rndisFunction) start(ctx context.Context, mac net.HardwareAddr) (DeviceInfo, error) {
	info := DeviceInfo{USB: r.s.t.Info(), Protocol: usb.ProtocolRNDIS, MTU: defaultMTU, MediaConnected: true, RNDIS: &RNDISInfo{}}
	m, err := r.request(ctx, func(rid uint32) rndis.Message {
		return rndis.Initialize{RequestID: rid, MajorVersion: rndis.MajorVersion, MinorVersion: rndis.MinorVersion, MaxTransferSize: hostMaxTransferSize}
	})
	if err != nil {
		return info, err
	}
	c, ok := m.(rndis.InitializeComplete)
	switch {
	case !ok:
		return info, fmt.Errorf("INITIALIZE answered with %s", rndis.Describe(m))
	case c.Status != rndis.StatusSuccess:
		return info, fmt.Errorf("INITIALIZE failed: %v", c.Status)
	case c.DeviceFlags&rndis.DeviceFlagConnectionless == 0:
		return info, fmt.Errorf("device flags %#x: not a connectionless (DF_CONNECTIONLESS) device", c.DeviceFlags)
	case c.Medium != rndis.Medium8023:
		return info, fmt.Errorf("medium %#x: not 802.3", c.Medium)
	}
	ri := info.RNDIS
	ri.Version = fmt.Sprintf("%d.%d", c.MajorVersion, c.MinorVersion)
	ri.Limits = rndis.PacketLimits{
		MaxTransferSize:       int(min(c.MaxTransferSize, maxDeviceTransfer)),
		MaxPacketsPerTransfer: int(max(c.MaxPacketsPerTransfer, 1)),
		Alignment:             1 << min(c.PacketAlignmentFactor, maxAlignmentShift),
	}
	if c.MaxTransferSize > maxDeviceTransfer || c.MaxPacketsPerTransfer == 0 || c.PacketAlignmentFactor > maxAlignmentShift {
		// A device that reports impossible limits may not honour what it
		// reports either: send one frame per transfer, as Linux always does.
		r.l.stats.limitsClamped.Add(1)
		r.l.log.Warn("device limits out of range: one frame per transfer", "max_transfer_size", c.MaxTransferSize,
			"max_packets_per_transfer", c.MaxPacketsPerTransfer, "alignment_factor", c.PacketAlignmentFactor)
		ri.Limits.MaxPacketsPerTransfer, ri.Limits.Alignment = 1, 1
	}
	if ri.Limits.MaxFrame() < minMTU+ethernetHeaderBytes {
		return info, fmt.Errorf("MaxTransferSize %d leaves no room for a %d-byte frame", c.MaxTransferSize, minMTU+ethernetHeaderBytes)
	}

	if b, err := r.query(ctx, rndis.OIDGenSupportedList, 0); err == nil {
		for i := 0; i+4 <= len(b); i += 4 {
			ri.SupportedOIDs = append(ri.SupportedOIDs, rndis.OID(binary.LittleEndian.Uint32(b[i:])))
		}
	}
	// ActiveSync devices want an input buffer as long as the answer (48 as Linux sends).
	addr, err := r.query(ctx, rndis.OID8023PermanentAddress, 48)
	if err != nil || len(addr) < 6 {
		addr, err = r.query(ctx, rndis.OID8023CurrentAddress, 48)
	}
	if err != nil || len(addr) < 6 {
		return info, fmt.Errorf("reading the device's MAC address: %v", errOr(err, "short answer"))
	}
	info.DeviceMAC = net.HardwareAddr(append([]byte(nil), addr[:6]...))
	info.MAC = mac
	if info.MAC == nil {
		info.MAC = hostMAC(info.DeviceMAC)
	}
	if v, ok := r.queryU32(ctx, rndis.OIDGenMaximumFrameSize); ok && v >= minMTU {
		info.MTU = int(v)
	}
	info.MTU = min(info.MTU, ri.Limits.MaxFrame()-ethernetHeaderBytes)
	if v, ok := r.queryU32(ctx, rndis.OIDGenLinkSpeed); ok {
		info.LinkSpeed = int64(v) * 100
	}
	if v, ok := r.queryU32(ctx, rndis.OIDGenMediaConnectStatus); ok {
		info.MediaConnected = v == rndis.MediaStateConnected
	}
	if info.supports(rndis.OIDGenPhysicalMedium) {
		if v, ok := r.queryU32(ctx, rndis.OIDGenPhysicalMedium); ok {
			ri.PhysicalMedium = v
		}
	}
	if err := r.setFilter(ctx); err != nil {
		return info, err
	}
	r.frames.Store(&rndisFraming{limits: ri.Limits, maxPacket: info.USB.Function.BulkOut.MaxPacketSize})
	return info, nil
}

func errOr(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}

// query reads an OID; inLen is the size of the zero input buffer.
func (r *rndisFunction) query(ctx context.Context, oid rndis.OID, inLen int) ([]byte, error) {
	m, err := r.request(ctx, func(rid uint32) rndis.Message {
		return rndis.Query{RequestID: rid, OID: oid, Buffer: make([]byte, inLen)}
	})
	if err != nil {
		return nil, err
	}
	c, ok := m.(rndis.QueryComplete)
	if !ok {
		return nil, fmt.Errorf("QUERY %v answered with %s", oid, rndis.Describe(m))
	}
	if c.Status != rndis.StatusSuccess {
		return nil, fmt.Errorf("QUERY %v: %v", oid, c.Status)
	}
	return c.Buffer, nil
}

func (r *rndisFunction) queryU32(ctx context.Context, oid rndis.OID) (uint32, bool) {
	b, err := r.query(ctx, oid, 4)
	if err != nil || len(b) < 4 {
		return 0, false
	}
	return binary.LittleEndian.Uint32(b), true
}

func (r *rndisFunction) setFilter(ctx context.Context) error {
	m, err := r.request(ctx, func(rid uint32) rndis.Message {
		return rndis.Set{RequestID: rid, OID: rndis.OIDGenCurrentPacketFilter, Buffer: binary.LittleEndian.AppendUint32(nil, packetFilter)}
	})
	if err != nil {
		return fmt.Errorf("setting the packet filter: %w", err)
	}
	if c, ok := m.(rndis.SetComplete); !ok || c.Status != rndis.StatusSuccess {
		return fmt.Errorf("setting the packet filter: answered with %s", rndis.Describe(m))
	}
	return nil
}

// reset sends RESET and waits for RESET_CMPLT, then sets the packet filter
// again. A device's AddressingReset is not trusted: RESET_CMPLT carries no
// RequestId, so a stale or forged one cannot be told apart, and a device
// left with filter 0 sends nothing while the link looks up.
func (r *rndisFunction) reset(ctx context.Context) error {
	r.l.stats.resets.Add(1)
	select { // a stale completion must not answer this reset
	case <-r.resetDone:
	default:
	}
	r.resetting.Store(true)
	defer r.resetting.Store(false)
	if err := r.sendCommand(ctx, rndis.Reset{}); err != nil {
		return fmt.Errorf("sending RESET: %w", err)
	}
	timer := time.NewTimer(r.l.opts.ControlTimeout)
	defer timer.Stop()
	select {
	case c := <-r.resetDone:
		if c.Status != rndis.StatusSuccess {
			return fmt.Errorf("RESET failed: %v", c.Status)
		}
		return r.setFilter(ctx)
	case <-timer.C:
		r.l.stats.controlTimeouts.Add(1)
		return fmt.Errorf("RESET: %w", errControlTimeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop sends REMOTE_NDIS_HALT_MSG, which has no reply.
func (r *rndisFunction) stop(ctx context.Context) error {
	r.mu.Lock()
	r.nextRID++
	rid := r.nextRID
	r.mu.Unlock()
	if err := r.sendCommand(ctx, rndis.Halt{RequestID: rid}); err != nil {
		return fmt.Errorf("sending HALT: %w", err)
	}
	return nil
}

// sendCommand sends one control message (CDC SEND_ENCAPSULATED_COMMAND).
func (r *rndisFunction) sendCommand(ctx context.Context, m rndis.Message) error {
	_, err := r.s.t.Control(ctx, usb.ClassOut(usb.RequestSendEncapsulatedCommand, 0, r.s.t.Info().Function.ControlIface), rndis.Marshal(m))
	return err
}

// getResponse reads one control message (CDC GET_ENCAPSULATED_RESPONSE)
// into buf; 0 when the device has none (it may stall the request then).
func (r *rndisFunction) getResponse(ctx context.Context, buf []byte) (int, error) {
	n, err := r.s.t.Control(ctx, usb.ClassIn(usb.RequestGetEncapsulatedResponse, 0, r.s.t.Info().Function.ControlIface), buf)
	if errors.Is(err, usb.ErrStall) {
		return 0, nil
	}
	return n, err
}

// request sends a control message built with a fresh RequestId and waits
// for its completion.
func (r *rndisFunction) request(ctx context.Context, build func(rid uint32) rndis.Message) (rndis.Message, error) {
	r.reqMu.Lock()
	defer r.reqMu.Unlock()
	r.mu.Lock()
	r.nextRID++
	rid := r.nextRID
	ch := make(chan rndis.Message, 1)
	r.pending[rid] = ch
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.pending, rid)
		r.mu.Unlock()
	}()

	msg := build(rid)
	start := time.Now()
	if err := r.sendCommand(ctx, msg); err != nil {
		return nil, fmt.Errorf("sending %v: %w", msg.Type(), err)
	}
	timer := time.NewTimer(r.l.opts.ControlTimeout)
	defer timer.Stop()
	select {
	case m, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("%v: %w", msg.Type(), errDiscarded)
		}
		r.l.stats.controlRequests.Add(1)
		r.l.stats.controlRTT.Add(uint64(time.Since(start)))
		return m, nil
	case <-timer.C:
		r.l.stats.controlTimeouts.Add(1)
		return nil, fmt.Errorf("%v (RequestId %d): %w (%v)", msg.Type(), rid, errControlTimeout, r.l.opts.ControlTimeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-r.s.ctx.Done():
		return nil, fmt.Errorf("%v: %w", msg.Type(), errDiscarded)
	}
}

// discard fails every outstanding request, as HALT requires.
func (r *rndisFunction) discard() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for rid, ch := range r.pending {
		close(ch)
		delete(r.pending, rid)
	}
}

// watch sends keepalives and reads the control messages the device
// announces on the interrupt pipe. It also polls every PollInterval, for
// devices that never signal RESPONSE_AVAILABLE.
func (r *rndisFunction) watch() {
	s := r.s
	s.goRun(r.keepAlive)
	buf := make([]byte, controlBufferSize)
	for s.ctx.Err() == nil {
		wait, cancel := context.WithTimeout(s.ctx, r.l.opts.PollInterval)
		note, err := s.t.WaitNotification(wait)
		cancel()
		if s.ctx.Err() != nil {
			return
		}
		if err == nil && !rndis.IsResponseAvailable(note) {
			r.l.stats.notifyMalformed.Add(1) // the control pipe is read all the same
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			if isGone(err) {
				s.raise(CauseDeviceGone, err)
				return
			}
			r.l.log.Debug("interrupt pipe", "err", err)
		}
		for s.ctx.Err() == nil {
			n, err := r.getResponse(s.ctx, buf)
			if err != nil {
				if isGone(err) {
					s.raise(CauseDeviceGone, err)
					return
				}
				r.l.log.Debug("control pipe", "err", err)
				break
			}
			if n == 0 {
				break
			}
			r.handleControl(buf[:n])
		}
	}
}

// handleControl dispatches one control message from the device.
func (r *rndisFunction) handleControl(b []byte) {
	s, stats := r.s, &r.l.stats
	m, err := rndis.Parse(b)
	if err != nil {
		stats.controlMalformed.Add(1)
		r.l.log.Debug("malformed control message", "err", err, "bytes", len(b))
		return
	}
	s.heard()
	switch m := m.(type) {
	case rndis.Halt:
		stats.halts.Add(1)
		r.discard()
		s.raise(CauseDeviceHalt, nil)
	case rndis.IndicateStatus:
		stats.indications.Add(1)
		switch m.Status {
		case rndis.StatusMediaDisconnect:
			s.countMedia(false)
			s.setMedia(false)
		case rndis.StatusMediaConnect:
			s.countMedia(true)
			s.setMedia(true)
		default:
			r.l.log.Debug("device indication", "status", m.Status)
		}
	case rndis.KeepAlive:
		stats.deviceKeepAlives.Add(1)
		reply := rndis.KeepAliveComplete{RequestID: m.RequestID, Status: rndis.StatusSuccess}
		if err := r.sendCommand(s.ctx, reply); err != nil {
			r.l.log.Debug("answering device keepalive", "err", err)
		}
	case rndis.ResetComplete:
		if !r.resetting.Load() {
			stats.controlUnmatched.Add(1)
			return
		}
		select {
		case r.resetDone <- m:
		default:
			stats.controlUnmatched.Add(1)
		}
	default:
		rid, ok := rndis.RequestID(m)
		r.mu.Lock()
		ch := r.pending[rid]
		delete(r.pending, rid)
		r.mu.Unlock()
		if !ok || ch == nil || m.Type()&rndis.CompletionBit == 0 {
			stats.controlUnmatched.Add(1)
			r.l.log.Debug("unmatched control message", "msg", rndis.Describe(m))
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
func (r *rndisFunction) keepAlive() {
	s := r.s
	tick := time.NewTicker(r.l.opts.KeepAliveInterval / 5)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
		epoch := r.l.epoch.Load()
		if !r.l.isUp() || time.Since(s.lastHeardTime()) < r.l.opts.KeepAliveInterval {
			continue
		}
		m, err := r.request(s.ctx, func(rid uint32) rndis.Message { return rndis.KeepAlive{RequestID: rid} })
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
