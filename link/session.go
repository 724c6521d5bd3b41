package link

import (
	"context"
	"crypto/rand"
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

// DeviceInfo is what the host learned from the device.
type DeviceInfo struct {
	USB            usb.Info
	Version        string             // RNDIS version of INITIALIZE_CMPLT
	Limits         rndis.PacketLimits // what the device accepts per bulk-OUT transfer
	DeviceMAC      net.HardwareAddr   // OID_802_3_PERMANENT_ADDRESS (or CURRENT_ADDRESS)
	MAC            net.HardwareAddr   // the address the host uses
	MTU            int                // IP MTU, from OID_GEN_MAXIMUM_FRAME_SIZE
	LinkSpeed      int64              // bit/s, 0 when unknown
	MediaConnected bool
	PhysicalMedium uint32
	SupportedOIDs  []rndis.OID
}

// hostMaxTransferSize is the MaxTransferSize offered in INITIALIZE.
const hostMaxTransferSize = 16384

// packetFilter is what Linux sets: directed, broadcast, all-multicast.
const packetFilter = rndis.FilterDirected | rndis.FilterBroadcast | rndis.FilterAllMulticast

// Sane bounds on what a device reports.
const (
	minMTU              = 576
	maxDeviceTransfer   = 64 * 1024
	maxAlignmentShift   = 8
	defaultMTU          = 1500
	ethernetHeaderBytes = 14
)

// session is the RNDIS session over one transport; it lives until the
// device is gone or the link closes, across halts and resets.
type session struct {
	l   *Link
	t   usb.Transport
	ctx context.Context
	end context.CancelFunc
	wg  sync.WaitGroup

	reqMu     sync.Mutex // one control request at a time
	mu        sync.Mutex
	nextRID   uint32
	pending   map[uint32]chan rndis.Message
	resetDone chan rndis.ResetComplete
	resetting atomic.Bool // a RESET awaits its RESET_CMPLT
	signals   chan signal
	lastHeard atomic.Int64
}

func newSession(l *Link, t usb.Transport) *session {
	ctx, end := context.WithCancel(l.ctx)
	s := &session{l: l, t: t, ctx: ctx, end: end, pending: map[uint32]chan rndis.Message{},
		resetDone: make(chan rndis.ResetComplete, 1), signals: make(chan signal, 16)}
	s.heard()
	s.goRun(s.readControl)
	return s
}

func (s *session) goRun(fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

// stop ends the session's goroutines and closes the transport.
func (s *session) stop() {
	s.end()
	s.discardRequests()
	s.t.Close()
	s.wg.Wait()
}

// initialize runs INITIALIZE, the queries and SET filter. mac, when not
// nil, is the host address chosen before, kept across re-initializations
// so that DHCP leases and neighbours stay valid.
func (s *session) initialize(ctx context.Context, mac net.HardwareAddr) (DeviceInfo, error) {
	info, err := s.runInitialize(ctx, mac)
	if err != nil && ctx.Err() == nil && s.ctx.Err() == nil && !errors.Is(err, usb.ErrDeviceGone) {
		s.l.stats.initFailures.Add(1)
	}
	return info, err
}

func (s *session) runInitialize(ctx context.Context, mac net.HardwareAddr) (DeviceInfo, error) {
	info := DeviceInfo{USB: s.t.Info(), MTU: defaultMTU, MediaConnected: true}
	m, err := s.request(ctx, func(rid uint32) rndis.Message {
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
	info.Version = fmt.Sprintf("%d.%d", c.MajorVersion, c.MinorVersion)
	info.Limits = rndis.PacketLimits{
		MaxTransferSize:       int(min(c.MaxTransferSize, maxDeviceTransfer)),
		MaxPacketsPerTransfer: int(max(c.MaxPacketsPerTransfer, 1)),
		Alignment:             1 << min(c.PacketAlignmentFactor, maxAlignmentShift),
	}
	if c.MaxTransferSize > maxDeviceTransfer || c.MaxPacketsPerTransfer == 0 || c.PacketAlignmentFactor > maxAlignmentShift {
		// A device that reports impossible limits may not honour what it
		// reports either: send one frame per transfer, as Linux always does.
		s.l.stats.limitsClamped.Add(1)
		s.l.log.Warn("device limits out of range: one frame per transfer", "max_transfer_size", c.MaxTransferSize,
			"max_packets_per_transfer", c.MaxPacketsPerTransfer, "alignment_factor", c.PacketAlignmentFactor)
		info.Limits.MaxPacketsPerTransfer, info.Limits.Alignment = 1, 1
	}
	if info.Limits.MaxFrame() < minMTU+ethernetHeaderBytes {
		return info, fmt.Errorf("MaxTransferSize %d leaves no room for a %d-byte frame", c.MaxTransferSize, minMTU+ethernetHeaderBytes)
	}

	if b, err := s.query(ctx, rndis.OIDGenSupportedList, 0); err == nil {
		for i := 0; i+4 <= len(b); i += 4 {
			info.SupportedOIDs = append(info.SupportedOIDs, rndis.OID(binary.LittleEndian.Uint32(b[i:])))
		}
	}
	// ActiveSync devices want an input buffer as long as the answer (48 as Linux sends).
	addr, err := s.query(ctx, rndis.OID8023PermanentAddress, 48)
	if err != nil || len(addr) < 6 {
		addr, err = s.query(ctx, rndis.OID8023CurrentAddress, 48)
	}
	if err != nil || len(addr) < 6 {
		return info, fmt.Errorf("reading the device's MAC address: %v", errOr(err, "short answer"))
	}
	info.DeviceMAC = net.HardwareAddr(append([]byte(nil), addr[:6]...))
	info.MAC = mac
	if info.MAC == nil {
		info.MAC = hostMAC(info.DeviceMAC)
	}
	if v, ok := s.queryU32(ctx, rndis.OIDGenMaximumFrameSize); ok && v >= minMTU {
		info.MTU = int(v)
	}
	info.MTU = min(info.MTU, info.Limits.MaxFrame()-ethernetHeaderBytes)
	if v, ok := s.queryU32(ctx, rndis.OIDGenLinkSpeed); ok {
		info.LinkSpeed = int64(v) * 100
	}
	if v, ok := s.queryU32(ctx, rndis.OIDGenMediaConnectStatus); ok {
		info.MediaConnected = v == rndis.MediaStateConnected
	}
	if info.supports(rndis.OIDGenPhysicalMedium) {
		if v, ok := s.queryU32(ctx, rndis.OIDGenPhysicalMedium); ok {
			info.PhysicalMedium = v
		}
	}
	if err := s.setFilter(ctx); err != nil {
		return info, err
	}
	return info, nil
}

func (i DeviceInfo) supports(oid rndis.OID) bool {
	for _, o := range i.SupportedOIDs {
		if o == oid {
			return true
		}
	}
	return false
}

func errOr(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}

// query reads an OID; inLen is the size of the zero input buffer.
func (s *session) query(ctx context.Context, oid rndis.OID, inLen int) ([]byte, error) {
	m, err := s.request(ctx, func(rid uint32) rndis.Message {
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

func (s *session) queryU32(ctx context.Context, oid rndis.OID) (uint32, bool) {
	b, err := s.query(ctx, oid, 4)
	if err != nil || len(b) < 4 {
		return 0, false
	}
	return binary.LittleEndian.Uint32(b), true
}

func (s *session) setFilter(ctx context.Context) error {
	m, err := s.request(ctx, func(rid uint32) rndis.Message {
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
func (s *session) reset(ctx context.Context) error {
	s.l.stats.resets.Add(1)
	select { // a stale completion must not answer this reset
	case <-s.resetDone:
	default:
	}
	s.resetting.Store(true)
	defer s.resetting.Store(false)
	if err := s.sendCommand(ctx, rndis.Reset{}); err != nil {
		return fmt.Errorf("sending RESET: %w", err)
	}
	timer := time.NewTimer(s.l.opts.ControlTimeout)
	defer timer.Stop()
	select {
	case c := <-s.resetDone:
		if c.Status != rndis.StatusSuccess {
			return fmt.Errorf("RESET failed: %v", c.Status)
		}
		return s.setFilter(ctx)
	case <-timer.C:
		return fmt.Errorf("RESET: %w", errControlTimeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// hostMAC returns the device's address for the host to use, or a random
// locally-administered one when the device's is locally administered or
// zero (as Linux does for ZTE-style devices that ignore the address).
func hostMAC(dev net.HardwareAddr) net.HardwareAddr {
	zero := true
	for _, b := range dev {
		zero = zero && b == 0
	}
	if !zero && dev[0]&0x02 == 0 && dev[0]&0x01 == 0 {
		return dev
	}
	mac := make(net.HardwareAddr, 6)
	rand.Read(mac)
	mac[0] = mac[0]&^0x01 | 0x02 // unicast, locally administered
	return mac
}
