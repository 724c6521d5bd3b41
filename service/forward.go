package service

import (
	"context"
	"errors"
	"fmt"
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
	log     *slog.Logger
	stats   Stats
	conns   conns
}

// NewTCPForward returns a forward from ln to connect.
func NewTCPForward(ln net.Listener, dial Dialer, connect string, lim Limits, log *slog.Logger) *TCPForward {
	f := &TCPForward{dial: dial, connect: connect, log: log}
	f.ln = lim.withDefaults().listener(ln, &f.stats)
	return f
}

// dialTimeout bounds how long a forward waits for its destination.
const dialTimeout = 30 * time.Second

func (f *TCPForward) Serve() error {
	return acceptLoop(f.ln, &f.conns, func(c net.Conn) {
		ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
		far, err := f.dial(ctx, "tcp", f.connect)
		cancel()
		if err != nil {
			f.stats.Failed.Add(1)
			logErr(f.log, "forward: dial", err, "to", f.connect)
			return
		}
		if !f.conns.add(far) {
			return
		}
		defer f.conns.remove(far)
		splice(c, far, &f.stats)
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
		if !cs.add(c) {
			continue
		}
		cs.wg.Add(1)
		go func() {
			defer cs.wg.Done()
			defer cs.remove(c)
			defer c.Close()
			handle(c)
		}()
	}
}

func (f *TCPForward) Close() error {
	err := f.ln.Close()
	f.conns.closeAll()
	return err
}

func (f *TCPForward) Stats() *Stats { return &f.stats }

func (cs *conns) isClosed() bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.closed
}

// udpIdle ends a UDP flow after this long without a datagram.
const udpIdle = 2 * time.Minute

// UDPForward relays datagrams from a packet listener to a fixed address,
// one flow (a far-side socket) per client address, and the replies back.
type UDPForward struct {
	pc       net.PacketConn
	dial     Dialer
	connect  string
	maxFlows int
	log      *slog.Logger
	stats    Stats
	conns    conns

	mu    sync.Mutex
	flows map[string]net.Conn
}

// NewUDPForward returns a UDP forward from pc to connect; it keeps at most
// lim.MaxConnections flows (datagrams of further clients are dropped).
func NewUDPForward(pc net.PacketConn, dial Dialer, connect string, lim Limits, log *slog.Logger) *UDPForward {
	return &UDPForward{pc: pc, dial: dial, connect: connect, maxFlows: lim.withDefaults().MaxConnections, log: log, flows: map[string]net.Conn{}}
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
			f.stats.Failed.Add(1)
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
	full := len(f.flows) >= f.maxFlows
	f.mu.Unlock()
	if ok {
		return far, nil
	}
	if full {
		return nil, fmt.Errorf("%d flows already: the limit", f.maxFlows)
	}
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	far, err := f.dial(ctx, "udp", f.connect)
	if err != nil {
		return nil, err
	}
	if !f.conns.add(far) {
		return nil, net.ErrClosed
	}
	f.mu.Lock()
	f.flows[key] = far
	f.mu.Unlock()
	f.stats.Total.Add(1)
	f.stats.Active.Add(1)
	f.conns.wg.Add(1)
	go func() {
		defer f.conns.wg.Done()
		defer f.stats.Active.Add(-1)
		buf := make([]byte, 65536)
		for {
			far.SetReadDeadline(time.Now().Add(udpIdle))
			n, err := far.Read(buf)
			if err != nil {
				break
			}
			if _, err := f.pc.WriteTo(buf[:n], from); err == nil {
				f.stats.BytesDown.Add(uint64(n))
			}
		}
		f.mu.Lock()
		delete(f.flows, key)
		f.mu.Unlock()
		f.conns.remove(far)
		far.Close()
	}()
	return far, nil
}

func (f *UDPForward) Close() error {
	err := f.pc.Close()
	f.conns.closeAll()
	return err
}

func (f *UDPForward) Stats() *Stats { return &f.stats }
