package stack

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/rndis-netd/rndis-netd/link"
)

// EventKind says what changed.
type EventKind string

// Kinds of events.
const (
	EventLink        EventKind = "link"          // Link holds the link event
	EventLease       EventKind = "lease"         // an IPv4 lease was obtained, renewed or re-confirmed
	EventLeaseStale  EventKind = "lease-stale"   // the link went down; the lease is kept but unconfirmed
	EventLeaseLost   EventKind = "lease-lost"    // the IPv4 address was removed (expiry, NAK, new network)
	EventAddrAdded   EventKind = "address-added" // a SLAAC address
	EventAddrRemoved EventKind = "address-removed"
)

// Event is a change of the network.
type Event struct {
	Kind  EventKind
	Link  link.Event   // for EventLink
	Lease Lease        // for the lease events
	Addr  netip.Prefix // for the address events
	Time  time.Time
}

func (e Event) String() string {
	switch e.Kind {
	case EventLink:
		return e.Link.String()
	case EventLease, EventLeaseStale, EventLeaseLost:
		return fmt.Sprintf("%s %v router %v dns %v", e.Kind, e.Lease.Addr, e.Lease.Router, e.Lease.DNS)
	}
	return fmt.Sprintf("%s %v", e.Kind, e.Addr)
}
