package link

import (
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// BindNIC makes the NIC id of s follow the link: DisableNIC on link-down,
// EnableNIC on link-up. Addresses and routes of a disabled NIC survive, so
// TCP connections outlive a short outage (RemoveNIC would end them). It
// returns a function that undoes the binding.
//
// Events and BindNIC's own first look at the link take turns under a lock:
// an event raised while BindNIC looks is applied after it, so the NIC never
// stays in a state the link has left.
func (l *Link) BindNIC(s *stack.Stack, id tcpip.NICID) (unbind func()) {
	var mu sync.Mutex
	set := func(up bool) {
		if up {
			s.EnableNIC(id)
		} else {
			s.DisableNIC(id)
		}
	}
	unbind = l.Subscribe(func(ev Event) {
		mu.Lock()
		defer mu.Unlock()
		set(ev.Up)
	})
	mu.Lock()
	defer mu.Unlock()
	if !l.isUp() {
		set(false)
	}
	return unbind
}
