package stack

import (
	"fmt"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	tcpipstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// TCP buffer ranges: what Tailscale's netstack uses for a single busy
// client (receive up to 8 MiB with auto-tuning, send up to 6 MiB), enough
// for a USB 2.0 or 3.0 tether's bandwidth-delay product.
const (
	tcpRXBufMin, tcpRXBufDef, tcpRXBufMax = 4 << 10, 1 << 20, 8 << 20
	tcpTXBufMin, tcpTXBufDef, tcpTXBufMax = 4 << 10, 1 << 20, 6 << 20
)

// Duplicate address detection of a new IPv4 lease: quicker than RFC 5227's
// 1-2 s, a tether has one other host.
const (
	dadProbes   = 2
	dadInterval = 150 * time.Millisecond
)

// newNetstack returns a gVisor stack with IPv4, IPv6, ARP, ICMP, TCP and
// UDP, tuned as mature embedders tune it:
//   - SACK on and receive-buffer auto-tuning (moderate receive buffer) on,
//     with the buffer ranges above;
//   - loss recovery RACK off (TCPRecovery(0), as Tailscale sets): gVisor's
//     RACK recovers a flight whose tail was lost one or two segments per
//     retransmission timeout, for tens of seconds (its SetPipe ignores
//     RACK's lost marks; a report for google/gvisor is drafted). The link no
//     longer loses what the host sends during a link-down, but a path that
//     loses a whole window beyond the phone still would;
//   - CUBIC congestion control, the default of Linux and of the peers.
//
// ndp receives the IPv6 router discovery and SLAAC callbacks.
func newNetstack(ndp ipv6.NDPDispatcher) (*tcpipstack.Stack, error) {
	s := tcpipstack.New(tcpipstack.Options{
		NetworkProtocols: []tcpipstack.NetworkProtocolFactory{
			ipv4.NewProtocol,
			// ARP probes a leased address before use (RFC 5227); a reply
			// means someone has it and the lease is declined.
			arp.NewProtocolWithOptions(arp.Options{DADConfigs: tcpipstack.DADConfigurations{
				DupAddrDetectTransmits: dadProbes, RetransmitTimer: dadInterval,
			}}),
			ipv6.NewProtocolWithOptions(ipv6.Options{
				NDPConfigs: ipv6.NDPConfigurations{
					HandleRAs:              ipv6.HandlingRAsEnabledWhenForwardingDisabled,
					DiscoverDefaultRouters: true,
					DiscoverOnLinkPrefixes: true,
					AutoGenGlobalAddresses: true,
				},
				AutoGenLinkLocal: true,
				NDPDisp:          ndp,
			}),
		},
		TransportProtocols: []tcpipstack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
		HandleLocal:        true,
	})
	sack := tcpip.TCPSACKEnabled(true)
	moderate := tcpip.TCPModerateReceiveBufferOption(true)
	rx := tcpip.TCPReceiveBufferSizeRangeOption{Min: tcpRXBufMin, Default: tcpRXBufDef, Max: tcpRXBufMax}
	tx := tcpip.TCPSendBufferSizeRangeOption{Min: tcpTXBufMin, Default: tcpTXBufDef, Max: tcpTXBufMax}
	recovery := tcpip.TCPRecovery(0)
	cubic := tcpip.CongestionControlOption("cubic")
	for _, o := range []tcpip.SettableTransportProtocolOption{&sack, &moderate, &rx, &tx, &recovery, &cubic} {
		if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, o); err != nil {
			s.Close()
			return nil, fmt.Errorf("stack: TCP option %T: %s", o, err)
		}
	}
	// Never forward between interfaces: the tether reaches only what is exposed.
	s.SetForwardingDefaultAndAllNICs(ipv4.ProtocolNumber, false)
	s.SetForwardingDefaultAndAllNICs(ipv6.ProtocolNumber, false)
	return s, nil
}
