package stack

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"

	"github.com/rndis-netd/rndis-netd/link"
	"github.com/rndis-netd/rndis-netd/usb"
	"github.com/rndis-netd/rndis-netd/usb/sim"
)

func fastLink() link.Options {
	return link.Options{KeepAliveInterval: 300 * time.Millisecond, ControlTimeout: 500 * time.Millisecond,
		PollInterval: 20 * time.Millisecond, RetryMin: 10 * time.Millisecond, RetryMax: 200 * time.Millisecond}
}

// newPhone starts a simulated phone that stops with the test.
func newPhone(t *testing.T, cfg sim.Config) *sim.Phone {
	t.Helper()
	phone, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(phone.Close)
	return phone
}

type fixture struct {
	phone  *sim.Phone
	net    *Net
	events chan Event
}

func open(t *testing.T, cfg sim.Config, mod func(*Options)) *fixture {
	t.Helper()
	phone := newPhone(t, cfg)
	opts := Options{Device: phone, Link: fastLink(), DHCPRetry: 200 * time.Millisecond, DHCPTimeout: 10 * time.Second}
	if mod != nil {
		mod(&opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{phone: phone, net: n, events: make(chan Event, 1000)}
	n.Subscribe(func(ev Event) { f.events <- ev })
	t.Cleanup(func() { n.Close() })
	return f
}

// waitEvent returns the next event of one of the kinds, skipping others.
func (f *fixture) waitEvent(t *testing.T, within time.Duration, kinds ...EventKind) Event {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case ev := <-f.events:
			for _, k := range kinds {
				if ev.Kind == k {
					return ev
				}
			}
		case <-timeout:
			t.Fatalf("no %v event within %v", kinds, within)
		}
	}
}

func get(t *testing.T, n *Net, url string) string {
	t.Helper()
	resp, err := n.HTTPClient().Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func echo(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
		t.Fatalf("echo = %q, %v", buf, err)
	}
}

func TestDHCPLeaseDefaultRouteAndDNS(t *testing.T) {
	f := open(t, sim.Qualcomm(), nil)
	cfg := f.phone.Config()
	l, ok := f.net.Lease()
	if !ok || !cfg.Subnet.Contains(l.Addr.Addr()) || l.Addr.Bits() != 24 || l.Router != cfg.PhoneAddr ||
		len(l.DNS) != 1 || l.DNS[0] != cfg.PhoneAddr || l.MTU != cfg.MTU || l.Server != cfg.PhoneAddr {
		t.Fatalf("lease %+v", l)
	}
	if got := f.phone.Leases()[f.net.Link().MAC().String()]; got != l.Addr.Addr() {
		t.Errorf("the phone leased %v, the host has %v", got, l.Addr)
	}
	if page := get(t, f.net, "http://"+sim.PhoneName+"/"); page != sim.HomePage {
		t.Errorf("GET http://%s/ = %q", sim.PhoneName, page)
	}
	// Through the default route: an address outside the subnet goes to the phone,
	// which has no such host; what matters is that the stack finds a route.
	c, err := f.net.DialContext(context.Background(), "tcp", sim.PhoneName+":7")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echo(t, c, "over the tether")
}

func TestLeaseIsRenewed(t *testing.T) {
	cfg := sim.LinuxGadget()
	cfg.LeaseTime = 4 * time.Second
	f := open(t, cfg, nil)
	first, _ := f.net.Lease()
	ev := f.waitEvent(t, 10*time.Second, EventLease, EventLeaseLost)
	if ev.Kind != EventLease || ev.Lease.Addr != first.Addr || !ev.Lease.Start.After(first.Start) {
		t.Fatalf("after T1: %v, want the same lease renewed", ev)
	}
	if ev.Lease.Start.Sub(first.Start) < first.T1-time.Second {
		t.Errorf("renewed after %v, T1 is %v", ev.Lease.Start.Sub(first.Start), first.T1)
	}
}

