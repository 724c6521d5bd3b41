package link

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rndis-netd/rndis-netd/ncm"
	"github.com/rndis-netd/rndis-netd/usb"
)

// How a start learns the medium's first state, and how the link reads the
// device's NETWORK_CONNECTIONs after it. Linux's f_ncm and f_ecm notify on
// SET_CONFIGURATION and on every SET_INTERFACE, the first ones saying
// disconnected, and what they said before the host's final switch to the
// data setting may arrive after it. So a start waits for a "connected" up
// to firstConnectionWait (or the control timeout, if shorter), and takes
// the device to be connected unless all it said meanwhile was
// "disconnected" (a device that says nothing is connected, as Linux's
// cdc_ether takes every ECM device). After the start, a "disconnected" takes
// the link down only if no "connected" follows it within mediaDebounce: a
// stale one does not flap the link.
const (
	firstConnectionWait = 500 * time.Millisecond
	mediaDebounce       = 200 * time.Millisecond
)

// cdcFunction is the host side of CDC-NCM and CDC-ECM: class requests to the
// control interface, the data interface's alternate setting, and the
// NETWORK_CONNECTION and CONNECTION_SPEED_CHANGE notifications. NCM adds its
// NTB negotiation (ncmStart) and framing; ECM sends one frame per transfer.
type cdcFunction struct {
	s      *session
	l      *Link
	ncm    bool
	frames atomic.Pointer[framing]

	starting  atomic.Bool // a start is under way: notifications set the level only
	connected atomic.Int32
	seen      chan struct{} // a NETWORK_CONNECTION arrived during the start
	speed     atomic.Int64  // bit/s of the last CONNECTION_SPEED_CHANGE, downlink

	debounceMu sync.Mutex
	debounce   *time.Timer // a "disconnected" waits out mediaDebounce
}

var _ function = (*cdcFunction)(nil)

// Levels of cdcFunction.connected.
const (
	connectionUnknown = iota
	connectionUp
	connectionDown
)

func newCDC(s *session, isNCM bool) *cdcFunction {
	return &cdcFunction{s: s, l: s.l, ncm: isNCM, seen: make(chan struct{}, 1)}
}

func (c *cdcFunction) framing() framing { return *c.frames.Load() }

func (c *cdcFunction) iface() int { return c.s.t.Info().Function.ControlIface }

// control makes a class request of the control interface, within the
// control timeout.
func (c *cdcFunction) control(ctx context.Context, s usb.Setup, data []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, c.l.opts.ControlTimeout)
	defer cancel()
	n, err := c.s.t.Control(ctx, s, data)
	switch {
	case err == nil:
		c.l.stats.controlRequests.Add(1)
	case errors.Is(err, context.DeadlineExceeded):
		c.l.stats.controlTimeouts.Add(1)
	}
	return n, err
}

// start brings the function up in the order Linux's cdc_ncm and cdc_ether
// use: the NCM negotiation at alternate setting 0, the data interface's
// setting with the bulk pair (selected once: Linux's f_ncm resets what was
// negotiated on every SET_INTERFACE), the MAC address from iMACAddress, the
// packet filter after it (f_ncm and f_ecm reset the filter on
// SET_INTERFACE), and the medium's first state.
func (c *cdcFunction) start(ctx context.Context, mac net.HardwareAddr) (DeviceInfo, error) {
	t, fn := c.s.t, c.s.t.Info().Function
	info := DeviceInfo{USB: t.Info(), Protocol: fn.Protocol, MTU: defaultMTU}
	if fn.MaxSegmentSize >= minMTU+ethernetHeaderBytes {
		info.MTU = min(defaultMTU, fn.MaxSegmentSize-ethernetHeaderBytes)
	}
	c.starting.Store(true)
	defer c.starting.Store(false)
	var fr framing
	if c.ncm {
		n, err := c.negotiate(ctx, &info)
		if err != nil {
			return info, err
		}
		fr = n
	} else {
		if err := t.SetAlternate(ctx, 0); err != nil {
			return info, fmt.Errorf("data interface %d to alternate setting 0: %w", fn.DataIface, err)
		}
		fr = ecmFraming{maxFrame: info.MTU + ethernetHeaderBytes, maxPacket: fn.BulkOut.MaxPacketSize}
	}
	c.connected.Store(connectionUnknown) // what counts comes after the switch
	select {
	case <-c.seen:
	default:
	}
	if err := t.SetAlternate(ctx, fn.DataAlt); err != nil {
		return info, fmt.Errorf("data interface %d to alternate setting %d: %w", fn.DataIface, fn.DataAlt, err)
	}
	dev, err := c.readMAC(ctx, fn.MACAddressIndex)
	if err != nil {
		return info, err
	}
	info.DeviceMAC, info.MAC = dev, mac
	if info.MAC == nil {
		info.MAC = hostMAC(dev)
	}
	if !c.ncm || ncm.NetworkCapabilities(fn.NCMCapabilities)&ncm.CapEthernetFilter != 0 {
		// Linux sends it for ECM whatever the device says: some do not
		// reset their filter. A refusal leaves the device's own, which
		// passes everything on f_ncm and f_ecm.
		if _, err := c.control(ctx, usb.ClassOut(ncm.RequestSetEthernetPacketFilter, uint16(ncm.DefaultPacketFilter), c.iface()), nil); err != nil {
			if isGone(err) {
				return info, err
			}
			c.l.log.Debug("SET_ETHERNET_PACKET_FILTER refused", "err", err)
		}
	}
	c.frames.Store(&fr)
	info.MediaConnected = c.firstConnection(ctx)
	info.LinkSpeed = c.speed.Load()
	return info, nil
}

