package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	tcpipstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// ErrNoDHCP: no DHCP server answered in time.
var ErrNoDHCP = errors.New("stack: no DHCP answer")

// errNAK: the server refused the address asked for.
var errNAK = errors.New("DHCPNAK")

// dhcpClient runs DHCPv4 (RFC 2131) over the netstack: no raw socket, no
// root. It needs 0.0.0.0 on the NIC to send before it has an address, and
// sets the broadcast flag because gVisor drops unicast replies to an
// address the NIC does not have.
type dhcpClient struct {
	s     *tcpipstack.Stack
	nic   tcpip.NICID
	mac   func() net.HardwareAddr // the link's, known once it is up
	log   *slog.Logger
	retry time.Duration // first retransmission delay; doubles up to 8×
	conn  *gonet.UDPConn
}

var zeroAddr = tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4([4]byte{}), PrefixLen: 0}

func newDHCPClient(s *tcpipstack.Stack, nic tcpip.NICID, mac func() net.HardwareAddr, retry time.Duration, log *slog.Logger) (*dhcpClient, error) {
	var wq waiter.Queue
	ep, terr := s.NewEndpoint(udp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
	if terr != nil {
		return nil, fmt.Errorf("stack: DHCP socket: %s", terr)
	}
	ep.SocketOptions().SetBroadcast(true)
	if terr := ep.Bind(tcpip.FullAddress{NIC: nic, Port: dhcpv4.ClientPort}); terr != nil {
		ep.Close()
		return nil, fmt.Errorf("stack: binding the DHCP client port: %s", terr)
	}
	return &dhcpClient{s: s, nic: nic, mac: mac, log: log, retry: retry, conn: gonet.NewUDPConn(&wq, ep)}, nil
}

func (c *dhcpClient) close() { c.conn.Close() }

// unconfigured lets the NIC send from 0.0.0.0 (while it has no lease).
func (c *dhcpClient) unconfigured(on bool) {
	if on {
		c.s.AddProtocolAddress(c.nic, tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: zeroAddr},
			tcpipstack.AddressProperties{})
	} else {
		c.s.RemoveAddress(c.nic, zeroAddr.Address)
	}
}

// exchange sends m to dst and waits for a reply of one of the wanted types
// with m's transaction ID, retransmitting with exponential backoff until
// ctx ends.
func (c *dhcpClient) exchange(ctx context.Context, m *dhcpv4.DHCPv4, dst netip.Addr, want ...dhcpv4.MessageType) (*dhcpv4.DHCPv4, error) {
	to := &net.UDPAddr{IP: dst.AsSlice(), Port: dhcpv4.ServerPort}
	buf := make([]byte, 1500)
	for delay := c.retry; ; delay = min(2*delay, 8*c.retry) {
		if _, err := c.conn.WriteTo(m.ToBytes(), to); err != nil {
			c.log.Debug("dhcp: send", "type", m.MessageType(), "err", err)
		}
		deadline := time.Now().Add(delay)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		c.conn.SetReadDeadline(deadline)
		for {
			n, _, err := c.conn.ReadFrom(buf)
			if err != nil {
				break // timed out: retransmit
			}
			r, err := dhcpv4.FromBytes(buf[:n])
			if err != nil || r.OpCode != dhcpv4.OpcodeBootReply || r.TransactionID != m.TransactionID {
				continue
			}
			if r.MessageType() == dhcpv4.MessageTypeNak {
				return r, errNAK
			}
			for _, t := range want {
				if r.MessageType() == t {
					return r, nil
				}
			}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}

func (c *dhcpClient) modifiers() []dhcpv4.Modifier {
	return []dhcpv4.Modifier{
		dhcpv4.WithHwAddr(c.mac()),
		dhcpv4.WithBroadcast(true),
		dhcpv4.WithRequestedOptions(dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer,
			dhcpv4.OptionInterfaceMTU, dhcpv4.OptionIPAddressLeaseTime, dhcpv4.OptionRenewTimeValue, dhcpv4.OptionRebindingTimeValue),
	}
}

var broadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// discover runs DISCOVER, OFFER, REQUEST, ACK.
func (c *dhcpClient) discover(ctx context.Context) (Lease, error) {
	d, err := dhcpv4.NewDiscovery(c.mac(), c.modifiers()...)
	if err != nil {
		return Lease{}, err
	}
	offer, err := c.exchange(ctx, d, broadcast, dhcpv4.MessageTypeOffer)
	if err != nil {
		return Lease{}, fmt.Errorf("DHCPDISCOVER: %w", err)
	}
	req, err := dhcpv4.NewRequestFromOffer(offer, c.modifiers()...)
	if err != nil {
		return Lease{}, err
	}
	return c.request(ctx, req, broadcast)
}

// reboot asks to keep addr (INIT-REBOOT), as after the link comes back.
func (c *dhcpClient) reboot(ctx context.Context, addr netip.Addr) (Lease, error) {
	req, err := dhcpv4.New(append(c.modifiers(), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(addr.AsSlice())))...)
	if err != nil {
		return Lease{}, err
	}
	return c.request(ctx, req, broadcast)
}

// renew extends the lease with its server (RENEWING, unicast) or with any
// server (REBINDING, broadcast).
func (c *dhcpClient) renew(ctx context.Context, l Lease, rebind bool) (Lease, error) {
	dst := l.Server
	if rebind || !dst.IsValid() {
		dst = broadcast
	}
	req, err := dhcpv4.New(append(c.modifiers(), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithBroadcast(false), dhcpv4.WithClientIP(l.Addr.Addr().AsSlice()))...)
	if err != nil {
		return Lease{}, err
	}
	return c.request(ctx, req, dst)
}

func (c *dhcpClient) request(ctx context.Context, req *dhcpv4.DHCPv4, dst netip.Addr) (Lease, error) {
	ack, err := c.exchange(ctx, req, dst, dhcpv4.MessageTypeAck)
	if err != nil {
		return Lease{}, fmt.Errorf("DHCPREQUEST: %w", err)
	}
	return leaseFromAck(ack)
}

// release gives the address back (on Close); no answer comes.
func (c *dhcpClient) release(l Lease) {
	m, err := dhcpv4.New(dhcpv4.WithHwAddr(c.mac()), dhcpv4.WithMessageType(dhcpv4.MessageTypeRelease),
		dhcpv4.WithClientIP(l.Addr.Addr().AsSlice()), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(l.Server.AsSlice())))
	if err == nil {
		c.conn.WriteTo(m.ToBytes(), &net.UDPAddr{IP: l.Server.AsSlice(), Port: dhcpv4.ServerPort})
	}
}

