package stack

import (
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
)

// solicitRouters sends an ICMPv6 router solicitation (RFC 4861 §6.3.7) on
// the tether, so that the phone's router advertisement, and with it a
// prefix that changed while the link was down, comes at once. gVisor
// solicits routers only when a NIC is enabled, and the link keeps the NIC
// enabled through a link-down (link.BindNIC says why). The solicitation is
// sent from the NIC's link-local address, with this host's link-layer
// address, or from the unspecified address without it.
func (n *Net) solicitRouters() {
	src := header.IPv6Any
	for _, a := range n.stack.NICInfo()[nicID].ProtocolAddresses {
		if a.Protocol == ipv6.ProtocolNumber && header.IsV6LinkLocalUnicastAddress(a.AddressWithPrefix.Address) {
			src = a.AddressWithPrefix.Address
			break
		}
	}
	var opts header.NDPOptionsSerializer
	if src != header.IPv6Any {
		opts = header.NDPOptionsSerializer{header.NDPSourceLinkLayerAddressOption(tcpip.LinkAddress(n.link.MAC()))}
	}
	dst := header.IPv6AllRoutersLinkLocalMulticastAddress
	icmpLen := header.ICMPv6HeaderSize + header.NDPRSMinimumSize + opts.Length()
	b := make([]byte, header.IPv6MinimumSize+icmpLen)
	header.IPv6(b).Encode(&header.IPv6Fields{
		PayloadLength:     uint16(icmpLen),
		TransportProtocol: header.ICMPv6ProtocolNumber,
		HopLimit:          header.NDPHopLimit,
		SrcAddr:           src,
		DstAddr:           dst,
	})
	icmp := header.ICMPv6(b[header.IPv6MinimumSize:])
	icmp.SetType(header.ICMPv6RouterSolicit)
	header.NDPRouterSolicit(icmp.MessageBody()).Options().Serialize(opts)
	icmp.SetChecksum(header.ICMPv6Checksum(header.ICMPv6ChecksumParams{Header: icmp, Src: src, Dst: dst}))
	if err := n.stack.WritePacketToRemote(nicID, header.EthernetAddressFromMulticastIPv6Address(dst), ipv6.ProtocolNumber,
		buffer.MakeWithData(b)); err != nil {
		n.log.Debug("router solicitation", "err", err)
	}
}
