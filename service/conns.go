package service

import (
	"context"
	"io"
	"sync"
)

// conns tracks a service's open connections and the goroutines serving
// them, so that Close can end both. Its context, cancelled by closeAll, is
// the lifetime of the service's dials.
type conns struct {
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	set    map[io.Closer]struct{}
	closed bool
	wg     sync.WaitGroup
}

func newConns() *conns {
	ctx, cancel := context.WithCancel(context.Background())
	return &conns{ctx: ctx, cancel: cancel, set: map[io.Closer]struct{}{}}
}

// add registers c; false when the service is closing (c is closed then).
func (cs *conns) add(c io.Closer) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.addLocked(c)
}

func (cs *conns) addLocked(c io.Closer) bool {
	if cs.closed {
		c.Close()
		return false
	}
	cs.set[c] = struct{}{}
	return true
}

// serve registers c and runs fn on a goroutine that closeAll waits for; c
// is forgotten when fn returns. It returns false, and fn does not run,
// when the service is closing (c is closed then). The goroutine is counted
// under the lock closeAll takes, so closeAll's Wait cannot miss it.
func (cs *conns) serve(c io.Closer, fn func()) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if !cs.addLocked(c) {
		return false
	}
	cs.wg.Go(func() {
		defer cs.remove(c)
		fn()
	})
	return true
}

// enter counts the calling goroutine, one the service did not start (as
// net/http's handlers), for closeAll to wait for until leave. It returns
// false, counting nothing, when the service is closing.
func (cs *conns) enter() bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.closed {
		return false
	}
	cs.wg.Add(1)
	return true
}

func (cs *conns) leave() { cs.wg.Done() }

func (cs *conns) remove(c io.Closer) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	delete(cs.set, c)
}

func (cs *conns) isClosed() bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.closed
}

// closeAll cancels the dials, ends every connection and waits for the
// goroutines serving them.
func (cs *conns) closeAll() {
	cs.mu.Lock()
	cs.closed = true
	cs.cancel()
	for c := range cs.set {
		c.Close()
	}
	cs.mu.Unlock()
	cs.wg.Wait()
}