// inUse probes the network for addr with ARP (duplicate address detection).
func (c *dhcpClient) inUse(ctx context.Context, addr netip.Addr) bool {
	result := make(chan tcpipstack.DADResult, 1)
	disp, err := c.s.CheckDuplicateAddress(c.nic, ipv4.ProtocolNumber, tcpip.AddrFrom4(addr.As4()),
		func(r tcpipstack.DADResult) { result <- r })
	if err != nil || disp == tcpipstack.DADDisabled {
		return false
	}
	select {
	case r := <-result:
		_, dup := r.(*tcpipstack.DADDupAddrDetected)
		return dup
	case <-ctx.Done():
		return false
	}
}

// decline tells the server the address is in use by someone else.
func (c *dhcpClient) decline(l Lease) {
	m, err := dhcpv4.New(dhcpv4.WithHwAddr(c.mac()), dhcpv4.WithMessageType(dhcpv4.MessageTypeDecline),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(l.Addr.Addr().AsSlice())),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(l.Server.AsSlice())))
	if err == nil {
		c.conn.WriteTo(m.ToBytes(), &net.UDPAddr{IP: broadcast.AsSlice(), Port: dhcpv4.ServerPort})
	}
}

// leaseFromAck reads a DHCPACK, checking what a hostile server controls.
func leaseFromAck(ack *dhcpv4.DHCPv4) (Lease, error) {
	addr, ok := netip.AddrFromSlice(ack.YourIPAddr.To4())
	if !ok || !addr.IsGlobalUnicast() && !addr.IsPrivate() {
		return Lease{}, fmt.Errorf("DHCPACK: unusable address %v", ack.YourIPAddr)
	}
	bits := 24
	if m := ack.SubnetMask(); m != nil {
		if ones, size := m.Size(); size == 32 && ones > 0 && ones < 32 {
			bits = ones
		}
	}
	l := Lease{Addr: netip.PrefixFrom(addr, bits), Start: time.Now(), Dynamic: true}
	if s, ok := netip.AddrFromSlice(ack.ServerIdentifier().To4()); ok {
		l.Server = s
	}
	for _, r := range ack.Router() {
		if a, ok := netip.AddrFromSlice(r.To4()); ok && l.Addr.Masked().Contains(a) {
			l.Router = a
			break
		}
	}
	for _, d := range ack.DNS() {
		if a, ok := netip.AddrFromSlice(d.To4()); ok && !a.IsUnspecified() {
			l.DNS = append(l.DNS, a)
		}
	}
	if v := ack.Options.Get(dhcpv4.OptionInterfaceMTU); len(v) == 2 {
		if mtu := int(v[0])<<8 | int(v[1]); mtu >= 576 {
			l.MTU = mtu
		}
	}
	l.Expiry = ack.IPAddressLeaseTime(time.Hour)
	if l.Expiry < 10*time.Second {
		l.Expiry = 10 * time.Second // a floor against a server asking for a storm of renewals
	}
	l.T1 = ack.IPAddressRenewalTime(l.Expiry / 2)
	l.T2 = ack.IPAddressRebindingTime(l.Expiry * 7 / 8)
	if l.T1 <= 0 || l.T1 > l.Expiry {
		l.T1 = l.Expiry / 2
	}
	if l.T2 <= l.T1 || l.T2 > l.Expiry {
		l.T2 = l.T1 + (l.Expiry-l.T1)*3/4
	}
	return l, nil
}
