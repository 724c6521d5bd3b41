// Package service runs what rndis-netd offers the host: a SOCKS5 proxy, an
// HTTP proxy, TCP and UDP port forwards through the tether, and exposes
// (listeners on the tether that reach services of this host). Egress of
// every proxy and forward goes through the tether only.
package service

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rndis-netd/rndis-netd/stack"
)

// Tether is the network on the phone's side, as package stack provides it:
// the proxies dial and resolve names through it.
type Tether interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

var _ Tether = (*stack.Net)(nil)

var (
	_ Service = (*SOCKS5)(nil)
	_ Service = (*HTTPProxy)(nil)
	_ Service = (*TCPForward)(nil)
	_ Service = (*UDPForward)(nil)
)

// Service is one listener and what it serves.
type Service interface {
	// Serve runs until Close; it returns nil after Close.
	Serve() error
	// Close stops the listener, cancels the dials in progress, ends the
	// connections and waits for every goroutine serving one.
	Close() error
	// Stats returns the connection counters.
	Stats() *Stats
}

// Limits bound what clients can make a listener hold.
type Limits struct {
	// MaxConnections is how many connections a TCP listener serves at once;
	// more wait in the kernel's accept queue. 0: DefaultMaxConnections.
	MaxConnections int
	// HandshakeTimeout is how long a proxy client may take to send its
	// request (SOCKS5 greeting, authentication and request; HTTP headers).
	// 0: DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// ConnectTimeout is how long a dial for a client (a proxy's or a
	// forward's) may take, the name lookup included. 0:
	// DefaultConnectTimeout.
	ConnectTimeout time.Duration
}

// Defaults of Limits.
const (
	DefaultMaxConnections   = 1024
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultConnectTimeout   = 30 * time.Second
)

func (l Limits) withDefaults() Limits {
	if l.MaxConnections <= 0 {
		l.MaxConnections = DefaultMaxConnections
	}
	if l.HandshakeTimeout <= 0 {
		l.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if l.ConnectTimeout <= 0 {
		l.ConnectTimeout = DefaultConnectTimeout
	}
	return l
}

// listener bounds the connections ln serves at once and counts them in st.
func (l Limits) listener(ln net.Listener, st *Stats) net.Listener {
	return newLimitedListener(ln, l.MaxConnections, st)
}

// Stats counts a service's connections (for UDP, its flows).
type Stats struct {
	Total              atomic.Uint64 // accepted
	Active             atomic.Int64
	Failed             atomic.Uint64 // could not reach their destination
	BytesUp, BytesDown atomic.Uint64
}

// copyBufferSize is the buffer of each direction of a relayed connection:
// big enough for throughput, small enough for thousands of connections.
const copyBufferSize = 16 << 10

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}

// copyConn copies src to dst through a pooled buffer (io.Copy would let a
// *net.TCPConn allocate 32 KiB per call), gathering reads from the tether
// into fewer writes to this host's sockets (copyGathering).
func copyConn(dst, src net.Conn) int64 {
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	if gathers(dst, src) {
		return copyGathering(dst, src, *buf)
	}
	n, _ := io.CopyBuffer(onlyWriter{dst}, onlyReader{src}, *buf)
	return n
}

// onlyWriter and onlyReader hide ReadFrom and WriteTo, so that CopyBuffer
// uses the pooled buffer.
type onlyWriter struct{ io.Writer }
type onlyReader struct{ io.Reader }

// splice copies both ways until either side ends, then closes both.
func splice(a, b net.Conn, st *Stats) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		st.BytesUp.Add(uint64(copyConn(b, a)))
		closeWrite(b)
	}()
	st.BytesDown.Add(uint64(copyConn(a, b)))
	closeWrite(a)
	wg.Wait()
	a.Close()
	b.Close()
}

// closeWriter is a connection that can half-close: *net.TCPConn, gVisor's
// gonet.TCPConn, and the wrappers of this package.
type closeWriter interface{ CloseWrite() error }

var (
	_ closeWriter = (*limitedConn)(nil)
	_ closeWriter = readerConn{}
)

func closeWrite(c net.Conn) {
	if cw, ok := c.(closeWriter); ok {
		cw.CloseWrite()
	} else {
		c.Close()
	}
}

// logErr logs at debug level what a client did wrong, which is not the
// daemon's problem.
func logErr(log *slog.Logger, msg string, err error, args ...any) {
	log.Debug(msg, append(args, "err", err)...)
}
