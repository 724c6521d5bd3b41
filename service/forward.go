package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Dialer opens the far side of a forward.
type Dialer func(ctx context.Context, network, address string) (net.Conn, error)

// TCPForward accepts connections on a listener and connects each to a
// fixed address with dial: a forward (host listener, tether dial) or an
// expose (tether listener, host dial).
type TCPForward struct {
	ln      net.Listener
	dial    Dialer
	connect string
	lim     Limits
	log     *slog.Logger
	stats   Stats
	conns   *conns
}

// NewTCPForward returns a forward from ln to connect.
func NewTCPForward(ln net.Listener, dial Dialer, connect string, lim Limits, log *slog.Logger) *TCPForward {
	f := &TCPForward{dial: dial, connect: connect, lim: lim.withDefaults(), log: log, conns: newConns()}
	f.ln = f.lim.listener(ln, &f.stats)
	return f
}

func (f *TCPForward) Serve() error {
	return acceptLoop(f.ln, f.conns, func(c net.Conn) {
		far, early, err := f.conns.dialWatching(c, c, false, f.dial, f.lim.ConnectTimeout, "tcp", f.connect)
		if err != nil {
			if !uncounted(err) {
				f.stats.Failed.Add(1)
			}
			logErr(f.log, "forward: dial", err, "to", f.connect)
			return
		}
		if !f.conns.add(far) {
			return
		}
		defer f.conns.remove(far)
		splice(withEarly(c, early, c), far, &f.stats)
	})
}

// acceptLoop accepts connections until ln is closed and serves each with
// handle on a goroutine of its own, tracked in cs; the connection is closed
// when handle returns.
func acceptLoop(ln net.Listener, cs *conns, handle func(net.Conn)) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || cs.isClosed() {
				return nil
			}
			return err
		}
		cs.serve(c, func() {
			defer c.Close()
			handle(c)
		})
	}
}

func (f *TCPForward) Close() error {
	err := f.ln.Close()
	f.conns.closeAll()
	return err
}

func (f *TCPForward) Stats() *Stats { return &f.stats }

// withEarly is the client side of a relay: c, read through r, after what
// the client sent while its dial was in progress.
func withEarly(c net.Conn, early []byte, r io.Reader) net.Conn {
	if len(early) > 0 {
		r = io.MultiReader(bytes.NewReader(early), r)
	}
	return readerConn{Conn: c, r: r}
}

// udpIdle ends a UDP flow after this long without a datagram.
const udpIdle = 2 * time.Minute

// UDPForward relays datagrams from a packet listener to a fixed address,
// one flow (a far-side socket) per client address, and the replies back.
type UDPForward struct {
	pc      net.PacketConn
	dial    Dialer
	connect string
	lim     Limits
	log     *slog.Logger
	stats   Stats
	conns   *conns

	mu    sync.Mutex
	flows map[string]net.Conn
}

// NewUDPForward returns a UDP forward from pc to connect; it keeps at most
// lim.MaxConnections flows (datagrams of further clients are dropped).
func NewUDPForward(pc net.PacketConn, dial Dialer, connect string, lim Limits, log *slog.Logger) *UDPForward {
	return &UDPForward{pc: pc, dial: dial, connect: connect, lim: lim.withDefaults(), log: log, conns: newConns(),
		flows: map[string]net.Conn{}}
}

func (f *UDPForward) Serve() error {
	buf := make([]byte, 65536)
	for {
		n, from, err := f.pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || f.conns.isClosed() {
				return nil
			}
			return err
		}
		far, err := f.flow(from)
		if err != nil {
			if !uncounted(err) {
				f.stats.Failed.Add(1)
			}
			logErr(f.log, "udp forward: dial", err, "to", f.connect)
			continue
		}
		if _, err := far.Write(buf[:n]); err == nil {
			f.stats.BytesUp.Add(uint64(n))
		}
	}
}

// flow returns the far-side socket of a client, opening it on first use.
func (f *UDPForward) flow(from net.Addr) (net.Conn, error) {
	key := from.String()
	f.mu.Lock()
	far, ok := f.flows[key]
	full := len(f.flows) >= f.lim.MaxConnections
	f.mu.Unlock()
	if ok {
		return far, nil
	}
	if full {
		return nil, fmt.Errorf("%d flows already: the limit", f.lim.MaxConnections)
	}
	far, err := f.conns.dial(context.Background(), f.dial, f.lim.ConnectTimeout, "udp", f.connect)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.flows[key] = far
	f.mu.Unlock()
	if !f.conns.serve(far, func() { f.relayBack(key, far, from) }) {
		f.forget(key)
		return nil, net.ErrClosed
	}
	return far, nil
}

// relayBack sends the far side's datagrams to the client until the flow
// has been idle for udpIdle or the forward closes.
func (f *UDPForward) relayBack(key string, far net.Conn, to net.Addr) {
	f.stats.Total.Add(1)
	f.stats.Active.Add(1)
	defer f.stats.Active.Add(-1)
	defer far.Close()
	defer f.forget(key)
	buf := make([]byte, 65536)
	for {
		far.SetReadDeadline(time.Now().Add(udpIdle))
		n, err := far.Read(buf)
		if err != nil {
			return
		}
		if _, err := f.pc.WriteTo(buf[:n], to); err == nil {
			f.stats.BytesDown.Add(uint64(n))
		}
	}
}

func (f *UDPForward) forget(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.flows, key)
}

func (f *UDPForward) Close() error {
	err := f.pc.Close()
	f.conns.closeAll()
	return err
}

func (f *UDPForward) Stats() *Stats { return &f.stats }
