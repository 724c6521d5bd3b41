package service

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
)

// pipeTether connects every dial to a pipe nobody reads, and counts the
// dials that begin once the test has marked the service closed.
type pipeTether struct {
	closed atomic.Bool
	late   atomic.Int32
}

func (p *pipeTether) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if p.closed.Load() {
		p.late.Add(1)
	}
	near, _ := net.Pipe() // a relay writing to it waits until Close ends it
	return near, nil
}

func (p *pipeTether) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return nil, errors.New("no DNS here")
}

// Once Close and Serve have returned, nothing of the service runs any
// more: no handler starts late, whatever Close raced with. Under -race
// this also checks that every goroutine serving a connection is counted
// before Close waits for them.
func TestNothingRunsAfterClose(t *testing.T) {
	const rounds = 200
	for _, kind := range []string{"socks5", "http CONNECT", "forward", "udp forward"} {
		t.Run(kind, func(t *testing.T) {
			tether := &pipeTether{}
			for range rounds {
				tether.closed.Store(false)
				var svc Service
				var addr string
				if kind == "udp forward" {
					pc, err := net.ListenPacket("udp", "127.0.0.1:0")
					if err != nil {
						t.Fatal(err)
					}
					svc, addr = NewUDPForward(pc, tether.DialContext, "10.9.9.9:7", Limits{}, quiet), pc.LocalAddr().String()
				} else {
					svc, addr = startKindUnserved(t, kind, tether)
				}
				done := make(chan error, 1)
				go func() { done <- svc.Serve() }()
				network := "tcp"
				if kind == "udp forward" {
					network = "udp"
				}
				c, err := net.Dial(network, addr)
				if err != nil {
					t.Fatal(err)
				}
				c.Write([]byte(requests[kind]))
				svc.Close()
				if err := <-done; err != nil {
					t.Fatalf("Serve: %v", err)
				}
				tether.closed.Store(true)
				c.Close()
			}
			if n := tether.late.Load(); n > 0 {
				t.Errorf("%d dials began after Close and Serve returned", n)
			}
		})
	}
}

func startKindUnserved(t *testing.T, kind string, tether Tether) (Service, string) {
	t.Helper()
	ln := listen(t)
	switch kind {
	case "socks5":
		return NewSOCKS5(ln, tether, "", "", Limits{}, quiet), ln.Addr().String()
	case "http CONNECT":
		return NewHTTPProxy(ln, tether, Limits{}, quiet), ln.Addr().String()
	}
	return NewTCPForward(ln, tether.DialContext, "10.9.9.9:80", Limits{}, quiet), ln.Addr().String()
}