func TestSLAACAddressAndIPv6TCP(t *testing.T) {
	f := open(t, sim.Qualcomm(), nil)
	cfg := f.phone.Config()
	// The RA may come before or after Open returns: look at Addrs, then wait for the event.
	slaac := func() bool {
		for _, a := range f.net.Addrs() {
			if cfg.Prefix6.Contains(a.Addr()) {
				return true
			}
		}
		return false
	}
	if !slaac() {
		if ev := f.waitEvent(t, 10*time.Second, EventAddrAdded); !cfg.Prefix6.Contains(ev.Addr.Addr()) {
			ev = f.waitEvent(t, 10*time.Second, EventAddrAdded) // the first may be the link-local one
			if !cfg.Prefix6.Contains(ev.Addr.Addr()) {
				t.Fatalf("SLAAC address %v outside %v", ev.Addr, cfg.Prefix6)
			}
		}
		if !slaac() {
			t.Fatalf("Addrs() = %v has no address of %v", f.net.Addrs(), cfg.Prefix6)
		}
	}
	// The prefix's route is set on the route goroutine, just after the address.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		routed := false
		for _, r := range f.net.Stack().GetRouteTable() {
			routed = routed || r.Destination.Contains(tcpip.AddrFrom16(cfg.PhoneAddr6().As16()))
		}
		if routed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no route to %v: %v", cfg.Prefix6, f.net.Stack().GetRouteTable())
		}
	}
	c, err := f.net.DialContext(context.Background(), "tcp6", netip.AddrPortFrom(cfg.PhoneAddr6(), sim.EchoPort).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echo(t, c, "over IPv6")
	if got := c.LocalAddr().(*net.TCPAddr).IP; !cfg.Prefix6.Contains(netip.MustParseAddr(got.String())) {
		t.Errorf("connection from %v, want the SLAAC address", got)
	}
	// The RA's RDNSS option adds the phone's IPv6 address as a DNS server.
	dns := f.net.DNSServers()
	if len(dns) < 2 || dns[len(dns)-1] != cfg.PhoneAddr6() {
		t.Errorf("DNS servers %v, want the RA's %v among them", dns, cfg.PhoneAddr6())
	}
}

func TestStaticConfiguration(t *testing.T) {
	cfg := sim.LinuxGadget()
	cfg.NoDHCP = true // like an LTE module that serves no DHCP
	f := open(t, cfg, func(o *Options) {
		o.IPv4 = "192.168.42.7/24"
		o.Gateway = cfg.PhoneAddr
		o.DNS = []netip.Addr{cfg.PhoneAddr}
	})
	if l, _ := f.net.Lease(); l.Dynamic || l.Addr != netip.MustParsePrefix("192.168.42.7/24") {
		t.Errorf("lease %+v", l)
	}
	if page := get(t, f.net, "http://"+sim.PhoneName+"/"); page != sim.HomePage {
		t.Errorf("GET = %q", page)
	}
}

func TestNoDHCPAnswer(t *testing.T) {
	cfg := sim.LinuxGadget()
	cfg.NoDHCP = true
	phone := newPhone(t, cfg)
	start := time.Now()
	_, err := Open(context.Background(), Options{Device: phone, Link: fastLink(), DHCPRetry: 100 * time.Millisecond, DHCPTimeout: time.Second})
	if !errors.Is(err, ErrNoDHCP) {
		t.Fatalf("Open = %v, want ErrNoDHCP", err)
	}
	t.Logf("%v after %v", err, time.Since(start).Round(time.Millisecond))
	if got := phone.Stats().HostHalts; got != 1 {
		t.Errorf("the device got %d HALTs after the failed Open, want 1", got)
	}
}

func TestBadOptions(t *testing.T) {
	for _, ipv4 := range []string{"192.168.42.7", "300.1.1.1/24", "fd00::1/64", "192.168.42.7/32", "dhcp4"} {
		if _, err := Open(context.Background(), Options{Device: &nopOpener{}, IPv4: ipv4}); err == nil || !strings.Contains(err.Error(), "IPv4") {
			t.Errorf("IPv4 %q: %v", ipv4, err)
		}
	}
	if _, err := Open(context.Background(), Options{}); err == nil {
		t.Error("Open without a device succeeded")
	}
}