// firstConnection waits for the device to say it is connected after its
// data interface was selected, and reports whether it did or said nothing.
func (c *cdcFunction) firstConnection(ctx context.Context) bool {
	deadline := time.NewTimer(min(firstConnectionWait, c.l.opts.ControlTimeout))
	defer deadline.Stop()
	for c.connected.Load() != connectionUp {
		select {
		case <-c.seen:
		case <-deadline.C:
			return c.connected.Load() != connectionDown
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// readMAC reads the device's MAC address from the string descriptor
// iMACAddress names: twelve hex digits, of either case.
func (c *cdcFunction) readMAC(ctx context.Context, index int) (net.HardwareAddr, error) {
	if index == 0 {
		return nil, errors.New("no MAC address: the Ethernet functional descriptor names no iMACAddress")
	}
	s, err := usb.ReadString(ctx, c.s.t, index)
	if err != nil {
		return nil, fmt.Errorf("reading the MAC address: %w", err)
	}
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != 6 {
		return nil, fmt.Errorf("MAC address string %q: want 12 hex digits", s)
	}
	return net.HardwareAddr(b), nil
}

// watch reads the interrupt endpoint until the session ends: the medium's
// state and its speed.
func (c *cdcFunction) watch() {
	s := c.s
	var r ncm.NotificationReader
	for s.ctx.Err() == nil {
		b, err := s.t.WaitNotification(s.ctx)
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			if isGone(err) {
				s.raise(CauseDeviceGone, err)
				return
			}
			c.l.log.Debug("interrupt pipe", "err", err)
			continue
		}
		s.heard()
		r.Feed(b)
		for n, ok := r.Next(); ok; n, ok = r.Next() {
			c.notified(n)
		}
		if err := r.Err(); err != nil {
			c.l.stats.notifyMalformed.Add(1)
			c.l.log.Debug("malformed notification", "err", err)
		}
	}
}

// disconnected takes the link down if the device still says it is
// disconnected, mediaDebounce after it first said so.
func (c *cdcFunction) disconnected() {
	c.debounceMu.Lock()
	c.debounce = nil
	c.debounceMu.Unlock()
	if c.connected.Load() == connectionDown && c.s.ctx.Err() == nil {
		c.s.setMedia(false)
	}
}

func (c *cdcFunction) notified(n ncm.Notification) {
	switch n.Code {
	case ncm.NotifyNetworkConnection:
		up := n.Connected()
		c.s.countMedia(up)
		level := connectionDown
		if up {
			level = connectionUp
		}
		c.connected.Store(int32(level))
		if c.starting.Load() {
			select {
			case c.seen <- struct{}{}:
			default:
			}
			return
		}
		if up {
			c.s.setMedia(true)
			return
		}
		c.debounceMu.Lock()
		defer c.debounceMu.Unlock()
		if c.debounce == nil {
			c.debounce = time.AfterFunc(mediaDebounce, c.disconnected)
		}
	case ncm.NotifyConnectionSpeedChange:
		c.speed.Store(int64(n.DownlinkBitRate))
		c.l.setLinkSpeed(int64(n.DownlinkBitRate))
	default:
		c.l.stats.notifyMalformed.Add(1)
	}
}

// reset: CDC has no reset; the link starts the function again.
func (c *cdcFunction) reset(context.Context) error { return errNoReset }

func (c *cdcFunction) discard() {}

// stop returns the data interface to alternate setting 0, which ends the
// data path as Linux's unbind does.
func (c *cdcFunction) stop(ctx context.Context) error {
	if err := c.s.t.SetAlternate(ctx, 0); err != nil {
		return fmt.Errorf("data interface to alternate setting 0: %w", err)
	}
	return nil
}
