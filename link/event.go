package link

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// Cause says why the link went down or up.
type Cause string

// Causes of link events.
const (
	CauseInitialized      Cause = "initialized"       // up: the device answered INITIALIZE and the filter is set
	CauseReinitialized    Cause = "reinitialized"     // up: after a halt, a failed reset or a replug
	CauseReset            Cause = "reset"             // up: a RESET brought the device back
	CauseMediaConnect     Cause = "media connect"     // up: INDICATE_STATUS MEDIA_CONNECT
	CauseDeviceHalt       Cause = "device halt"       // down: the device sent REMOTE_NDIS_HALT_MSG
	CauseMediaDisconnect  Cause = "media disconnect"  // down: INDICATE_STATUS MEDIA_DISCONNECT
	CauseKeepAliveTimeout Cause = "keepalive timeout" // down: a KEEPALIVE went unanswered or failed
	CauseControlTimeout   Cause = "control timeout"   // down: a control request went unanswered
	CauseDeviceGone       Cause = "device gone"       // down: unplugged
	CauseClosed           Cause = "closed"            // down: Close was called
)

// Event is a change of the link's state.
type Event struct {
	Up    bool
	Cause Cause
	Err   error // what went wrong, for some down events
	Time  time.Time
}

func (e Event) String() string {
	state := "down"
	if e.Up {
		state = "up"
	}
	if e.Err != nil {
		return fmt.Sprintf("link %s: %s: %v", state, e.Cause, e.Err)
	}
	return fmt.Sprintf("link %s: %s", state, e.Cause)
}

// events delivers events to subscribers in order, on a goroutine of its
// own so that a slow subscriber cannot stall the link.
type events struct {
	mu     sync.Mutex
	subs   map[int]subscriber
	next   int
	seq    uint64 // events published so far
	queue  []queued
	wake   chan struct{}
	closed bool
	done   chan struct{}
}

func newEvents() *events {
	e := &events{subs: map[int]subscriber{}, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go e.run()
	return e
}

// subscriber gets the events published after it subscribed.
type subscriber struct {
	fn    func(Event)
	since uint64
}

type queued struct {
	Event
	seq uint64
}

func (e *events) subscribe(fn func(Event)) func() {
	e.mu.Lock()
	defer e.mu.Unlock()
	id := e.next
	e.next++
	e.subs[id] = subscriber{fn: fn, since: e.seq}
	return func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		delete(e.subs, id)
	}
}

func (e *events) publish(ev Event) {
	e.mu.Lock()
	e.seq++
	e.queue = append(e.queue, queued{ev, e.seq})
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// close delivers what is queued and stops.
func (e *events) close() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
	<-e.done
}

func (e *events) run() {
	defer close(e.done)
	for range e.wake {
		for {
			e.mu.Lock()
			if len(e.queue) == 0 {
				closed := e.closed
				e.mu.Unlock()
				if closed {
					return
				}
				break
			}
			ev := e.queue[0]
			e.queue = e.queue[1:]
			ids := slices.Sorted(maps.Keys(e.subs)) // in the order they subscribed
			var fns []func(Event)
			for _, id := range ids {
				if sub := e.subs[id]; sub.since < ev.seq {
					fns = append(fns, sub.fn)
				}
			}
			e.mu.Unlock()
			for _, fn := range fns {
				fn(ev.Event)
			}
		}
	}
}
