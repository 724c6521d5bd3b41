package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Why a proxied dial ended without a connection, besides the tether's own
// errors.
var (
	// errConnectTimeout: the destination did not answer within
	// Limits.ConnectTimeout.
	errConnectTimeout = errors.New("connect timeout")
	// errClientGone: the client closed its connection while its dial was
	// in progress.
	errClientGone = errors.New("the client went away")
)

// maxEarlyData bounds what a client may send while its dial is in
// progress; beyond it, TCP's flow control holds the client back.
const maxEarlyData = 64 << 10

// dial connects through d for the service: the dial ends after timeout,
// when ctx ends, or when the service closes.
func (cs *conns) dial(ctx context.Context, d Dialer, timeout time.Duration, network, address string) (net.Conn, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, errConnectTimeout)
	defer cancel()
	stop := context.AfterFunc(cs.ctx, cancel)
	defer stop()
	c, err := d(ctx, network, address)
	if err != nil && context.Cause(ctx) == errConnectTimeout {
		return nil, fmt.Errorf("%w: %s did not answer within %v", errConnectTimeout, address, timeout)
	}
	return c, err
}

// dialWatching is dial for a client connection: it reads what the client
// sends meanwhile from r (the client's reader), and returns it for the
// relay to send first, so that a client that goes away cancels the dial. A
// reset is always a client gone; so is the end of its stream (a close or a
// half-close) when eofIsGone — for a proxy, whose client waits for the
// reply, but not for a forward, whose client may send its request and
// half-close before the dial is through.
func (cs *conns) dialWatching(client net.Conn, r io.Reader, eofIsGone bool, d Dialer, timeout time.Duration, network, address string) (net.Conn, []byte, error) {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	var early []byte
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		var buf [4096]byte
		for len(early) < maxEarlyData {
			n, err := r.Read(buf[:])
			early = append(early, buf[:n]...)
			var ne net.Error
			switch {
			case err == nil:
				continue
			case errors.As(err, &ne) && ne.Timeout(): // the watch is over
			case err == io.EOF && !eofIsGone:
			default:
				cancel(errClientGone)
			}
			return
		}
	}()
	c, err := cs.dial(ctx, d, timeout, network, address)
	client.SetReadDeadline(time.Unix(1, 0)) // ends the watch
	<-watched
	client.SetReadDeadline(time.Time{})
	if err != nil && context.Cause(ctx) == errClientGone {
		err = fmt.Errorf("%w: %w", errClientGone, err)
	}
	return c, early, err
}

// uncounted says whether a failed dial is none of the destination's doing:
// its client went away or the service is closing.
func uncounted(err error) bool {
	return errors.Is(err, errClientGone) || errors.Is(err, context.Canceled)
}
