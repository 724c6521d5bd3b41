package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
)

// ErrLinkDown: the tether is down; connections cannot be made until it
// comes back.
var ErrLinkDown = errors.New("stack: link down")

// ErrNoDNS: no DNS server is known (none from DHCP, RAs or the options).
var ErrNoDNS = errors.New("stack: no DNS server")

// DialContext connects to address over the tether, like net.Dialer's: the
// networks are "tcp", "tcp4", "tcp6", "udp", "udp4" and "udp6"; names are
// resolved by the tether's DNS servers, and each address found is tried in
// turn.
func (n *Net) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	op := func(err error) error {
		return &net.OpError{Op: "dial", Net: network, Addr: nil, Err: fmt.Errorf("%s: %w", address, err)}
	}
	family, err := familyOf(network)
	if err != nil {
		return nil, op(err)
	}
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, op(err)
	}
	port, err := net.DefaultResolver.LookupPort(ctx, network, portStr) // numbers, or names of /etc/services
	if err != nil {
		return nil, op(err)
	}
	if !n.link.Up() {
		return nil, op(ErrLinkDown)
	}
	addrs, err := n.lookup(ctx, family, host)
	if err != nil {
		return nil, op(err)
	}
	var errs []error
	for _, a := range addrs {
		c, err := n.dialAddr(ctx, network, netip.AddrPortFrom(a, uint16(port)))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	if !n.link.Up() {
		errs = append(errs, ErrLinkDown)
	}
	return nil, op(errors.Join(errs...))
}

// Dial is DialContext without a context.
func (n *Net) Dial(network, address string) (net.Conn, error) {
	return n.DialContext(context.Background(), network, address)
}

func (n *Net) dialAddr(ctx context.Context, network string, ap netip.AddrPort) (net.Conn, error) {
	full, proto := fullAddress(ap)
	switch network {
	case "tcp", "tcp4", "tcp6":
		return gonet.DialContextTCP(ctx, n.stack, full, proto)
	default:
		return gonet.DialUDP(n.stack, nil, &full, proto)
	}
}

// lookup resolves host, an IP address or a name.
func (n *Net) lookup(ctx context.Context, family, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap()}, nil
	}
	addrs, err := n.LookupNetIP(ctx, family, host)
	if err != nil {
		return nil, err
	}
	// IPv4 first: every tether has it; IPv6 only where the phone routes it.
	var v4, v6 []netip.Addr
	for _, a := range addrs {
		if a = a.Unmap(); a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	return append(v4, v6...), nil
}

func familyOf(network string) (string, error) {
	switch network {
	case "tcp", "udp":
		return "ip", nil
	case "tcp4", "udp4":
		return "ip4", nil
	case "tcp6", "udp6":
		return "ip6", nil
	}
	return "", net.UnknownNetworkError(network)
}

func fullAddress(ap netip.AddrPort) (tcpip.FullAddress, tcpip.NetworkProtocolNumber) {
	a := ap.Addr().Unmap()
	if a.Is4() {
		return tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFrom4(a.As4()), Port: ap.Port()}, ipv4.ProtocolNumber
	}
	return tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFrom16(a.As16()), Port: ap.Port()}, ipv6.ProtocolNumber
}

// listenAddress reads a local address to listen on: ":8080" listens on
// every address of the tether's NIC.
func listenAddress(network, address string) (tcpip.FullAddress, tcpip.NetworkProtocolNumber, error) {
	if _, err := familyOf(network); err != nil {
		return tcpip.FullAddress{}, 0, err
	}
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return tcpip.FullAddress{}, 0, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return tcpip.FullAddress{}, 0, fmt.Errorf("port %q: %w", portStr, err)
	}
	if host == "" {
		proto := ipv6.ProtocolNumber // dual-stack
		if network == "tcp4" || network == "udp4" {
			proto = ipv4.ProtocolNumber
		}
		return tcpip.FullAddress{NIC: nicID, Port: uint16(port)}, proto, nil
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return tcpip.FullAddress{}, 0, fmt.Errorf("listen address %q: an IP address is needed", host)
	}
	full, proto := fullAddress(netip.AddrPortFrom(a, uint16(port)))
	return full, proto, nil
}

// Listen listens for TCP connections from the tether side.
func (n *Net) Listen(network, address string) (net.Listener, error) {
	full, proto, err := listenAddress(network, address)
	if err != nil || network[:3] != "tcp" {
		return nil, &net.OpError{Op: "listen", Net: network, Err: errOr(err, net.UnknownNetworkError(network))}
	}
	return gonet.ListenTCP(n.stack, full, proto)
}

// ListenPacket opens a UDP socket on the tether side.
func (n *Net) ListenPacket(network, address string) (net.PacketConn, error) {
	full, proto, err := listenAddress(network, address)
	if err != nil || network[:3] != "udp" {
		return nil, &net.OpError{Op: "listen", Net: network, Err: errOr(err, net.UnknownNetworkError(network))}
	}
	return gonet.DialUDP(n.stack, &full, nil, proto)
}

func errOr(err, other error) error {
	if err != nil {
		return err
	}
	return other
}

// HTTPClient returns an HTTP client whose connections go over the tether.
func (n *Net) HTTPClient() *http.Client {
	return &http.Client{Transport: n.HTTPTransport(), Timeout: 5 * time.Minute}
}

// HTTPTransport returns an http.Transport dialing over the tether.
func (n *Net) HTTPTransport() *http.Transport {
	return &http.Transport{
		DialContext:           n.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   15 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}
