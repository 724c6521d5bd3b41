package sim

import (
	"fmt"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"

	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

const (
	phoneNIC tcpip.NICID = 1
	// phoneQueue is how many frames the phone buffers toward the host, like
	// the request queue of a USB device controller driver.
	phoneQueue = 4096
)

func (p *Phone) startStack() error {
	p.stack = stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
	})
	sack := tcpip.TCPSACKEnabled(true)
	p.stack.SetTransportProtocolOption(tcp.ProtocolNumber, &sack)
	// The phone's TCP stands for a real phone's Linux TCP, whose RACK
	// recovers from losing the tail of its flight, as the phone does when it
	// drops its queue on an unplug or a HALT. gVisor's RACK recovers that
	// loss one or two segments per retransmission timeout, so the phone
	// keeps RACK off: what the tests examine is the host's TCP.
	recovery := tcpip.TCPRecovery(0)
	p.stack.SetTransportProtocolOption(tcp.ProtocolNumber, &recovery)
	p.nic = channel.New(phoneQueue, uint32(p.cfg.MTU+header.EthernetMinimumSize), tcpip.LinkAddress(p.cfg.PhoneMAC))
	if err := p.stack.CreateNIC(phoneNIC, ethernet.New(p.nic)); err != nil {
		return fmt.Errorf("sim: creating the phone's NIC: %v", err)
	}
	addr := tcpip.AddrFrom4(p.cfg.PhoneAddr.As4())
	if err := p.stack.AddProtocolAddress(phoneNIC, tcpip.ProtocolAddress{
		Protocol:          ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: addr, PrefixLen: p.cfg.Subnet.Bits()},
	}, stack.AddressProperties{}); err != nil {
		return fmt.Errorf("sim: adding %v: %v", p.cfg.PhoneAddr, err)
	}
	if err := p.stack.AddProtocolAddress(phoneNIC, tcpip.ProtocolAddress{
		Protocol:          ipv6.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFrom16(p.cfg.PhoneAddr6().As16()), PrefixLen: p.cfg.Prefix6.Bits()},
	}, stack.AddressProperties{}); err != nil {
		return fmt.Errorf("sim: adding %v: %v", p.cfg.PhoneAddr6(), err)
	}
	if err := p.stack.AddProtocolAddress(phoneNIC, tcpip.ProtocolAddress{
		Protocol:          ipv6.ProtocolNumber,
		AddressWithPrefix: header.LinkLocalAddr(tcpip.LinkAddress(p.cfg.PhoneMAC)).WithPrefix(),
	}, stack.AddressProperties{}); err != nil {
		return fmt.Errorf("sim: adding the link-local address: %v", err)
	}
	// A tethering phone is the tether's router: router solicitations are
	// addressed to it (gVisor counts them; the advertisements are ra.go's).
	if err := p.stack.JoinGroup(ipv6.ProtocolNumber, phoneNIC, header.IPv6AllRoutersLinkLocalMulticastAddress); err != nil {
		return fmt.Errorf("sim: joining the all-routers group: %v", err)
	}
	// Everything leaves through the tether: the subnet, and the broadcasts
	// of the DHCP server.
	p.stack.SetRouteTable([]tcpip.Route{
		{Destination: header.IPv4EmptySubnet, NIC: phoneNIC},
		{Destination: header.IPv6EmptySubnet, NIC: phoneNIC},
	})
	return nil
}
