package sim

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// Ports of the phone's services on its own address.
const (
	EchoPort = 7
	HTTPPort = 80
)

// HomePage is what GET / on the phone's HTTP server returns.
const HomePage = "hello from the simulated phone\n"

// services are the phone's servers, all on its netstack.
type services struct {
	closers []io.Closer
	wg      sync.WaitGroup
	dhcp    *dhcpServer // nil with Config.NoDHCP
	dns     *dnsServer

	mu    sync.Mutex
	conns map[net.Conn]struct{} // open echo connections, closed with the phone
}

func startServices(p *Phone) (*services, error) {
	s := &services{}
	fail := func(what string, err error) (*services, error) {
		s.close()
		return nil, fmt.Errorf("sim: starting %s: %w", what, err)
	}
	// Every service listens on all the phone's addresses, so that they
	// follow it when it renumbers.
	var addr tcpip.Address
	if !p.cfg.NoDHCP {
		dhcpConn, err := listenUDP(p, addr, 67, true)
		if err != nil {
			return fail("DHCP server", err)
		}
		s.dhcp = newDHCPServer(p.cfg, dhcpConn)
		s.serve(dhcpConn, s.dhcp.serve)
	}

	dnsConn, err := listenUDP(p, addr, 53, false)
	if err != nil {
		return fail("DNS server", err)
	}
	s.dns = newDNSServer(p.cfg)
	s.serve(dnsConn, func() { s.dns.serve(dnsConn) })

	udpEcho, err := listenUDP(p, addr, EchoPort, false)
	if err != nil {
		return fail("UDP echo", err)
	}
	s.serve(udpEcho, func() { echoUDP(udpEcho) })

	tcpEcho, err := gonet.ListenTCP(p.stack, tcpip.FullAddress{NIC: phoneNIC, Addr: addr, Port: EchoPort}, ipv6.ProtocolNumber)
	if err != nil {
		return fail("TCP echo", err)
	}
	s.serve(tcpEcho, func() { s.echoTCP(tcpEcho) })

	web, err := gonet.ListenTCP(p.stack, tcpip.FullAddress{NIC: phoneNIC, Addr: addr, Port: HTTPPort}, ipv6.ProtocolNumber)
	if err != nil {
		return fail("HTTP server", err)
	}
	srv := &http.Server{Handler: webHandler()}
	s.serve(srv, func() { srv.Serve(web) })
	return s, nil
}

func (s *services) serve(c io.Closer, run func()) {
	s.closers = append(s.closers, c)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		run()
	}()
}

func (s *services) close() {
	for _, c := range s.closers {
		c.Close()
	}
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// listenUDP binds a UDP socket on the phone's stack; broadcast lets the
// DHCP server answer clients that have no address yet.
func listenUDP(p *Phone, addr tcpip.Address, port uint16, broadcast bool) (*gonet.UDPConn, error) {
	var wq waiter.Queue
	ep, terr := p.stack.NewEndpoint(udp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
	if terr != nil {
		return nil, errors.New(terr.String())
	}
	ep.SocketOptions().SetBroadcast(broadcast)
	if terr := ep.Bind(tcpip.FullAddress{NIC: phoneNIC, Addr: addr, Port: port}); terr != nil {
		ep.Close()
		return nil, fmt.Errorf("binding port %d: %s", port, terr)
	}
	return gonet.NewUDPConn(&wq, ep), nil
}

func echoUDP(c *gonet.UDPConn) {
	buf := make([]byte, 65536)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		c.WriteTo(buf[:n], from)
	}
}

func (s *services) echoTCP(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.conns == nil {
			s.conns = map[net.Conn]struct{}{}
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			echo(c)
			c.Close()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// echo writes back what it reads, and reads on, without bound, while a
// write waits. An echo that stopped reading while its write waited would let
// its receive window close, and gVisor, unlike Linux, ignores the ACK in a
// data segment at RCV.NXT while its window is zero: after a loss in both
// directions the host's retransmission, carrying the ACK the write waits
// for, is refused, and both sides wait for ever (a bounded queue only
// postpones it: it fills while the write waits for a retransmission). What
// is queued is bounded by what the client sends before reading the echo.
func echo(c net.Conn) {
	var (
		mu     sync.Mutex
		ready  = sync.NewCond(&mu)
		queue  [][]byte
		closed bool // the reader is done
	)
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := c.Read(buf)
			mu.Lock()
			if n > 0 {
				queue = append(queue, bytes.Clone(buf[:n]))
			}
			closed = err != nil
			ready.Signal()
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	for {
		mu.Lock()
		for len(queue) == 0 && !closed {
			ready.Wait()
		}
		if len(queue) == 0 {
			mu.Unlock()
			return
		}
		b := queue[0]
		queue[0], queue = nil, queue[1:]
		mu.Unlock()
		if _, err := c.Write(b); err != nil {
			c.Close() // ends the reader's Read
			mu.Lock()
			for !closed {
				ready.Wait()
			}
			mu.Unlock()
			return
		}
	}
}

// webHandler serves the phone's pages:
//
//	GET /            HomePage
//	GET /bytes/N     N bytes of a repeating pattern (see Pattern)
//	POST /sha256     the hex SHA-256 of the request body
func webHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, HomePage)
	})
	mux.HandleFunc("GET /bytes/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(r.PathValue("n"), 10, 64)
		if err != nil || n < 0 || n > 1<<34 {
			http.Error(w, "bad length", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		io.Copy(w, io.LimitReader(Pattern(), n))
	})
	mux.HandleFunc("POST /sha256", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		if _, err := io.Copy(h, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		io.WriteString(w, hex.EncodeToString(h.Sum(nil)))
	})
	return mux
}

// Pattern returns an endless reader of the bytes /bytes/N serves: 0, 1, …,
// 250, 0, 1, … (a prime period, so that a shifted copy does not match).
func Pattern() io.Reader { return &pattern{} }

type pattern struct{ i int }

func (p *pattern) Read(b []byte) (int, error) {
	for j := range b {
		b[j] = byte(p.i)
		p.i = (p.i + 1) % 251
	}
	return len(b), nil
}
