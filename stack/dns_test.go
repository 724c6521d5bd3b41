package stack

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/rndis-netd/rndis-netd/usb/sim"
)

// deadServer is an address on the simulated phone's subnet where no host
// is: queries sent there are never answered.
var deadServer = netip.MustParseAddr("192.168.42.77")

// answerFunc says how a test's DNS server replies to a question: with
// these addresses (those of the question's type are used), this RCode,
// and truncated or not.
type answerFunc func(q dnsmessage.Question, overUDP bool) (addrs []netip.Addr, rcode dnsmessage.RCode, truncated bool)

// phoneDNS is a DNS server of a test's own, over UDP and TCP, on the
// simulated phone's IPv6 address (its own server has IPv4's port 53).
type phoneDNS struct {
	answer answerFunc
	mu     sync.Mutex
	asked  []string // "udp A name."
}

func startPhoneDNS(t *testing.T, phone *sim.Phone, answer answerFunc) *phoneDNS {
	t.Helper()
	addr := phone.Config().PhoneAddr6()
	s := phone.Stack()
	var nic tcpip.NICID
	for id := range s.NICInfo() {
		nic = id // the phone has one
	}
	full := tcpip.FullAddress{NIC: nic, Addr: tcpip.AddrFrom16(addr.As16()), Port: dnsPort}
	var wq waiter.Queue
	ep, terr := s.NewEndpoint(udp.ProtocolNumber, ipv6.ProtocolNumber, &wq)
	if terr != nil {
		t.Fatal(terr)
	}
	ep.SocketOptions().SetV6Only(true) // the phone's own DNS server has IPv4's port 53
	if terr := ep.Bind(full); terr != nil {
		ep.Close()
		t.Fatalf("binding [%v]:53 on the phone: %v", addr, terr)
	}
	pc := gonet.NewUDPConn(&wq, ep)
	ln, err := gonet.ListenTCP(s, full, ipv6.ProtocolNumber)
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	d := &phoneDNS{answer: answer}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if out, ok := d.reply(buf[:n], true); ok {
				pc.WriteTo(out, from)
			}
		}
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				var size [2]byte
				if _, err := io.ReadFull(c, size[:]); err != nil {
					return
				}
				in := make([]byte, binary.BigEndian.Uint16(size[:]))
				if _, err := io.ReadFull(c, in); err != nil {
					return
				}
				if out, ok := d.reply(in, false); ok {
					c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(out))), out...))
				}
			})
		}
	})
	t.Cleanup(func() {
		pc.Close()
		ln.Close()
		wg.Wait()
	})
	return d
}

func (d *phoneDNS) reply(query []byte, overUDP bool) ([]byte, bool) {
	var m dnsmessage.Message
	if err := m.Unpack(query); err != nil || len(m.Questions) != 1 {
		return nil, false
	}
	q := m.Questions[0]
	transport := "tcp"
	if overUDP {
		transport = "udp"
	}
	d.mu.Lock()
	d.asked = append(d.asked, transport+" "+strings.TrimPrefix(q.Type.String(), "Type")+" "+q.Name.String())
	d.mu.Unlock()
	addrs, rcode, truncated := d.answer(q, overUDP)
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: m.ID, Response: true, RecursionAvailable: true, RCode: rcode, Truncated: truncated})
	b.EnableCompression()
	b.StartQuestions()
	b.Question(q)
	b.StartAnswers()
	rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
	for _, a := range addrs {
		switch {
		case a.Is4() && q.Type == dnsmessage.TypeA:
			b.AResource(rh, dnsmessage.AResource{A: a.As4()})
		case a.Is6() && q.Type == dnsmessage.TypeAAAA:
			b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: a.As16()})
		}
	}
	out, err := b.Finish()
	return out, err == nil
}

// queries returns what the server was asked, sorted.
func (d *phoneDNS) queries() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Sorted(slices.Values(d.asked))
}

