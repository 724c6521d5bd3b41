package stack

import (
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/rndis-netd/rndis-netd/link"
	"github.com/rndis-netd/rndis-netd/usb"
)

// Options say which device to use and how to configure the network.
type Options struct {
	// Device opens the tether: a usb.Host's Opener for a real device, or a
	// *sim.Phone.
	Device usb.Opener
	Link   link.Options

	// IPv4 is "dhcp" (the default) or a static address with its prefix
	// length, "192.168.42.5/24"; Gateway and DNS complete a static
	// configuration and add to a DHCP one.
	IPv4    string
	Gateway netip.Addr
	DNS     []netip.Addr
	// NoIPv6 turns SLAAC off.
	NoIPv6 bool

	// TCP tunes the netstack's TCP; the zero value is the defaults.
	TCP TCP

	DHCPTimeout time.Duration // how long Open waits for a lease; 30 s
	DHCPRetry   time.Duration // first DHCP retransmission delay; doubles to 8×; 2 s

	Logger *slog.Logger
}

func (o *Options) defaults() error {
	if o.Device == nil {
		return fmt.Errorf("stack: Options.Device is nil")
	}
	if o.IPv4 == "" {
		o.IPv4 = "dhcp"
	}
	if o.DHCPTimeout <= 0 {
		o.DHCPTimeout = 30 * time.Second
	}
	if o.DHCPRetry <= 0 {
		o.DHCPRetry = 2 * time.Second
	}
	if err := o.TCP.defaults(); err != nil {
		return err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Link.Logger == nil {
		o.Link.Logger = o.Logger
	}
	return nil
}

// staticLease reads a static IPv4 configuration; ok is false for "dhcp".
func (o *Options) staticLease() (l Lease, ok bool, err error) {
	if o.IPv4 == "dhcp" {
		return Lease{}, false, nil
	}
	p, err := netip.ParsePrefix(o.IPv4)
	if err != nil || !p.Addr().Is4() || p.Bits() == 0 || p.Bits() == 32 {
		return Lease{}, false, fmt.Errorf("stack: IPv4 %q: want \"dhcp\" or an IPv4 address with prefix length, like 192.168.42.5/24", o.IPv4)
	}
	if o.Gateway.IsValid() && !p.Masked().Contains(o.Gateway) {
		return Lease{}, false, fmt.Errorf("stack: gateway %v is not in %v", o.Gateway, p.Masked())
	}
	return Lease{Addr: p, Router: o.Gateway, DNS: o.DNS, Start: time.Now()}, true, nil
}
