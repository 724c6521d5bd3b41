package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/things-go/go-socks5"
	"github.com/things-go/go-socks5/bufferpool"
	"github.com/things-go/go-socks5/statute"

	"github.com/rndis-netd/rndis-netd/stack"
)

// SOCKS5 is a SOCKS5 proxy (CONNECT and UDP ASSOCIATE; no authentication or
// username/password) whose egress is the tether. Domain names are resolved
// by the tether's DNS servers, as part of the dial.
type SOCKS5 struct {
	ln    net.Listener
	t     Tether
	lim   Limits
	srv   *socks5.Server
	log   *slog.Logger
	stats Stats
	conns *conns
}

// NewSOCKS5 returns a proxy serving ln; an empty username means no
// authentication.
func NewSOCKS5(ln net.Listener, t Tether, username, password string, lim Limits, log *slog.Logger) *SOCKS5 {
	lim = lim.withDefaults()
	s := &SOCKS5{t: t, lim: lim, log: log, conns: newConns()}
	s.ln = lim.listener(ln, &s.stats)
	opts := []socks5.Option{
		// UDP ASSOCIATE dials through the tether too.
		socks5.WithDial(func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := s.conns.dial(ctx, t.DialContext, lim.ConnectTimeout, network, addr)
			if err != nil {
				if !uncounted(err) {
					s.stats.Failed.Add(1)
				}
				return nil, err
			}
			if !s.conns.add(c) { // so that Close ends relayed flows too
				return nil, net.ErrClosed
			}
			return &trackedConn{Conn: c, onClose: func() { s.conns.remove(c) }}, nil
		}),
		socks5.WithConnectHandle(s.connect),
		// The handshake is over once a request is read.
		socks5.WithAssociateMiddleware(endHandshake),
		socks5.WithBindMiddleware(endHandshake),
		socks5.WithResolver(resolvedByDial{}),
		socks5.WithBufferPool(bufferpool.NewPool(copyBufferSize)),
		socks5.WithLogger(slogAdapter{log}),
	}
	if username != "" {
		opts = append(opts, socks5.WithCredential(socks5.StaticCredentials{username: password}))
	}
	s.srv = socks5.NewServer(opts...)
	return s
}

func (s *SOCKS5) Serve() error {
	return acceptLoop(s.ln, s.conns, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(s.lim.HandshakeTimeout)) // a client that stalls is dropped
		if err := s.srv.ServeConn(c); err != nil {
			logErr(s.log, "socks5", err, "client", c.RemoteAddr())
		}
	})
}

func (s *SOCKS5) Close() error {
	err := s.ln.Close()
	s.conns.closeAll()
	return err
}

func (s *SOCKS5) Stats() *Stats { return &s.stats }

// resolvedByDial leaves a request's domain name to the dial, which
// resolves it with the tether's DNS under the dial's limits (the connect
// timeout, the client's going away, Close) and tries each address found.
type resolvedByDial struct{}

func (resolvedByDial) Resolve(ctx context.Context, name string) (context.Context, net.IP, error) {
	return ctx, nil, nil
}

// slogAdapter gives go-socks5 a logger; what it reports is about clients.
type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Errorf(format string, args ...any) {
	a.log.Debug("socks5: " + fmt.Sprintf(format, args...))
}

// trackedConn calls onClose once when closed.
type trackedConn struct {
	net.Conn
	onClose func()
}

func (c *trackedConn) Close() error {
	if c.onClose != nil {
		c.onClose()
		c.onClose = nil
	}
	return c.Conn.Close()
}

// connect serves CONNECT: the reply names the cause of a failed dial (a
// link down is "network unreachable"), then the connection is relayed.
func (s *SOCKS5) connect(_ context.Context, w io.Writer, req *socks5.Request) error {
	client, ok := w.(net.Conn)
	if !ok {
		return fmt.Errorf("socks5: client is a %T, not a connection", w)
	}
	client.SetDeadline(time.Time{}) // the handshake is over
	target, early, err := s.conns.dialWatching(client, req.Reader, true, s.t.DialContext, s.lim.ConnectTimeout, "tcp", req.DestAddr.String())
	if err != nil {
		if uncounted(err) {
			return fmt.Errorf("connect to %v: %w", req.RawDestAddr, err)
		}
		s.stats.Failed.Add(1)
		socks5.SendReply(w, socksReply(err), nil)
		return fmt.Errorf("connect to %v: %w", req.RawDestAddr, err)
	}
	if !s.conns.add(target) {
		return net.ErrClosed
	}
	defer s.conns.remove(target)
	if err := socks5.SendReply(w, statute.RepSuccess, target.LocalAddr()); err != nil {
		target.Close()
		return err
	}
	// The request's reader holds what the client sent after its request.
	splice(withEarly(client, early, req.Reader), target, &s.stats)
	return nil
}

// socksReply is the reply code of a failed CONNECT (RFC 1928 section 6). A
// destination that did not answer within the connect timeout is "host
// unreachable": "TTL expired" means an IP packet's TTL ran out on the way,
// which is not what happened.
func socksReply(err error) uint8 {
	switch {
	case errors.Is(err, stack.ErrLinkDown):
		return statute.RepNetworkUnreachable
	case errors.Is(err, errConnectTimeout):
		return statute.RepHostUnreachable
	case strings.Contains(err.Error(), "refused"):
		return statute.RepConnectionRefused
	}
	return statute.RepHostUnreachable
}

// endHandshake lifts the handshake deadline from the client's connection.
func endHandshake(_ context.Context, w io.Writer, _ *socks5.Request) error {
	if c, ok := w.(net.Conn); ok {
		c.SetDeadline(time.Time{})
	}
	return nil
}

// readerConn reads from r (a buffered reader over Conn).
type readerConn struct {
	net.Conn
	r io.Reader
}

func (c readerConn) Read(b []byte) (int, error) { return c.r.Read(b) }

func (c readerConn) CloseWrite() error {
	closeWrite(c.Conn)
	return nil
}