// waitIPv6 waits until the host has its SLAAC address and a route to the
// phone's IPv6 prefix.
func (f *fixture) waitIPv6(t *testing.T) {
	t.Helper()
	cfg := f.phone.Config()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		addressed, routed := false, false
		for _, a := range f.net.Addrs() {
			addressed = addressed || cfg.Prefix6.Contains(a.Addr())
		}
		for _, r := range f.net.Stack().GetRouteTable() {
			routed = routed || r.Destination.Contains(tcpip.AddrFrom16(cfg.PhoneAddr6().As16()))
		}
		if addressed && routed {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no SLAAC address and route in %v: addresses %v, routes %v", cfg.Prefix6, f.net.Addrs(), f.net.Stack().GetRouteTable())
		}
	}
}

func lookupContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// A server that never answers is passed over: the next one answers.
func TestLookupSkipsADeadServer(t *testing.T) {
	f := open(t, sim.LinuxGadget(), func(o *Options) { o.DNS = []netip.Addr{deadServer}; o.NoIPv6 = true })
	if got := f.net.DNSServers(); len(got) != 2 || got[0] != deadServer {
		t.Fatalf("DNS servers %v, want %v first, then the lease's", got, deadServer)
	}
	addrs, err := f.net.LookupNetIP(lookupContext(t), "ip4", sim.PhoneName)
	if err != nil || len(addrs) != 1 || addrs[0] != f.phone.Config().PhoneAddr {
		t.Fatalf("LookupNetIP(%s) = %v, %v; want %v", sim.PhoneName, addrs, err, f.phone.Config().PhoneAddr)
	}
	if page := get(t, f.net, "http://"+sim.PhoneName+"/"); page != sim.HomePage {
		t.Errorf("GET http://%s/ = %q", sim.PhoneName, page)
	}
}

// NXDOMAIN is an answer: the next server is not asked, the error says
// "not found" and names the server that said so, and the name is asked
// for as given, with no search domain of this host's.
func TestLookupNXDOMAINIsAnAnswer(t *testing.T) {
	cfg := sim.Qualcomm()
	// First a server that knows no name, then the lease's: the simulated
	// phone's, which knows phone.test.
	f := open(t, cfg, func(o *Options) { o.DNS = []netip.Addr{cfg.PhoneAddr6()} })
	f.waitIPv6(t)
	nx := startPhoneDNS(t, f.phone, func(dnsmessage.Question, bool) ([]netip.Addr, dnsmessage.RCode, bool) {
		return nil, dnsmessage.RCodeNameError, false
	})
	addrs, err := f.net.LookupNetIP(lookupContext(t), "ip", sim.PhoneName)
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsNotFound || de.Server != netip.AddrPortFrom(cfg.PhoneAddr6(), 53).String() {
		t.Fatalf("LookupNetIP = %v, %v; want a not-found *net.DNSError from [%v]:53", addrs, err, cfg.PhoneAddr6())
	}
	if got, want := nx.queries(), []string{"udp A phone.test.", "udp AAAA phone.test."}; !slices.Equal(got, want) {
		t.Errorf("the server was asked %q, want %q", got, want)
	}
}

// When no server answers, the lookup fails by itself within the servers'
// timeouts, with an error naming them.
func TestLookupAllServersDead(t *testing.T) {
	cfg := sim.LinuxGadget()
	cfg.NoDHCP = true
	other := deadServer.Next()
	f := open(t, cfg, func(o *Options) {
		o.IPv4, o.DNS, o.NoIPv6 = "192.168.42.7/24", []netip.Addr{deadServer, other}, true
	})
	ctx := lookupContext(t)
	start := time.Now()
	_, err := f.net.LookupNetIP(ctx, "ip", sim.PhoneName)
	t.Logf("%v after %v", err, time.Since(start).Round(time.Millisecond))
	if ctx.Err() != nil {
		t.Fatalf("the lookup ran into its context's deadline: %v", err)
	}
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsTimeout || de.Name != sim.PhoneName {
		t.Fatalf("LookupNetIP = %v, want a timeout *net.DNSError for %s", err, sim.PhoneName)
	}
	for _, s := range []netip.Addr{deadServer, other} {
		if !strings.Contains(de.Server, s.String()+":53") {
			t.Errorf("the error's server %q does not name %v", de.Server, s)
		}
	}
}

