package link

import "sync"

// level is a condition that goroutines can wait for, as a channel that is
// closed while the condition holds: the transmit path waits on it for the
// link to be up.
type level struct {
	mu   sync.Mutex
	on   bool
	when chan struct{} // closed while on
}

func newLevel() *level { return &level{when: make(chan struct{})} }

// set turns the level on or off.
func (v *level) set(on bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch {
	case on && !v.on:
		close(v.when)
	case !on && v.on:
		v.when = make(chan struct{})
	}
	v.on = on
}

// wait returns a channel that is closed once the level is on.
func (v *level) wait() <-chan struct{} {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.when
}
