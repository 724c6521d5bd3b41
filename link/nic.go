package link

import (
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// BindNIC makes the NIC id of s follow the link: DisableNIC on link-down,
// EnableNIC on link-up. Addresses and routes of a disabled NIC survive, so
// TCP connections outlive a short outage (RemoveNIC would end them). It
// returns a function that undoes the binding.
func (l *Link) BindNIC(s *stack.Stack, id tcpip.NICID) (unbind func()) {
	unbind = l.Subscribe(func(ev Event) {
		if ev.Up {
			s.EnableNIC(id)
		} else {
			s.DisableNIC(id)
		}
	})
	if !l.isUp() {
		s.DisableNIC(id)
	}
	return unbind
}
