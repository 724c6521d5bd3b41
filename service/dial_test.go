package service

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// hangingTether is a tether whose destinations never answer: each dial
// waits for its context, and reports it began and how it ended.
type hangingTether struct {
	began chan struct{}
	ended chan error // context.Cause of the dial's context
}

func newHangingTether() *hangingTether {
	return &hangingTether{began: make(chan struct{}, 16), ended: make(chan error, 16)}
}

func (h *hangingTether) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	h.began <- struct{}{}
	<-ctx.Done()
	h.ended <- context.Cause(ctx)
	return nil, fmt.Errorf("dial %s %s: %w", network, address, ctx.Err())
}

func (h *hangingTether) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return nil, fmt.Errorf("no DNS here")
}

// waitDial waits for a dial to begin.
func (h *hangingTether) waitDial(t *testing.T) {
	t.Helper()
	select {
	case <-h.began:
	case <-time.After(10 * time.Second):
		t.Fatal("no dial began")
	}
}

// waitEnd waits for a dial to end and returns why it did.
func (h *hangingTether) waitEnd(t *testing.T) error {
	t.Helper()
	select {
	case err := <-h.ended:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("the dial went on")
		return nil
	}
}

// A client's request through each kind of listener, to 10.9.9.9:80.
var requests = map[string]string{
	"socks5":       "\x05\x01\x00" + "\x05\x01\x00\x01\x0a\x09\x09\x09\x00\x50",
	"http CONNECT": "CONNECT 10.9.9.9:80 HTTP/1.1\r\nHost: 10.9.9.9:80\r\n\r\n",
	"http GET":     "GET http://10.9.9.9/ HTTP/1.1\r\nHost: 10.9.9.9\r\n\r\n",
	"forward":      "",
}

func startKind(t *testing.T, kind string, tether Tether, lim Limits) (Service, string) {
	t.Helper()
	ln := listen(t)
	var svc Service
	switch kind {
	case "socks5":
		svc = NewSOCKS5(ln, tether, "", "", lim, quiet)
	case "http CONNECT", "http GET":
		svc = NewHTTPProxy(ln, tether, lim, quiet)
	case "forward":
		svc = NewTCPForward(ln, tether.DialContext, "10.9.9.9:80", lim, quiet)
	}
	serve(t, svc)
	return svc, ln.Addr().String()
}

func dialKind(t *testing.T, addr, kind string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, requests[kind])
	return c
}

// A destination that does not answer within the connect timeout gets the
// protocol's reply: SOCKS5 "host unreachable" (4), HTTP 504.
func TestConnectTimeoutIsAnswered(t *testing.T) {
	for _, kind := range []string{"socks5", "http CONNECT", "http GET"} {
		t.Run(kind, func(t *testing.T) {
			h := newHangingTether()
			svc, addr := startKind(t, kind, h, Limits{ConnectTimeout: 200 * time.Millisecond})
			c := dialKind(t, addr, kind)
			if kind == "socks5" {
				reply := make([]byte, 2+10)
				if _, err := io.ReadFull(c, reply); err != nil {
					t.Fatal(err)
				}
				if reply[3] != 4 {
					t.Errorf("reply %d, want 4 (host unreachable)", reply[3])
				}
			} else {
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusGatewayTimeout {
					t.Errorf("%s, want 504", resp.Status)
				}
			}
			if err := h.waitEnd(t); err != errConnectTimeout {
				t.Errorf("the dial ended with %v, want the connect timeout", err)
			}
			if got := svc.Stats().Failed.Load(); got != 1 {
				t.Errorf("%d failed connections, want 1", got)
			}
		})
	}
}

// A client that goes away while its dial is in progress cancels it: a
// proxy's client when it closes its connection, a forward's when it resets
// it (a forward's client may half-close after its request).
func TestDialEndsWhenTheClientGoesAway(t *testing.T) {
	for _, kind := range []string{"socks5", "http CONNECT", "http GET", "forward"} {
		t.Run(kind, func(t *testing.T) {
			h := newHangingTether()
			svc, addr := startKind(t, kind, h, Limits{})
			c := dialKind(t, addr, kind)
			h.waitDial(t)
			if kind == "forward" {
				c.(*net.TCPConn).SetLinger(0) // Close resets
			}
			c.Close()
			if err := h.waitEnd(t); err == nil {
				t.Error("the dial's context ended without a cause")
			}
			for deadline := time.Now().Add(10 * time.Second); svc.Stats().Active.Load() != 0; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the connection is still served")
				}
			}
			if got := svc.Stats().Failed.Load(); got != 0 {
				t.Errorf("%d failed connections, want 0: the client gave up, the destination did not fail", got)
			}
		})
	}
}

// Close cancels the dials in progress and returns.
func TestCloseCancelsDials(t *testing.T) {
	for _, kind := range []string{"socks5", "http CONNECT", "http GET", "forward"} {
		t.Run(kind, func(t *testing.T) {
			h := newHangingTether()
			svc, addr := startKind(t, kind, h, Limits{})
			dialKind(t, addr, kind)
			h.waitDial(t)
			closed := make(chan struct{})
			go func() {
				svc.Close()
				close(closed)
			}()
			h.waitEnd(t)
			select {
			case <-closed:
			case <-time.After(10 * time.Second):
				t.Fatal("Close did not return")
			}
		})
	}
}

// What a client sends before its CONNECT is answered reaches the
// destination, first.
func TestEarlyDataIsRelayed(t *testing.T) {
	echo := echoServer(t)
	ln := listen(t)
	serve(t, NewSOCKS5(ln, loopTether{}, "", "", Limits{}, quiet))
	ap := netip.MustParseAddrPort(echo)
	port := ap.Port()
	ip := ap.Addr().As4()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "\x05\x01\x00"+"\x05\x01\x00\x01"+string(ip[:])+string([]byte{byte(port >> 8), byte(port)})+"early")
	reply := make([]byte, 2+10+len("early"))
	if _, err := io.ReadFull(c, reply); err != nil {
		t.Fatal(err)
	}
	if reply[3] != 0 || !strings.HasSuffix(string(reply), "early") {
		t.Errorf("answered %q, want success and the early data echoed", reply)
	}
}

// A forward's client may send its request and half-close before the dial
// is through: the request and the half-close reach the destination.
func TestForwardClientHalfClosesDuringTheDial(t *testing.T) {
	target := listen(t)
	t.Cleanup(func() { target.Close() })
	go func() {
		c, err := target.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		got, _ := io.ReadAll(c) // until the client's half-close
		io.WriteString(c, "got "+string(got))
	}()
	release := make(chan struct{})
	slow := func(ctx context.Context, network, address string) (net.Conn, error) {
		<-release
		return loopTether{}.DialContext(ctx, network, address)
	}
	fwd := listen(t)
	serve(t, NewTCPForward(fwd, slow, target.Addr().String(), Limits{}, quiet))
	c, err := net.Dial("tcp", fwd.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "request")
	c.(*net.TCPConn).CloseWrite()
	close(release)
	if got, err := io.ReadAll(c); err != nil || string(got) != "got request" {
		t.Errorf("answered %q, %v; want \"got request\"", got, err)
	}
}
