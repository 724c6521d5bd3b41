package config

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rndis-netd/rndis-netd/stack"
	"github.com/rndis-netd/rndis-netd/usb"
	"github.com/rndis-netd/rndis-netd/usb/sim"
)

// Validate checks the configuration as a whole and reports every problem.
func (c *Config) Validate() error {
	var v validator
	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", c.Log.Format, "text", "json")
	if _, _, err := c.Device.Parse(); err != nil {
		v.add("device.select", err.Error())
	}
	if _, err := usb.ParseProtocol(c.Device.Protocol); err != nil {
		v.add("device.protocol", fmt.Sprintf("%q: want auto, ncm, rndis or ecm", c.Device.Protocol))
	}
	if _, err := usb.ParseBackend(c.Device.Backend); err != nil {
		v.add("device.backend", fmt.Sprintf("%q: want auto, usbfs or libusb", c.Device.Backend))
	}
	v.network(c.Network)

	host := map[string]string{} // "tcp 127.0.0.1:1080" → key, for duplicates on this host
	tether := map[string]string{}
	v.limits("socks5", c.SOCKS5.Limits)
	v.limits("http_proxy", c.HTTPProxy.Limits)
	if c.SOCKS5.Listen != "" {
		open := v.listener("socks5.listen", "tcp", c.SOCKS5.Listen, host)
		if (c.SOCKS5.Username == "") != (c.SOCKS5.Password == "") {
			v.add("socks5.username", "username and password go together")
		}
		if open && c.SOCKS5.Username == "" && !c.AllowOpenProxy {
			v.add("socks5.listen", fmt.Sprintf("%q is not a loopback address and there is no username: an open proxy (set allow_open_proxy: true if you mean it)", c.SOCKS5.Listen))
		}
	}
	if c.HTTPProxy.Listen != "" {
		if v.listener("http_proxy.listen", "tcp", c.HTTPProxy.Listen, host) && !c.AllowOpenProxy {
			v.add("http_proxy.listen", fmt.Sprintf("%q is not a loopback address and the HTTP proxy has no authentication: an open proxy (set allow_open_proxy: true if you mean it)", c.HTTPProxy.Listen))
		}
	}
	if c.Admin.Listen != "" {
		v.listener("admin.listen", "tcp", c.Admin.Listen, host)
	}
	for i, f := range c.Forwards {
		key := fmt.Sprintf("forwards[%d]", i)
		if v.oneOf(key+".proto", f.Proto, "tcp", "udp") {
			v.listener(key+".listen", f.Proto, f.Listen, host)
		}
		v.hostPort(key+".connect", f.Connect, true)
		v.maxConnections(key+".max_connections", f.MaxConnections, true)
	}
	for i, f := range c.Exposes {
		key := fmt.Sprintf("exposes[%d]", i)
		if v.oneOf(key+".proto", f.Proto, "tcp", "udp") {
			v.listener(key+".listen", f.Proto, f.Listen, tether)
		}
		v.hostPort(key+".connect", f.Connect, true)
		v.maxConnections(key+".max_connections", f.MaxConnections, true)
	}
	if len(v.problems) > 0 {
		return &Error{Problems: v.problems}
	}
	return nil
}

// SimPhone is the simulated phone device.select asks for.
type SimPhone struct {
	Config    sim.Config
	Unplugged bool // start it unplugged (POST /sim/replug plugs it in)
}

// Parse reads device.select: a USB selector, or the simulated phone
// ("sim", then optionally ":PRESET" and ":unplugged").
func (d Device) Parse() (usb.Selector, *SimPhone, error) {
	s := d.Select
	if s == "sim" || strings.HasPrefix(s, "sim:") {
		phone := &SimPhone{Config: sim.Qualcomm()}
		for _, part := range strings.Split(s, ":")[1:] {
			if part == "unplugged" {
				phone.Unplugged = true
				continue
			}
			cfg, ok := sim.Preset(part)
			if !ok {
				return usb.Selector{}, nil, fmt.Errorf("simulated phone preset %q: want one of %s (and :unplugged)", part, strings.Join(sim.PresetNames(), ", "))
			}
			phone.Config = cfg
		}
		return usb.Selector{}, phone, nil
	}
	sel, err := usb.ParseSelector(s)
	if err != nil {
		return sel, nil, fmt.Errorf("%q: want auto, VID:PID, serial=XYZ, path=BUS-PORT[.PORT...], or sim", s)
	}
	// Validate names device.protocol's own problems; here an invalid one is auto.
	sel.Protocol, _ = usb.ParseProtocol(d.Protocol)
	return sel, nil, nil
}

// Ranges of the limits.
const (
	maxMaxConnections = 100_000
	minTimeout        = 100 * time.Millisecond
	maxTimeout        = 10 * time.Minute
)

func (v *validator) limits(section string, l Limits) {
	v.maxConnections(section+".max_connections", l.MaxConnections, false)
	v.timeout(section+".handshake_timeout", l.HandshakeTimeout)
	v.timeout(section+".connect_timeout", l.ConnectTimeout)
}

