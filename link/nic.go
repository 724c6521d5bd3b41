package link

import (
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// BindNIC makes the NIC id of s follow the link. The NIC stays enabled
// through a link-down, as an interface keeps its addresses when its
// carrier goes: addresses (SLAAC ones too) and routes stay, and what the
// stack sends waits in the link's transmit queue until the link is back,
// so that TCP rides out a short outage as a delay. (Stack.DisableNIC would
// fail those sends, and the segments lost with them are the newest of
// TCP's flight, from which gVisor's RACK recovers only slowly.) On
// link-up the neighbour tables are cleared, as DisableNIC cleared them:
// the device may come back with another MAC address. It returns a function
// that undoes the binding.
func (l *Link) BindNIC(s *stack.Stack, id tcpip.NICID) (unbind func()) {
	return l.Subscribe(func(ev Event) {
		if !ev.Up {
			return
		}
		for _, proto := range []tcpip.NetworkProtocolNumber{header.IPv4ProtocolNumber, header.IPv6ProtocolNumber} {
			s.ClearNeighbors(id, proto) // fails only for a protocol the stack lacks
		}
	})
}
