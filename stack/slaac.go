package stack

import (
	"net/netip"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	tcpipstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

// ndpDispatcher receives gVisor's router discovery and SLAAC callbacks.
// gVisor adds SLAAC addresses itself but no routes; the callbacks run with
// stack locks held, so they only record and let maintainRoutes apply.
type ndpDispatcher Net

var _ ipv6.NDPDispatcher = (*ndpDispatcher)(nil)

func (d *ndpDispatcher) net() *Net { return (*Net)(d) }

func (d *ndpDispatcher) setRoute(r tcpip.Route, add bool) {
	n := d.net()
	n.mu.Lock()
	if add {
		n.routes6[r.Destination] = r
	} else {
		delete(n.routes6, r.Destination)
	}
	n.mu.Unlock()
	n.markRoutes()
}

func (d *ndpDispatcher) OnDuplicateAddressDetectionResult(tcpip.NICID, tcpip.Address, tcpipstack.DADResult) {
}

func (d *ndpDispatcher) OnOffLinkRouteUpdated(nic tcpip.NICID, dst tcpip.Subnet, router tcpip.Address, _ header.NDPRoutePreference) {
	d.setRoute(tcpip.Route{Destination: dst, Gateway: router, NIC: nic}, true)
}

func (d *ndpDispatcher) OnOffLinkRouteInvalidated(nic tcpip.NICID, dst tcpip.Subnet, router tcpip.Address) {
	d.setRoute(tcpip.Route{Destination: dst, Gateway: router, NIC: nic}, false)
}

func (d *ndpDispatcher) OnOnLinkPrefixDiscovered(nic tcpip.NICID, prefix tcpip.Subnet) {
	d.setRoute(tcpip.Route{Destination: prefix, NIC: nic}, true)
}

func (d *ndpDispatcher) OnOnLinkPrefixInvalidated(nic tcpip.NICID, prefix tcpip.Subnet) {
	d.setRoute(tcpip.Route{Destination: prefix, NIC: nic}, false)
}

func (d *ndpDispatcher) OnAutoGenAddress(_ tcpip.NICID, a tcpip.AddressWithPrefix) tcpipstack.AddressDispatcher {
	d.addrEvent(a, true)
	return nil
}

func (d *ndpDispatcher) OnAutoGenAddressDeprecated(tcpip.NICID, tcpip.AddressWithPrefix) {}

func (d *ndpDispatcher) OnAutoGenAddressInvalidated(_ tcpip.NICID, a tcpip.AddressWithPrefix) {
	d.addrEvent(a, false)
}

func (d *ndpDispatcher) addrEvent(a tcpip.AddressWithPrefix, added bool) {
	addr, ok := netip.AddrFromSlice(a.Address.AsSlice())
	if !ok {
		return
	}
	p := netip.PrefixFrom(addr, a.PrefixLen)
	kind := EventAddrAdded
	if !added {
		kind = EventAddrRemoved
	}
	n := d.net()
	n.log.Info("ipv6 address", "event", string(kind), "addr", p)
	// Published once the routes that came with the same RA are in place.
	n.mu.Lock()
	n.pending = append(n.pending, Event{Kind: kind, Addr: p, Time: time.Now()})
	n.mu.Unlock()
	n.markRoutes()
}

func (d *ndpDispatcher) OnRecursiveDNSServerOption(_ tcpip.NICID, addrs []tcpip.Address, lifetime time.Duration) {
	var servers []netip.Addr
	if lifetime > 0 {
		for _, a := range addrs {
			if s, ok := netip.AddrFromSlice(a.AsSlice()); ok {
				servers = append(servers, s)
			}
		}
	}
	n := d.net()
	n.mu.Lock()
	n.dns6 = servers
	n.mu.Unlock()
}

func (d *ndpDispatcher) OnDNSSearchListOption(tcpip.NICID, []string, time.Duration) {}

func (d *ndpDispatcher) OnDHCPv6Configuration(tcpip.NICID, ipv6.DHCPv6ConfigurationFromNDPRA) {}