// A truncated answer over UDP is asked for again over TCP.
func TestLookupTruncatedAnswerRetriedOverTCP(t *testing.T) {
	cfg := sim.Qualcomm()
	f := open(t, cfg, func(o *Options) { o.DNS = []netip.Addr{cfg.PhoneAddr6()} })
	f.waitIPv6(t)
	var many []netip.Addr // more than 512 bytes of answer
	for a, i := netip.MustParseAddr("10.1.0.1"), 0; i < 40; a, i = a.Next(), i+1 {
		many = append(many, a)
	}
	srv := startPhoneDNS(t, f.phone, func(q dnsmessage.Question, overUDP bool) ([]netip.Addr, dnsmessage.RCode, bool) {
		if overUDP {
			return nil, dnsmessage.RCodeSuccess, true
		}
		return many, dnsmessage.RCodeSuccess, false
	})
	addrs, err := f.net.LookupNetIP(lookupContext(t), "ip4", "big.test")
	if err != nil || !slices.Equal(addrs, many) {
		t.Fatalf("LookupNetIP = %v, %v; want the %d addresses of the TCP answer", addrs, err, len(many))
	}
	if got, want := srv.queries(), []string{"tcp A big.test.", "udp A big.test."}; !slices.Equal(got, want) {
		t.Errorf("the server was asked %q, want %q", got, want)
	}
}

// AAAA records come from an IPv6 server, and a name with only those is
// dialed over IPv6.
func TestLookupAAAAFromAnIPv6Server(t *testing.T) {
	cfg := sim.Qualcomm()
	f := open(t, cfg, func(o *Options) { o.DNS = []netip.Addr{cfg.PhoneAddr6()} })
	f.waitIPv6(t)
	startPhoneDNS(t, f.phone, func(q dnsmessage.Question, _ bool) ([]netip.Addr, dnsmessage.RCode, bool) {
		return []netip.Addr{cfg.PhoneAddr6()}, dnsmessage.RCodeSuccess, false // no A record: NODATA for A
	})
	addrs, err := f.net.LookupNetIP(lookupContext(t), "ip6", "v6.test")
	if err != nil || len(addrs) != 1 || addrs[0] != cfg.PhoneAddr6() {
		t.Fatalf("LookupNetIP(ip6) = %v, %v; want %v", addrs, err, cfg.PhoneAddr6())
	}
	c, err := f.net.DialContext(lookupContext(t), "tcp", "v6.test:7")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echo(t, c, "named over IPv6")
}

// A tether's DNS answers are hostile input: whatever comes back, reading
// it never panics and yields only addresses of the type asked for.
func FuzzDNSReply(f *testing.F) {
	q := dnsmessage.Question{Name: dnsmessage.MustNewName("phone.test."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}
	query, err := newQuery(7, q)
	if err != nil {
		f.Fatal(err)
	}
	d := &phoneDNS{answer: func(dnsmessage.Question, bool) ([]netip.Addr, dnsmessage.RCode, bool) {
		return []netip.Addr{netip.MustParseAddr("192.168.42.129")}, dnsmessage.RCodeSuccess, false
	}}
	valid, _ := d.reply(query[2:], true)
	f.Add(valid)
	f.Add(query[2:])
	f.Fuzz(func(t *testing.T, b []byte) {
		m, ok := reply(b, 7, q)
		if !ok {
			return
		}
		addrs, _ := addresses(m, q)
		for _, a := range addrs {
			if !a.Is4() {
				t.Errorf("an A lookup gave %v", a)
			}
		}
	})
}
