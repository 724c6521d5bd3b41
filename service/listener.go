package service

import (
	"net"
	"sync"
)

// limitedListener serves at most max connections at once (more wait in the
// kernel's accept queue) and counts them in st. Unlike x/net's
// LimitListener, its connections keep CloseWrite, so that relays can pass
// a half-close on.
type limitedListener struct {
	net.Listener
	slots     chan struct{}
	st        *Stats
	done      chan struct{}
	closeOnce sync.Once
}

func newLimitedListener(ln net.Listener, max int, st *Stats) *limitedListener {
	return &limitedListener{Listener: ln, slots: make(chan struct{}, max), st: st, done: make(chan struct{})}
}

func (l *limitedListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	l.st.Total.Add(1)
	l.st.Active.Add(1)
	return &limitedConn{Conn: c, l: l}, nil
}

func (l *limitedListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitedConn struct {
	net.Conn
	l    *limitedListener
	once sync.Once
}

// Close frees the connection's slot, after it stopped counting as active:
// Active never exceeds the limit.
func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.st.Active.Add(-1)
		<-c.l.slots
	})
	return err
}

func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(closeWriter); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}