func (v *validator) timeout(key string, d time.Duration) {
	if d < minTimeout || d > maxTimeout {
		v.add(key, fmt.Sprintf("%v: want %v..%v", d, minTimeout, maxTimeout))
	}
}

// maxConnections checks a connection limit; zero, where allowed, is the default.
func (v *validator) maxConnections(key string, n int, zeroOK bool) {
	if n == 0 && zeroOK {
		return
	}
	if n < 1 || n > maxMaxConnections {
		v.add(key, fmt.Sprintf("%d: want 1..%d", n, maxMaxConnections))
	}
}

type validator struct{ problems []Problem }

func (v *validator) add(key, reason string) { v.problems = append(v.problems, Problem{key, reason}) }

func (v *validator) oneOf(key, value string, allowed ...string) bool {
	if !slices.Contains(allowed, value) {
		v.add(key, fmt.Sprintf("%q: want one of %s", value, strings.Join(allowed, ", ")))
		return false
	}
	return true
}

func (v *validator) network(n Network) {
	static := n.IPv4 != "dhcp"
	var subnet netip.Prefix
	if static {
		p, err := netip.ParsePrefix(n.IPv4)
		if err != nil || !p.Addr().Is4() || p.Bits() == 0 || p.Bits() == 32 {
			v.add("network.ipv4", fmt.Sprintf("%q: want dhcp or an IPv4 address with prefix length, like 192.168.42.5/24", n.IPv4))
		} else {
			subnet = p.Masked()
		}
	}
	v.oneOf("network.ipv6", n.IPv6, "slaac", "off")
	if n.Gateway != "" {
		g, err := netip.ParseAddr(n.Gateway)
		switch {
		case err != nil || !g.Is4():
			v.add("network.gateway", fmt.Sprintf("%q is not an IPv4 address", n.Gateway))
		case !static:
			v.add("network.gateway", "a gateway goes with a static network.ipv4; DHCP gives its own")
		case subnet.IsValid() && !subnet.Contains(g):
			v.add("network.gateway", fmt.Sprintf("%v is not in %v", g, subnet))
		}
	}
	for i, d := range n.DNS {
		if _, err := netip.ParseAddr(d); err != nil {
			v.add(fmt.Sprintf("network.dns[%d]", i), fmt.Sprintf("%q is not an IP address", d))
		}
	}
	if n.MTU != 0 && (n.MTU < 576 || n.MTU > 65535) {
		v.add("network.mtu", fmt.Sprintf("%d: want 0 (the device's) or 576..65535", n.MTU))
	}
	v.oneOf("network.tcp.recovery", n.TCP.Recovery, string(stack.RecoveryOff), string(stack.RecoveryRACK))
	v.oneOf("network.tcp.congestion_control", n.TCP.CongestionControl, stack.CongestionReno, stack.CongestionCubic)
	v.bufferMax("network.tcp.receive_buffer_max", n.TCP.ReceiveBufferMax)
	v.bufferMax("network.tcp.send_buffer_max", n.TCP.SendBufferMax)
}

// bufferMax checks a TCP buffer cap: 0 (the default) or what stack.TCP
// takes.
func (v *validator) bufferMax(key string, n int) {
	if n != 0 && (n < stack.TCPBufferMaxMin || n > stack.TCPBufferMaxLimit) {
		v.add(key, fmt.Sprintf("%d: want 0 (the default) or %d..%d bytes", n, stack.TCPBufferMaxMin, stack.TCPBufferMaxLimit))
	}
}

// StackTCP is the netstack's TCP as n.TCP sets it.
func (n Network) StackTCP() stack.TCP {
	return stack.TCP{
		Recovery:          stack.Recovery(n.TCP.Recovery),
		CongestionControl: n.TCP.CongestionControl,
		ReceiveBufferMax:  n.TCP.ReceiveBufferMax,
		SendBufferMax:     n.TCP.SendBufferMax,
	}
}

// hostPort checks "host:port" with a port in 1..65535; names are allowed
// where they are resolved later.
func (v *validator) hostPort(key, s string, names bool) (host string, ok bool) {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		v.add(key, fmt.Sprintf("%q: want host:port", s))
		return "", false
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		v.add(key, fmt.Sprintf("port %q out of range 1..65535", p))
		return "", false
	}
	if h != "" && !names {
		if _, err := netip.ParseAddr(h); err != nil && h != "localhost" {
			v.add(key, fmt.Sprintf("%q: listen on an IP address (or localhost)", h))
			return "", false
		}
	}
	return h, true
}

// listener checks a listen address and that no other listener has it; it
// reports whether the address is reachable from other hosts.
func (v *validator) listener(key, proto, addr string, seen map[string]string) (nonLoopback bool) {
	host, ok := v.hostPort(key, addr, false)
	if !ok {
		return false
	}
	id := proto + " " + addr
	if other, dup := seen[id]; dup {
		v.add(key, fmt.Sprintf("%s %s is already the listener of %s", proto, addr, other))
	}
	seen[id] = key
	if host == "localhost" {
		return false
	}
	a, err := netip.ParseAddr(host)
	return err != nil || !a.IsLoopback()
}
