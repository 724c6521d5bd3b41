package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	tcpipstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/rndis-netd/rndis-netd/internal/notify"
	"github.com/rndis-netd/rndis-netd/link"
)

// nicID is the tether's NIC; the stack has no other.
const nicID tcpip.NICID = 1

// Net is a network reached through a tether.
type Net struct {
	opts   Options
	log    *slog.Logger
	link   *link.Link
	stack  *tcpipstack.Stack
	dhcp   *dhcpClient
	events *notify.Hub[Event]
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	linkEvents  chan link.Event // for the DHCP client
	routesDirty chan struct{}
	routeMu     sync.Mutex // one route table writer at a time

	mu      sync.Mutex
	lease   Lease
	leased  bool
	routes6 map[tcpip.Subnet]tcpip.Route
	dns6    []netip.Addr
	pending []Event // address events waiting for their routes
}

// Open is New, then Ready within Options.DHCPTimeout: it returns once the
// network is usable, with the link up and an IPv4 address (DHCP or
// static). It fails when the context ends first, or with ErrNoDHCP after
// Options.DHCPTimeout.
func Open(ctx context.Context, opts Options) (*Net, error) {
	n, err := New(ctx, opts)
	if err != nil {
		return nil, err
	}
	wait, stop := context.WithTimeout(ctx, n.opts.DHCPTimeout)
	defer stop()
	if err := n.Ready(wait); err != nil {
		n.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	return n, nil
}

// New opens the device and starts configuring the network without waiting
// for it: the link's recovery, DHCP and SLAAC run on their own, Subscribe
// reports their progress and Ready waits until the network is usable. With
// Options.Link.WaitForDevice, a device that is not there yet is no error:
// the link is down (link.CauseNoDevice) until it appears. ctx bounds the
// opening of the device.
func New(ctx context.Context, opts Options) (*Net, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	static, isStatic, err := opts.staticLease()
	if err != nil {
		return nil, err
	}
	l, err := link.Open(ctx, opts.Device, opts.Link)
	if err != nil {
		return nil, err
	}
	nctx, cancel := context.WithCancel(context.Background())
	n := &Net{opts: opts, log: opts.Logger, link: l, events: notify.New[Event](), ctx: nctx, cancel: cancel,
		linkEvents: make(chan link.Event, 256), routesDirty: make(chan struct{}, 1),
		routes6: map[tcpip.Subnet]tcpip.Route{}}
	var ndp ipv6.NDPDispatcher
	if !opts.NoIPv6 {
		ndp = (*ndpDispatcher)(n)
	}
	if n.stack, err = newNetstack(ndp, n.opts.TCP); err != nil {
		n.abort()
		return nil, err
	}
	if terr := n.stack.CreateNIC(nicID, l.LinkEndpoint()); terr != nil {
		n.abort()
		return nil, fmt.Errorf("stack: creating the NIC: %s", terr)
	}
	l.BindNIC(n.stack, nicID)
	l.Subscribe(func(ev link.Event) {
		n.events.Publish(Event{Kind: EventLink, Link: ev, Time: ev.Time})
		if ev.Up && !opts.NoIPv6 {
			n.solicitRouters()
		}
		select {
		case n.linkEvents <- ev:
		default: // the DHCP client is far behind; it re-reads the link state
		}
	})
	if !opts.NoIPv6 {
		n.routes6[header.IPv6LinkLocalPrefix.Subnet()] = tcpip.Route{Destination: header.IPv6LinkLocalPrefix.Subnet(), NIC: nicID}
	}
	n.syncRoutes()
	n.goRun(n.maintainRoutes)

	if isStatic {
		n.apply(static)
		return n, nil
	}
	if n.dhcp, err = newDHCPClient(n.stack, nicID, l.MAC, opts.DHCPRetry, n.log); err != nil {
		n.abort()
		return nil, err
	}
	n.goRun(n.runDHCP)
	return n, nil
}

// Ready waits until the network is usable: the link up and an IPv4
// address configured. When ctx ends first it says what was missing: an
// error wrapping ErrNoDHCP when the link was up, the link's state
// otherwise.
func (n *Net) Ready(ctx context.Context) error {
	changed := make(chan struct{}, 1)
	cancel := n.events.Subscribe(func(Event) {
		select {
		case changed <- struct{}{}:
		default:
		}
	})
	defer cancel()
	for {
		_, leased := n.Lease()
		up := n.link.Up()
		if up && leased {
			return nil
		}
		select {
		case <-changed:
		case <-n.ctx.Done():
			return net.ErrClosed
		case <-ctx.Done():
			if up {
				return fmt.Errorf("%w on %v: %w", ErrNoDHCP, n.link.Info().USB, ctx.Err())
			}
			return fmt.Errorf("stack: the link is not up (%v): %w", n.link.LastEvent(), ctx.Err())
		}
	}
}

func (n *Net) goRun(fn func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		fn()
	}()
}

