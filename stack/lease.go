package stack

import (
	"net/netip"
	"time"
)

// Lease is an IPv4 configuration, from DHCP or static.
type Lease struct {
	Addr    netip.Prefix // address and subnet
	Router  netip.Addr   // zero: no default route
	DNS     []netip.Addr
	MTU     int        // 0: the link's
	Server  netip.Addr // the DHCP server; zero for a static configuration
	Start   time.Time
	T1, T2  time.Duration // renew and rebind, from Start
	Expiry  time.Duration // from Start; 0 for a static configuration
	Stale   bool          // the link went down since it was confirmed
	Dynamic bool          // from DHCP
}

// Expires returns when a DHCP lease ends.
func (l Lease) Expires() time.Time { return l.Start.Add(l.Expiry) }
