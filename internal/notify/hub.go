// Package notify delivers events to subscribers in order, on a goroutine
// of its own, so that a slow subscriber cannot stall the publisher.
package notify

import (
	"maps"
	"slices"
	"sync"
)

// Hub fans events of type T out to subscribers. Each subscriber gets the
// events published after it subscribed, in order; subscribers are called
// in the order they subscribed.
type Hub[T any] struct {
	mu     sync.Mutex
	subs   map[int]subscriber[T]
	next   int
	seq    uint64 // events published so far
	queue  []queued[T]
	wake   chan struct{}
	closed bool
	done   chan struct{}
}

type subscriber[T any] struct {
	fn    func(T)
	since uint64
}

type queued[T any] struct {
	ev  T
	seq uint64
}

// New starts a hub. Close stops it.
func New[T any]() *Hub[T] {
	h := &Hub[T]{subs: map[int]subscriber[T]{}, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go h.run()
	return h
}

// Subscribe calls fn with every event published from now on. It returns a
// function that cancels the subscription.
func (h *Hub[T]) Subscribe(fn func(T)) (cancel func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := h.next
	h.next++
	h.subs[id] = subscriber[T]{fn: fn, since: h.seq}
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.subs, id)
	}
}

// Publish queues ev for every subscriber.
func (h *Hub[T]) Publish(ev T) {
	h.mu.Lock()
	h.seq++
	h.queue = append(h.queue, queued[T]{ev, h.seq})
	h.mu.Unlock()
	h.poke()
}

// Close delivers what is queued and stops the hub.
func (h *Hub[T]) Close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.poke()
	<-h.done
}

func (h *Hub[T]) poke() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

func (h *Hub[T]) run() {
	defer close(h.done)
	for range h.wake {
		for {
			h.mu.Lock()
			if len(h.queue) == 0 {
				closed := h.closed
				h.mu.Unlock()
				if closed {
					return
				}
				break
			}
			q := h.queue[0]
			h.queue = h.queue[1:]
			var fns []func(T)
			for _, id := range slices.Sorted(maps.Keys(h.subs)) {
				if sub := h.subs[id]; sub.since < q.seq {
					fns = append(fns, sub.fn)
				}
			}
			h.mu.Unlock()
			for _, fn := range fns {
				fn(q.ev)
			}
		}
	}
}
