package sim

import (
	"math"

	"github.com/rndis-netd/rndis-netd/ncm"
)

// notifier is the interrupt endpoint of Linux's f_ncm and f_ecm: one
// request in flight at a time, and a sequence of two notifications that
// every notify restarts. f_ncm sends CONNECTION_SPEED_CHANGE, then
// NETWORK_CONNECTION; f_ecm the reverse. A notify while a request is in
// flight restarts the sequence after it, so the host may read one twice
// (SPEED, SPEED, CONNECT). A notification is built when its turn comes,
// from the function's state then.
type notifier struct {
	order    [2]ncm.NotificationCode
	next     int    // the index in order of the next to send; len(order): none
	inFlight []byte // the request the host reads next, nil when none
	sent     int    // bytes of it the host has read
}

// disable drops what was in flight and what was to follow, as disabling the
// endpoint does.
func (n *notifier) disable() {
	n.inFlight, n.sent, n.next = nil, 0, len(n.order)
}

// notify is f_ncm's ncm_notify and f_ecm's ecm_notify.
func (c *cdcFunction) notify() {
	c.notes.next = 0
	c.submit()
}

// submit puts the next notification of the sequence on the endpoint unless
// one is there.
func (c *cdcFunction) submit() {
	n := &c.notes
	if n.inFlight != nil || n.next >= len(n.order) {
		return
	}
	var note ncm.Notification
	switch n.order[n.next] {
	case ncm.NotifyNetworkConnection:
		note = ncm.ConnectionNotification(cdcControlIface, c.isOpen)
	default:
		rate := uint32(min(c.p.cfg.LinkSpeed, math.MaxUint32))
		note = ncm.SpeedNotification(cdcControlIface, rate, rate)
	}
	n.next++
	n.inFlight, n.sent = note.Marshal(), 0
	c.p.wakeLocked()
}

// notification returns the next packet of the request in flight: the host
// reads the endpoint in transfers of its wMaxPacketSize, as Linux does, so
// a 16-byte CONNECTION_SPEED_CHANGE on an 8-byte endpoint comes in two.
// When the host has read all of it the next of the sequence follows.
func (c *cdcFunction) notification() []byte {
	n := &c.notes
	if n.inFlight == nil || c.p.hungLocked() {
		return nil
	}
	end := min(n.sent+notifyMaxPacket(c.p.cfg, 16), len(n.inFlight))
	b := n.inFlight[n.sent:end]
	n.sent = end
	if end == len(n.inFlight) {
		n.inFlight = nil
		c.submit()
	}
	return b
}
