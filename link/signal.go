package link

import (
	"slices"
	"sync"
)

// signal is something a session's goroutines tell the supervisor.
type signal struct {
	cause Cause
	err   error
	epoch uint64 // the link state it was seen in; a timeout from an earlier state is stale
}

// signals carries what a session's goroutines raise to the supervisor
// without ever blocking them: the control reader must keep reading while the
// supervisor is busy with a RESET or a re-initialization, which wait for
// the completions it reads. A cause is pending or not (a burst of one cause
// is one signal, its first); the medium is a level the supervisor reads
// when it gets to it.
type signals struct {
	mu      sync.Mutex
	pending []signal // at most one per cause
	wake    chan struct{}
}

func newSignals() *signals { return &signals{wake: make(chan struct{}, 1)} }

func (q *signals) raise(sig signal) {
	q.mu.Lock()
	fresh := true
	for _, p := range q.pending {
		fresh = fresh && p.cause != sig.cause
	}
	if fresh {
		q.pending = append(q.pending, sig)
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take returns the pending signals, most urgent first: a device that is
// gone makes the rest moot, a halt outranks a timeout, and either outranks
// the medium.
func (q *signals) take() []signal {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.pending
	q.pending = nil
	rank := func(c Cause) int {
		switch c {
		case CauseDeviceGone:
			return 0
		case CauseDeviceHalt:
			return 1
		case CauseKeepAliveTimeout:
			return 2
		}
		return 3
	}
	slices.SortStableFunc(out, func(a, b signal) int { return rank(a.cause) - rank(b.cause) })
	return out
}