// abort undoes a failed New.
func (n *Net) abort() {
	n.cancel()
	n.link.Close()
	if n.stack != nil {
		n.stack.Close()
	}
	n.wg.Wait()
	n.events.Close()
}

// Close releases the DHCP lease, halts the device (REMOTE_NDIS_HALT_MSG),
// releases it, and stops the stack.
func (n *Net) Close() error {
	n.mu.Lock()
	lease, leased := n.lease, n.leased
	n.mu.Unlock()
	if n.dhcp != nil && leased && lease.Dynamic && n.link.Up() {
		n.dhcp.release(lease)
	}
	n.cancel()
	if n.dhcp != nil {
		n.dhcp.close()
	}
	n.wg.Wait()
	err := n.link.Close()
	n.stack.Close()
	n.stack.Wait()
	n.events.Close()
	return err
}

// Link returns the RNDIS link.
func (n *Net) Link() *link.Link { return n.link }

// Stack returns the gVisor netstack, for what this package does not wrap.
func (n *Net) Stack() *tcpipstack.Stack { return n.stack }

// Subscribe calls fn with every link and address event, in order, on a
// goroutine of the Net's. It returns a function that cancels it.
func (n *Net) Subscribe(fn func(Event)) (cancel func()) { return n.events.Subscribe(fn) }

// Lease returns the IPv4 configuration in force, and false when there is none.
func (n *Net) Lease() (Lease, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lease, n.leased
}

// Addrs returns the NIC's addresses: the IPv4 one, IPv6 link-local and
// SLAAC ones.
func (n *Net) Addrs() []netip.Prefix {
	var out []netip.Prefix
	for _, a := range n.stack.NICInfo()[nicID].ProtocolAddresses {
		addr, ok := netip.AddrFromSlice(a.AddressWithPrefix.Address.AsSlice())
		if !ok || addr.IsUnspecified() {
			continue
		}
		out = append(out, netip.PrefixFrom(addr, a.AddressWithPrefix.PrefixLen))
	}
	return out
}

// MTU returns the IP MTU in use: the device's, or the DHCP lease's
// interface MTU when that is lower.
func (n *Net) MTU() int { return int(n.stack.NICInfo()[nicID].MTU) }

// applyMTU lowers the NIC's MTU to a lease's interface MTU (DHCP option
// 26) when it is below the device's, and lifts it back for a lease
// without one. The link keeps what is set across re-initializations.
func (n *Net) applyMTU(l Lease) {
	want := n.link.Info().MTU
	if l.MTU > 0 && l.MTU < want {
		want = l.MTU
	}
	if want > 0 && want != n.MTU() {
		n.stack.SetNICMTU(nicID, uint32(want))
	}
}