// The lease survives a device HALT: marked stale, re-confirmed once the
// link is back, and a TCP connection opened before keeps working.
func TestLeaseReconfirmedAfterHalt(t *testing.T) {
	f := open(t, sim.Qualcomm(), nil)
	before, _ := f.net.Lease()
	c, err := f.net.DialContext(context.Background(), "tcp", netip.AddrPortFrom(f.phone.Config().PhoneAddr, sim.EchoPort).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echo(t, c, "before")
	f.phone.Halt()
	if ev := f.waitEvent(t, 5*time.Second, EventLeaseStale); ev.Lease.Addr != before.Addr {
		t.Errorf("stale %v", ev)
	}
	ev := f.waitEvent(t, 10*time.Second, EventLease, EventLeaseLost)
	if ev.Kind != EventLease || ev.Lease.Addr != before.Addr || ev.Lease.Stale {
		t.Fatalf("after the halt: %v, want the lease re-confirmed", ev)
	}
	echo(t, c, "after the halt")
}

// When the phone comes back on another network, the old address and routes
// go and the new lease's come.
func TestNewNetworkReplacesTheLease(t *testing.T) {
	f := open(t, sim.Qualcomm(), nil)
	newNet, newPhone := netip.MustParsePrefix("10.42.7.0/24"), netip.MustParseAddr("10.42.7.1")
	if err := f.phone.Renumber(newNet, newPhone); err != nil {
		t.Fatal(err)
	}
	f.phone.Halt()
	lost := f.waitEvent(t, 10*time.Second, EventLeaseLost)
	ev := f.waitEvent(t, 10*time.Second, EventLease)
	if !newNet.Contains(ev.Lease.Addr.Addr()) || ev.Lease.Router != newPhone {
		t.Fatalf("new lease %+v", ev.Lease)
	}
	for _, a := range f.net.Addrs() {
		if a.Addr() == lost.Lease.Addr.Addr() {
			t.Errorf("old address %v still on the NIC", a)
		}
	}
	if page := get(t, f.net, "http://"+sim.PhoneName+"/"); page != sim.HomePage {
		t.Errorf("GET on the new network = %q", page)
	}
}

func TestDialWhileLinkDownFailsFast(t *testing.T) {
	f := open(t, sim.LinuxGadget(), nil)
	f.phone.Unplug()
	f.waitEvent(t, 5*time.Second, EventLeaseStale)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := f.net.DialContext(ctx, "tcp", netip.AddrPortFrom(f.phone.Config().PhoneAddr, 80).String())
	if !errors.Is(err, ErrLinkDown) {
		t.Errorf("dial while unplugged = %v, want ErrLinkDown", err)
	}
	if ctx.Err() != nil {
		t.Error("the dial waited for its deadline")
	}
}

func TestListenOnTheTether(t *testing.T) {
	f := open(t, sim.LinuxGadget(), nil)
	ln, err := f.net.Listen("tcp", ":8080")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.Copy(c, c)
			c.Close()
		}
	}()
	l, _ := f.net.Lease()
	c, err := f.phone.DialTCP(context.Background(), netip.AddrPortFrom(l.Addr.Addr(), 8080))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echo(t, c, "from the phone side")

	pc, err := f.net.ListenPacket("udp", ":5353")
	if err != nil {
		t.Fatal(err)
	}
	pc.Close()
}

// An offered address that answers ARP is declined and another one taken.
func TestOfferedAddressInUseIsDeclined(t *testing.T) {
	cfg := sim.LinuxGadget()
	phone := newPhone(t, cfg)
	taken := netip.MustParseAddr("192.168.42.100") // the first address the phone offers
	if err := phone.ClaimAddress(taken); err != nil {
		t.Fatal(err)
	}
	n, err := Open(context.Background(), Options{Device: phone, Link: fastLink(), DHCPRetry: 200 * time.Millisecond, DHCPTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	l, _ := n.Lease()
	if l.Addr.Addr() == taken || !cfg.Subnet.Contains(l.Addr.Addr()) {
		t.Errorf("lease %v, want an address of %v other than %v", l.Addr, cfg.Subnet, taken)
	}
}

// With Link.WaitForDevice, New returns while the device is not there: the
// network is down, dials fail at once, and it becomes usable when the
// device appears. Without it, the missing device is New's error.
func TestNewWaitsForTheDevice(t *testing.T) {
	phone := newPhone(t, sim.Qualcomm())
	phone.Unplug()
	opts := Options{Device: phone, Link: fastLink(), DHCPRetry: 200 * time.Millisecond}
	if _, err := New(context.Background(), opts); !errors.Is(err, usb.ErrNoDevice) {
		t.Fatalf("New without WaitForDevice = %v, want usb.ErrNoDevice", err)
	}
	opts.Link.WaitForDevice = true
	n, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if ev := n.Link().LastEvent(); n.Link().Up() || ev.Cause != link.CauseNoDevice {
		t.Errorf("link up %v, last event %v; want down: no device", n.Link().Up(), ev)
	}
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := n.Ready(short); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrNoDHCP) || !strings.Contains(err.Error(), "no device") {
		t.Errorf("Ready without the device = %v, want the link's state", err)
	}
	if _, err := n.DialContext(context.Background(), "tcp", netip.AddrPortFrom(phone.Config().PhoneAddr, sim.EchoPort).String()); !errors.Is(err, ErrLinkDown) {
		t.Errorf("dial without the device = %v, want ErrLinkDown", err)
	}
	phone.Replug()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Ready(ctx); err != nil {
		t.Fatalf("Ready after the device appeared: %v", err)
	}
	if l, _ := n.Lease(); !phone.Config().Subnet.Contains(l.Addr.Addr()) {
		t.Errorf("lease %v", l.Addr)
	}
	if page := get(t, n, "http://"+sim.PhoneName+"/"); page != sim.HomePage {
		t.Errorf("GET = %q", page)
	}
}
