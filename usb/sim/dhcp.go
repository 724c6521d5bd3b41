package sim

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// dhcpServer hands out addresses of the tethering subnet, as a phone's
// dnsmasq does: router and DNS server are the phone.
type dhcpServer struct {
	mu       sync.Mutex
	cfg      Config
	conn     net.PacketConn
	leases   map[string]netip.Addr // by client MAC
	declined map[netip.Addr]bool   // reported in use by a client
}

func newDHCPServer(cfg Config, conn net.PacketConn) *dhcpServer {
	return &dhcpServer{cfg: cfg, conn: conn, leases: map[string]netip.Addr{}, declined: map[netip.Addr]bool{}}
}

func (d *dhcpServer) serve() {
	buf := make([]byte, 1500)
	for {
		n, _, err := d.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		req, err := dhcpv4.FromBytes(buf[:n])
		if err != nil || req.OpCode != dhcpv4.OpcodeBootRequest {
			continue
		}
		if reply := d.handle(req); reply != nil {
			dst := &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}
			if !req.ClientIPAddr.IsUnspecified() && !req.IsBroadcast() {
				dst.IP = req.ClientIPAddr
			}
			d.conn.WriteTo(reply.ToBytes(), dst)
		}
	}
}

func (d *dhcpServer) handle(req *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	d.mu.Lock()
	defer d.mu.Unlock()
	mac := req.ClientHWAddr.String()
	switch req.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		return d.reply(req, dhcpv4.MessageTypeOffer, d.leaseFor(mac))
	case dhcpv4.MessageTypeRequest:
		want := req.RequestedIPAddress()
		if want == nil || want.IsUnspecified() {
			want = req.ClientIPAddr // renewing or rebinding
		}
		if sid := req.ServerIdentifier(); sid != nil && !sid.Equal(d.cfg.PhoneAddr.AsSlice()) {
			return nil // the client chose another server
		}
		addr, ok := netip.AddrFromSlice(want.To4())
		if !ok || !d.cfg.Subnet.Contains(addr) || addr == d.cfg.PhoneAddr || d.takenByOther(addr, mac) {
			return d.reply(req, dhcpv4.MessageTypeNak, netip.Addr{})
		}
		d.leases[mac] = addr
		return d.reply(req, dhcpv4.MessageTypeAck, addr)
	case dhcpv4.MessageTypeDecline:
		if a, ok := netip.AddrFromSlice(req.RequestedIPAddress().To4()); ok {
			d.declined[a] = true
		}
		delete(d.leases, mac)
	case dhcpv4.MessageTypeRelease:
		delete(d.leases, mac)
	}
	return nil
}

// leaseFor returns the client's address, or the first free one from .100.
func (d *dhcpServer) leaseFor(mac string) netip.Addr {
	if a, ok := d.leases[mac]; ok {
		return a
	}
	a := d.cfg.Subnet.Masked().Addr()
	for range 100 {
		a = a.Next()
	}
	for d.cfg.Subnet.Contains(a) && (a == d.cfg.PhoneAddr || d.takenByOther(a, mac)) {
		a = a.Next()
	}
	return a
}

func (d *dhcpServer) takenByOther(a netip.Addr, mac string) bool {
	if d.declined[a] {
		return true
	}
	for m, l := range d.leases {
		if l == a && m != mac {
			return true
		}
	}
	return false
}

func (d *dhcpServer) reply(req *dhcpv4.DHCPv4, t dhcpv4.MessageType, yours netip.Addr) *dhcpv4.DHCPv4 {
	phone := net.IP(d.cfg.PhoneAddr.AsSlice())
	mods := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(t),
		dhcpv4.WithServerIP(phone),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(phone)),
	}
	if t != dhcpv4.MessageTypeNak {
		lease := d.cfg.LeaseTime
		mods = append(mods,
			dhcpv4.WithYourIP(yours.AsSlice()),
			dhcpv4.WithNetmask(net.CIDRMask(d.cfg.Subnet.Bits(), 32)),
			dhcpv4.WithRouter(phone),
			dhcpv4.WithDNS(phone),
			dhcpv4.WithLeaseTime(uint32(lease/time.Second)),
			dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(lease/2)),
			dhcpv4.WithOption(dhcpv4.OptRebindingTimeValue(lease*7/8)),
			dhcpv4.WithGeneric(dhcpv4.OptionInterfaceMTU, []byte{byte(d.cfg.MTU >> 8), byte(d.cfg.MTU)}),
		)
	}
	reply, err := dhcpv4.NewReplyFromRequest(req, mods...)
	if err != nil {
		return nil
	}
	return reply
}

// renumber moves the server to another network and forgets its leases.
func (d *dhcpServer) renumber(subnet netip.Prefix, phone netip.Addr) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cfg.Subnet, d.cfg.PhoneAddr = subnet, phone
	clear(d.leases)
	clear(d.declined)
}

// Leases returns the addresses the DHCP server has given, by client MAC.
func (p *Phone) Leases() map[string]netip.Addr {
	d := p.services.dhcp
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]netip.Addr, len(d.leases))
	for k, v := range d.leases {
		out[k] = v
	}
	return out
}