// DNSServers returns the resolvers in use, in the order LookupNetIP asks
// them: static ones, the lease's, and those from IPv6 router
// advertisements.
func (n *Net) DNSServers() []netip.Addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, list := range [][]netip.Addr{n.opts.DNS, n.lease.DNS, n.dns6} {
		for _, a := range list {
			if !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	return out
}

// apply configures an IPv4 lease: the address, the subnet route and the
// default route, replacing a previous lease's cleanly.
func (n *Net) apply(l Lease) {
	n.mu.Lock()
	old, had := n.lease, n.leased
	n.lease, n.leased = l, true
	n.mu.Unlock()
	if had && old.Addr != l.Addr {
		n.stack.RemoveAddress(nicID, tcpip.AddrFrom4(old.Addr.Addr().As4()))
	}
	if !had || old.Addr != l.Addr {
		n.stack.AddProtocolAddress(nicID, tcpip.ProtocolAddress{
			Protocol:          ipv4.ProtocolNumber,
			AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4(l.Addr.Addr().As4()), PrefixLen: l.Addr.Bits()},
		}, tcpipstack.AddressProperties{})
	}
	if n.dhcp != nil {
		n.dhcp.unconfigured(false)
	}
	n.syncRoutes()
	n.applyMTU(l)
	n.log.Info("ipv4 configured", "addr", l.Addr, "router", l.Router, "dns", l.DNS, "mtu", n.MTU(), "dynamic", l.Dynamic,
		"expires", expiry(l))
	n.events.Publish(Event{Kind: EventLease, Lease: l, Time: time.Now()})
}

func expiry(l Lease) any {
	if !l.Dynamic {
		return "never"
	}
	return l.Expires().Format(time.RFC3339)
}

// drop removes the IPv4 address and its routes.
func (n *Net) drop(reason string) {
	n.mu.Lock()
	old, had := n.lease, n.leased
	n.leased = false
	n.lease = Lease{}
	n.mu.Unlock()
	if !had {
		return
	}
	n.stack.RemoveAddress(nicID, tcpip.AddrFrom4(old.Addr.Addr().As4()))
	n.syncRoutes()
	n.log.Warn("ipv4 address removed", "addr", old.Addr, "reason", reason)
	n.events.Publish(Event{Kind: EventLeaseLost, Lease: old, Time: time.Now()})
}

func (n *Net) markStale() {
	n.mu.Lock()
	if !n.leased {
		n.mu.Unlock()
		return
	}
	n.lease.Stale = true
	l := n.lease
	n.mu.Unlock()
	n.events.Publish(Event{Kind: EventLeaseStale, Lease: l, Time: time.Now()})
}

// syncRoutes rebuilds the route table now.
func (n *Net) syncRoutes() {
	n.routeMu.Lock()
	defer n.routeMu.Unlock()
	n.stack.SetRouteTable(n.routeTable())
}

// markRoutes asks maintainRoutes to rebuild the route table: NDP callbacks
// must not call into the stack.
func (n *Net) markRoutes() {
	select {
	case n.routesDirty <- struct{}{}:
	default:
	}
}

func (n *Net) maintainRoutes() {
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.routesDirty:
			n.syncRoutes()
			n.mu.Lock()
			pending := n.pending
			n.pending = nil
			n.mu.Unlock()
			for _, ev := range pending {
				n.events.Publish(ev)
			}
		}
	}
}

// routeTable lists the routes, most specific first: gVisor takes the first
// route that matches, not the longest prefix.
func (n *Net) routeTable() []tcpip.Route {
	n.mu.Lock()
	defer n.mu.Unlock()
	// The limited broadcast address, for DHCP before and after a lease.
	bcast := tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4([4]byte{255, 255, 255, 255}), PrefixLen: 32}
	on := []tcpip.Route{{Destination: bcast.Subnet(), NIC: nicID}}
	var off []tcpip.Route
	if n.leased {
		addr := tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4(n.lease.Addr.Addr().As4()), PrefixLen: n.lease.Addr.Bits()}
		on = append(on, tcpip.Route{Destination: addr.Subnet(), NIC: nicID})
		if n.lease.Router.IsValid() {
			off = append(off, tcpip.Route{Destination: header.IPv4EmptySubnet, Gateway: tcpip.AddrFrom4(n.lease.Router.As4()), NIC: nicID})
		}
	}
	for _, r := range n.routes6 {
		if r.Destination.Prefix() == 0 {
			off = append(off, r)
		} else {
			on = append(on, r)
		}
	}
	return append(on, off...)
}

