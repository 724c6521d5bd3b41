package service

import (
	"bytes"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tight are limits that make misbehaving clients quick to test.
var tight = Limits{MaxConnections: 8, HandshakeTimeout: 300 * time.Millisecond}

// exchange sends what a client sends (then half-closes, unless it keeps
// the connection open like a slow client) and returns everything the
// server answered before it closed the connection.
func exchange(t *testing.T, addr string, send []byte, halfClose bool) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write(send)
	if halfClose {
		c.(*net.TCPConn).CloseWrite()
	}
	got, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) { // closing with input unread resets

		t.Fatalf("the server neither answered nor closed: %v (got %x)", err, got)
	}
	return got
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// Malformed SOCKS5 requests get the protocol's error reply or a close.
func TestSOCKS5MalformedRequests(t *testing.T) {
	open, auth := listen(t), listen(t)
	serve(t, NewSOCKS5(open, loopTether{}, "", "", tight, quiet))
	serve(t, NewSOCKS5(auth, loopTether{}, "alice", "s3cret", tight, quiet))
	noAuth := []byte{5, 1, 0}
	chosen := []byte{5, 0}
	ipv4 := func(cmd, atyp byte) []byte { return []byte{5, cmd, 0, atyp, 127, 0, 0, 1, 0, 80} }
	long := func(c byte) []byte { return bytes.Repeat([]byte{c}, 255) }
	tests := []struct {
		name      string
		server    net.Listener
		send      []byte
		halfClose bool
		want      []byte // the whole answer before the close
	}{
		{"nothing", open, nil, true, nil},
		{"truncated greeting", open, []byte{5}, true, nil},
		{"truncated method list", open, []byte{5, 3, 0}, true, nil},
		{"SOCKS4 request", open, []byte{4, 1, 0, 80, 127, 0, 0, 1, 0}, true, nil},
		{"no acceptable method", open, []byte{5, 1, 0x80}, true, []byte{5, 0xff}},
		{"255 methods, none acceptable", open, cat([]byte{5, 255}, long(0x80)), true, []byte{5, 0xff}},
		{"unknown command", open, cat(noAuth, ipv4(9, 1)), true, cat(chosen, []byte{5, 7, 0, 1, 0, 0, 0, 0, 0, 0})},
		{"unknown address type", open, cat(noAuth, ipv4(1, 9)), true, cat(chosen, []byte{5, 8, 0, 1, 0, 0, 0, 0, 0, 0})},
		{"truncated request", open, cat(noAuth, []byte{5, 1, 0, 1, 127, 0}), true, chosen},
		{"truncated domain", open, cat(noAuth, []byte{5, 1, 0, 3, 200, 'a', 'b'}), true, chosen},
		{"no method the server takes", auth, noAuth, true, []byte{5, 0xff}},
		{"wrong password", auth, cat([]byte{5, 1, 2, 1, 5}, []byte("alice"), []byte{5}, []byte("wrong")), true, []byte{5, 2, 1, 1}},
		{"255-byte credentials", auth, cat([]byte{5, 1, 2, 1, 255}, long('u'), []byte{255}, long('p')), true, []byte{5, 2, 1, 1}},
		{"truncated credentials", auth, []byte{5, 1, 2, 1, 200, 'a'}, true, []byte{5, 2}},
		{"slow greeting", open, []byte{5}, false, nil},
		{"slow request", open, noAuth, false, chosen},
		{"slow credentials", auth, []byte{5, 1, 2, 1, 5, 'a'}, false, []byte{5, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			got := exchange(t, tt.server.Addr().String(), tt.send, tt.halfClose)
			if !bytes.Equal(got, tt.want) {
				t.Errorf("answered %x, want %x", got, tt.want)
			}
			if !tt.halfClose && time.Since(start) > 10*tight.HandshakeTimeout {
				t.Errorf("a stalled client was dropped after %v (handshake timeout %v)", time.Since(start), tight.HandshakeTimeout)
			}
		})
	}
}

// Malformed HTTP proxy requests get an HTTP error or a close.
func TestHTTPProxyMalformedRequests(t *testing.T) {
	ln := listen(t)
	serve(t, NewHTTPProxy(ln, loopTether{}, tight, quiet))
	tests := []struct {
		name      string
		send      string
		halfClose bool
		status    string // the answer's status code
	}{
		{"not HTTP", "HELLO\r\n\r\n", true, "400"},
		{"header over 64 KiB", "GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("a", 100<<10) + "\r\n\r\n", true, "431"},
		{"URI over 64 KiB", "GET http://x/" + strings.Repeat("a", 100<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n", true, "431"},
		{"unsupported scheme", "GET ftp://127.0.0.1/ HTTP/1.1\r\nHost: x\r\n\r\n", true, "400"},
		{"negative Content-Length", "POST http://127.0.0.1:1/ HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", true, "400"},
		{"CONNECT without a port", "CONNECT 127.0.0.1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", true, "400"},
		{"truncated request line", "GET http://", true, "400"},
		{"slow headers", "GET http://127.0.0.1:1/ HTTP/1.1\r\nHost", false, "400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(exchange(t, ln.Addr().String(), []byte(tt.send), tt.halfClose))
			if !strings.HasPrefix(got, "HTTP/1.1 "+tt.status) {
				first, _, _ := strings.Cut(got, "\r\n")
				t.Errorf("answered %q, want %q", first, tt.status)
			}
		})
	}
}

// Stalled clients never hold more than the connection limit, and every one
// is dropped after the handshake timeout, freeing its goroutines.
func TestStalledClientsAreBounded(t *testing.T) {
	for _, kind := range []string{"socks5", "http"} {
		t.Run(kind, func(t *testing.T) {
			ln := listen(t)
			var svc Service
			if kind == "socks5" {
				svc = NewSOCKS5(ln, loopTether{}, "", "", tight, quiet)
			} else {
				svc = NewHTTPProxy(ln, loopTether{}, tight, quiet)
			}
			serve(t, svc)
			before := runtime.NumGoroutine()
			const clients = 40
			conns := make([]net.Conn, clients)
			for i := range conns {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.Write([]byte{5}) // a first byte, and no more
				conns[i] = c
			}
			peak := int64(0)
			closed := make(chan error, clients)
			for _, c := range conns {
				go func() {
					c.SetReadDeadline(time.Now().Add(20 * time.Second))
					_, err := io.Copy(io.Discard, c)
					closed <- err
				}()
			}
			for n := 0; n < clients; {
				select {
				case err := <-closed:
					if err != nil {
						t.Fatalf("a stalled client was not dropped: %v", err)
					}
					n++
				case <-time.After(time.Millisecond):
					peak = max(peak, svc.Stats().Active.Load())
				}
			}
			if peak > int64(tight.MaxConnections) {
				t.Errorf("%d connections served at once, limit %d", peak, tight.MaxConnections)
			}
			for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > before; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("%d goroutines after the stalled clients left, %d before", runtime.NumGoroutine(), before)
				}
			}
			t.Logf("%d stalled clients, at most %d served at once", clients, peak)
		})
	}
}
