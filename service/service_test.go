package service

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/proxy"

	"github.com/rndis-netd/rndis-netd/stack"
)

// loopTether is a Tether over this host's loopback, or a link that is down.
type loopTether struct{ down bool }

func (l loopTether) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if l.down {
		return nil, fmt.Errorf("dial %s: %w", address, stack.ErrLinkDown)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, address)
}
func (l loopTether) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, network, host)
}

var quiet = slog.New(slog.DiscardHandler)

func serve(t *testing.T, svc Service) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- svc.Serve() }()
	t.Cleanup(func() {
		svc.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// echoServer echoes TCP on loopback, as the far side of a tether.
func echoServer(t *testing.T) string {
	ln := listen(t)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

func TestSOCKS5RelaysAndCounts(t *testing.T) {
	echo := echoServer(t)
	ln := listen(t)
	s := NewSOCKS5(ln, loopTether{}, "", "", Limits{}, quiet)
	serve(t, s)
	d, _ := proxy.SOCKS5("tcp", ln.Addr().String(), nil, proxy.Direct)
	c, err := d.Dial("tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "ping")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo %q %v", buf, err)
	}
	c.Close()
	for deadline := time.Now().Add(5 * time.Second); s.Stats().Active.Load() != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("connection still counted active")
		}
	}
	if st := s.Stats(); st.Total.Load() != 1 || st.BytesUp.Load() != 4 || st.BytesDown.Load() != 4 {
		t.Errorf("total %d up %d down %d", st.Total.Load(), st.BytesUp.Load(), st.BytesDown.Load())
	}
}

// While the link is down a SOCKS5 client gets "network unreachable" at once.
func TestSOCKS5LinkDownFailsFast(t *testing.T) {
	ln := listen(t)
	serve(t, NewSOCKS5(ln, loopTether{down: true}, "", "", Limits{}, quiet))
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte{5, 1, 0})                        // greeting: no auth
	c.Write([]byte{5, 1, 0, 1, 10, 0, 0, 1, 0, 80}) // CONNECT 10.0.0.1:80
	reply := make([]byte, 4)
	if _, err := io.ReadFull(c, []byte{0, 0}); err != nil { // method selection
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, reply); err != nil {
		t.Fatal(err)
	}
	if reply[1] != 3 { // network unreachable
		t.Errorf("reply code %d, want 3 (network unreachable)", reply[1])
	}
}

func TestHTTPProxy(t *testing.T) {
	echo := echoServer(t)
	web := listen(t)
	webSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "page "+r.URL.Path) })}
	go webSrv.Serve(web)
	t.Cleanup(func() { webSrv.Close() })
	ln := listen(t)
	serve(t, NewHTTPProxy(ln, loopTether{}, Limits{}, quiet))

	send := func(req string) (*http.Response, *bufio.Reader, net.Conn) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, req)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		return resp, br, c
	}
	resp, br, c := send(fmt.Sprintf("GET http://%s/x HTTP/1.1\r\nHost: %s\r\n\r\n", web.Addr(), web.Addr()))
	body, _ := io.ReadAll(io.LimitReader(br, resp.ContentLength))
	if resp.StatusCode != 200 || string(body) != "page /x" {
		t.Errorf("forwarded GET: %s %q", resp.Status, body)
	}
	c.Close()

	resp, br, c = send(fmt.Sprintf("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", echo, echo))
	if resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %s", resp.Status)
	}
	io.WriteString(c, "tunnel")
	buf := make([]byte, 6)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "tunnel" {
		t.Errorf("tunnel echo %q %v", buf, err)
	}
	c.Close()

	for req, want := range map[string]int{
		"GET /local HTTP/1.1\r\nHost: x\r\n\r\n":                        http.StatusBadRequest,
		"CONNECT nohost HTTP/1.1\r\nHost: nohost\r\n\r\n":               http.StatusBadRequest,
		"CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n":     http.StatusBadGateway,
		"GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n": http.StatusBadGateway,
	} {
		resp, _, c := send(req)
		c.Close()
		if resp.StatusCode != want {
			t.Errorf("%q: %s, want %d", strings.SplitN(req, "\r", 2)[0], resp.Status, want)
		}
	}
}

func TestUDPForward(t *testing.T) {
	far, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer far.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := far.ReadFrom(buf)
			if err != nil {
				return
			}
			far.WriteTo(append([]byte("re:"), buf[:n]...), from)
		}
	}()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := NewUDPForward(pc, loopTether{}.DialContext, far.LocalAddr().String(), Limits{}, quiet)
	serve(t, f)
	for i := range 2 { // two clients, two flows
		c, err := net.Dial("udp", pc.LocalAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "d%d", i)
		buf := make([]byte, 100)
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != fmt.Sprintf("re:d%d", i) {
			t.Errorf("client %d got %q %v", i, buf[:n], err)
		}
		c.Close()
	}
	if got := f.Stats().Total.Load(); got != 2 {
		t.Errorf("%d flows, want 2", got)
	}
}

// A server that half-closes first still gets everything the client sends
// afterwards: the relays pass a half-close on rather than closing.
func TestHalfCloseIsRelayed(t *testing.T) {
	target := listen(t)
	t.Cleanup(func() { target.Close() })
	received := make(chan int64, 2)
	go func() {
		for {
			c, err := target.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.WriteString(c, "hello")
				c.(*net.TCPConn).CloseWrite()
				n, _ := io.Copy(io.Discard, c)
				received <- n
			}()
		}
	}()
	socks, fwd := listen(t), listen(t)
	serve(t, NewSOCKS5(socks, loopTether{}, "", "", Limits{}, quiet))
	serve(t, NewTCPForward(fwd, loopTether{}.DialContext, target.Addr().String(), Limits{}, quiet))
	viaSOCKS5, _ := proxy.SOCKS5("tcp", socks.Addr().String(), nil, proxy.Direct)
	for name, dial := range map[string]func() (net.Conn, error){
		"socks5":  func() (net.Conn, error) { return viaSOCKS5.Dial("tcp", target.Addr().String()) },
		"forward": func() (net.Conn, error) { return net.Dial("tcp", fwd.Addr().String()) },
	} {
		c, err := dial()
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if got, err := io.ReadAll(c); err != nil || string(got) != "hello" {
			t.Fatalf("%s: read %q, %v", name, got, err)
		}
		const upload = 100 << 10
		if _, err := c.Write(make([]byte, upload)); err != nil {
			t.Fatalf("%s: writing after the server's half-close: %v", name, err)
		}
		c.(*net.TCPConn).CloseWrite()
		if n := <-received; n != upload {
			t.Errorf("%s: the server received %d of %d bytes sent after its half-close", name, n, upload)
		}
		c.Close()
	}
}