// runDHCP keeps an IPv4 lease: it obtains one once the link is up, renews
// it at T1, rebinds at T2, drops it at expiry, marks it stale while the
// link is down and re-confirms it (INIT-REBOOT) when the link comes back.
func (n *Net) runDHCP() {
	for n.ctx.Err() == nil {
		lease, ok := n.Lease()
		if !ok {
			if !n.awaitLink() {
				return
			}
			n.dhcp.unconfigured(true)
			l, err := n.dhcp.discover(n.ctx)
			if err != nil {
				if n.ctx.Err() == nil {
					n.log.Warn("dhcp", "err", err)
				}
				continue
			}
			if n.dhcp.inUse(n.ctx, l.Addr.Addr()) {
				n.log.Warn("dhcp: offered address is in use, declining", "addr", l.Addr)
				n.dhcp.decline(l)
				continue
			}
			n.apply(l)
			continue
		}
		n.bound(lease)
	}
}

// bound waits in the BOUND state until something needs doing.
func (n *Net) bound(l Lease) {
	t1 := time.NewTimer(time.Until(l.Start.Add(l.T1)))
	defer t1.Stop()
	select {
	case <-n.ctx.Done():
	case ev := <-n.linkEvents:
		if !ev.Up {
			n.markStale()
			n.awaitLinkUp(l)
		}
	case <-t1.C:
		n.renew(l)
	}
}

// awaitLink waits until the link is up; false when the Net closes first.
func (n *Net) awaitLink() bool {
	for !n.link.Up() {
		select {
		case <-n.ctx.Done():
			return false
		case <-n.linkEvents:
		}
	}
	return true
}

// awaitLinkUp waits for the link and re-confirms the lease.
func (n *Net) awaitLinkUp(l Lease) {
	expire := time.NewTimer(time.Until(l.Expires()))
	defer expire.Stop()
	for !n.link.Up() {
		select {
		case <-n.ctx.Done():
			return
		case <-n.linkEvents:
		case <-expire.C:
			n.drop("lease expired while the link was down")
			return
		}
	}
	ctx, cancel := context.WithTimeout(n.ctx, n.opts.DHCPTimeout)
	defer cancel()
	fresh, err := n.dhcp.reboot(ctx, l.Addr.Addr())
	switch {
	case err == nil:
		n.apply(fresh)
	case errors.Is(err, errNAK):
		n.drop("the server refused the address after the link came back (another network)")
	case n.ctx.Err() == nil:
		// No server answered: keep the address until T1 as RFC 2131 allows.
		n.log.Warn("dhcp: lease not re-confirmed, keeping it", "err", err)
		n.mu.Lock()
		n.lease.Stale = false
		n.mu.Unlock()
	}
}

// renew runs RENEWING until T2, then REBINDING until expiry.
func (n *Net) renew(l Lease) {
	for _, phase := range []struct {
		until  time.Time
		rebind bool
	}{{l.Start.Add(l.T2), false}, {l.Expires(), true}} {
		ctx, cancel := context.WithDeadline(n.ctx, phase.until)
		fresh, err := n.dhcp.renew(ctx, l, phase.rebind)
		cancel()
		switch {
		case err == nil:
			n.apply(fresh)
			return
		case errors.Is(err, errNAK):
			n.drop("the server refused to renew the lease")
			return
		case n.ctx.Err() != nil:
			return
		}
	}
	n.drop("lease expired")
}
