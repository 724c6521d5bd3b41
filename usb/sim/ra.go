package sim

import (
	"encoding/binary"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// The phone advertises its IPv6 prefix as Android's tethering does: router
// advertisements with a /64 for SLAAC, itself as default router, and
// itself as recursive DNS server. gVisor does not send RAs, so the phone
// builds them.
const (
	raLifetime   = 1800 * time.Second
	raInterval   = 30 * time.Second
	raValid      = 3600 * time.Second
	raPreferred  = 1800 * time.Second
	allNodesMAC  = tcpip.LinkAddress("\x33\x33\x00\x00\x00\x01")
	icmpv6RAType = 134
)

// routerAdvertisement returns an Ethernet frame holding the phone's RA.
func (p *Phone) routerAdvertisement() []byte {
	var ra []byte
	ra = append(ra, icmpv6RAType, 0, 0, 0) // type, code, checksum
	ra = append(ra, 64, 0)                 // cur hop limit, flags
	ra = binary.BigEndian.AppendUint16(ra, uint16(raLifetime/time.Second))
	ra = binary.BigEndian.AppendUint32(ra, 0) // reachable time
	ra = binary.BigEndian.AppendUint32(ra, 0) // retrans timer
	ra = append(ra, 1, 1)                     // source link-layer address, 8 bytes
	ra = append(ra, p.cfg.PhoneMAC...)
	ra = append(ra, 3, 4, byte(p.cfg.Prefix6.Bits()), 0xc0) // prefix information: on-link, autonomous
	ra = binary.BigEndian.AppendUint32(ra, uint32(raValid/time.Second))
	ra = binary.BigEndian.AppendUint32(ra, uint32(raPreferred/time.Second))
	ra = binary.BigEndian.AppendUint32(ra, 0)
	prefix := p.cfg.Prefix6.Masked().Addr().As16()
	ra = append(ra, prefix[:]...)
	ra = append(ra, 25, 3, 0, 0) // RDNSS: the phone
	ra = binary.BigEndian.AppendUint32(ra, uint32(raLifetime/time.Second))
	dns := p.cfg.PhoneAddr6().As16()
	ra = append(ra, dns[:]...)

	src := header.LinkLocalAddr(tcpip.LinkAddress(p.cfg.PhoneMAC))
	dst := header.IPv6AllNodesMulticastAddress
	sum := header.PseudoHeaderChecksum(header.ICMPv6ProtocolNumber, src, dst, uint16(len(ra)))
	binary.BigEndian.PutUint16(ra[2:], ^checksum.Checksum(ra, sum))

	frame := make([]byte, header.EthernetMinimumSize+header.IPv6MinimumSize, header.EthernetMinimumSize+header.IPv6MinimumSize+len(ra))
	header.Ethernet(frame).Encode(&header.EthernetFields{SrcAddr: tcpip.LinkAddress(p.cfg.PhoneMAC), DstAddr: allNodesMAC, Type: header.IPv6ProtocolNumber})
	header.IPv6(frame[header.EthernetMinimumSize:]).Encode(&header.IPv6Fields{
		PayloadLength: uint16(len(ra)), TransportProtocol: header.ICMPv6ProtocolNumber, HopLimit: header.NDPHopLimit,
		SrcAddr: src, DstAddr: dst,
	})
	return append(frame, ra...)
}

// advertise sends an RA now, as the phone does when the host's packet
// filter is set and then every raInterval.
func (p *Phone) advertise() {
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(p.routerAdvertisement())})
	var pkts stack.PacketBufferList
	pkts.PushBack(pkt)
	p.nic.WritePackets(pkts)
	pkts.DecRef()
}

// advertiseSoon makes advertiseLoop send a few RAs now: the host has set its
// packet filter or started the data path.
func (p *Phone) advertiseSoon() {
	select {
	case p.filterSet <- struct{}{}:
	default: // already due
	}
}

// advertiseLoop sends RAs while the phone runs: a few right after the host
// sets its packet filter (its NIC may come up a moment later), then every
// raInterval.
func (p *Phone) advertiseLoop(filterSet <-chan struct{}, done <-chan struct{}) {
	t := time.NewTimer(raInterval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-filterSet:
			for _, d := range []time.Duration{50 * time.Millisecond, 500 * time.Millisecond, 2 * time.Second} {
				select {
				case <-time.After(d):
					p.advertise()
				case <-done:
					return
				}
			}
		case <-t.C:
			p.advertise()
			t.Reset(raInterval)
		}
	}
}
