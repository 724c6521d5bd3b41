package stack

import (
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	tcpipstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// Duplicate address detection of a new IPv4 lease: quicker than RFC 5227's
// 1-2 s, a tether has one other host.
const (
	dadProbes   = 2
	dadInterval = 150 * time.Millisecond
)

// newNetstack returns a gVisor stack with IPv4, IPv6, ARP, ICMP, TCP and
// UDP, its TCP tuned by tcpOpts (defaults filled in). ndp receives the IPv6
// router discovery and SLAAC callbacks.
func newNetstack(ndp ipv6.NDPDispatcher, tcpOpts TCP) (*tcpipstack.Stack, error) {
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
	if err := tcpOpts.apply(s); err != nil {
		s.Close()
		return nil, err
	}
	// Never forward between interfaces: the tether reaches only what is exposed.
	s.SetForwardingDefaultAndAllNICs(ipv4.ProtocolNumber, false)
	s.SetForwardingDefaultAndAllNICs(ipv6.ProtocolNumber, false)
	return s, nil
}
