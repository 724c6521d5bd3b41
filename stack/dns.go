package stack

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
)

// The resolver is a small stub resolver over x/net's dnsmessage rather
// than Go's own with its dialing replaced: Go's resolver takes its server
// list, search domains, ndots, timeout and attempts from this host's
// /etc/resolv.conf, none of which describes the tether's network, and
// offers no way to leave that file out. Here a name is asked for as given
// (absolute: no search domains), of the tether's servers only.

// dnsServerTimeout is how long one server has to answer. A phone forwards
// queries to its carrier's resolvers: an answer not in its cache costs a
// cellular round trip or two and the recursion, rarely over a second. The
// query is sent again after dnsResend in case a datagram was lost. A dead
// server so costs 2 s, and the three servers a tether has at most (static,
// DHCP, RDNSS) 6 s, less than the 10 s after which people and programs
// give up on a lookup.
const (
	dnsServerTimeout = 2 * time.Second
	dnsResend        = time.Second
	dnsPort          = 53
	// dnsUDPSize is the EDNS(0) payload size offered: DNS flag day 2020's,
	// which fits a tether's MTU unfragmented. Larger answers come truncated
	// and are asked for again over TCP.
	dnsUDPSize = 1232
	// maxCNAMEs bounds the chain of aliases followed within an answer.
	maxCNAMEs = 8
)

// LookupNetIP looks host up with the tether's DNS servers, like
// net.Resolver's: network "ip" asks for A and AAAA records, "ip4" for A,
// "ip6" for AAAA; an IP address is returned as it is. The servers
// (DNSServers) are asked in turn, each for at most 2 s; the first answer
// wins, and a name that does not exist (NXDOMAIN) is an answer. Errors are
// *net.DNSErrors naming the servers asked.
func (n *Net) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	fail := func(err error, servers []netip.AddrPort) *net.DNSError {
		return &net.DNSError{Err: err.Error(), UnwrapErr: err, Name: host, Server: serverList(servers)}
	}
	types, err := queryTypes(network)
	if err != nil {
		return nil, fail(err, nil)
	}
	name, err := dnsmessage.NewName(strings.TrimSuffix(host, ".") + ".")
	if err != nil || host == "" || host == "." {
		return nil, fail(fmt.Errorf("%q is not a domain name", host), nil)
	}
	var servers []netip.AddrPort
	for _, a := range n.DNSServers() {
		servers = append(servers, netip.AddrPortFrom(a, dnsPort))
	}
	if len(servers) == 0 {
		return nil, fail(ErrNoDNS, nil)
	}
	if !n.link.Up() {
		e := fail(ErrLinkDown, servers)
		e.IsTemporary = true
		return nil, e
	}
	var reasons []string
	timeouts := 0
	for _, s := range servers {
		addrs, err := n.askServer(ctx, s, name, types)
		if err == nil {
			return addrs, nil
		}
		if errors.Is(err, errNotFound) {
			e := fail(err, []netip.AddrPort{s})
			e.Err, e.IsNotFound = "no such host", true
			return nil, e
		}
		if isTimeout(err) {
			timeouts++
		}
		if r := reason(err); !slices.Contains(reasons, r) {
			reasons = append(reasons, r)
		}
		if ctx.Err() != nil {
			break
		}
	}
	if err := ctx.Err(); err != nil {
		e := fail(err, servers)
		e.IsTimeout = errors.Is(err, context.DeadlineExceeded)
		return nil, e
	}
	e := fail(errors.New(strings.Join(reasons, "; ")), servers)
	e.IsTimeout = timeouts == len(servers)
	e.IsTemporary = true
	return nil, e
}

// reason describes why a server gave no answer, without the socket
// addresses a *net.OpError adds.
func reason(err error) string {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err.Error()
	}
	return err.Error()
}

func queryTypes(network string) ([]dnsmessage.Type, error) {
	switch network {
	case "ip":
		return []dnsmessage.Type{dnsmessage.TypeA, dnsmessage.TypeAAAA}, nil
	case "ip4":
		return []dnsmessage.Type{dnsmessage.TypeA}, nil
	case "ip6":
		return []dnsmessage.Type{dnsmessage.TypeAAAA}, nil
	}
	return nil, net.UnknownNetworkError(network)
}

func serverList(servers []netip.AddrPort) string {
	s := make([]string, len(servers))
	for i, a := range servers {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// Outcomes of asking a server, besides addresses.
var (
	errNotFound    = errors.New("no such host") // NXDOMAIN, or no record of any type asked for
	errNoData      = errors.New("no record of the type")
	errTruncated   = errors.New("truncated answer")
	errServerTimed = fmt.Errorf("no answer within %v", dnsServerTimeout)
)

func isTimeout(err error) bool { return errors.Is(err, errServerTimed) }

// askServer asks one server for each record type at once. The server has
// answered when a query got NXDOMAIN (the name does not exist), when some
// got addresses, or when every one got none (errNotFound); otherwise it
// failed and the next server is asked.
func (n *Net) askServer(ctx context.Context, server netip.AddrPort, name dnsmessage.Name, types []dnsmessage.Type) ([]netip.Addr, error) {
	ctx, cancel := context.WithTimeout(ctx, dnsServerTimeout)
	defer cancel()
	addrs := make([][]netip.Addr, len(types))
	errs := make([]error, len(types))
	var wg sync.WaitGroup
	for i, t := range types {
		wg.Go(func() {
			addrs[i], errs[i] = n.query(ctx, server, dnsmessage.Question{Name: name, Type: t, Class: dnsmessage.ClassINET})
		})
	}
	wg.Wait()
	var out []netip.Addr
	noData := 0
	var failed error
	for i, err := range errs {
		switch {
		case errors.Is(err, errNotFound):
			return nil, errNotFound
		case errors.Is(err, errNoData):
			noData++
		case err != nil:
			failed = err
		}
		out = append(out, addrs[i]...)
	}
	switch {
	case len(out) > 0:
		return out, nil
	case noData == len(types):
		return nil, errNotFound
	case failed == nil:
		failed = errNoData
	}
	return nil, failed
}

// query asks server one question over UDP, and again over TCP when the
// answer comes truncated.
func (n *Net) query(ctx context.Context, server netip.AddrPort, q dnsmessage.Question) ([]netip.Addr, error) {
	id := uint16(rand.Uint32())
	msg, err := newQuery(id, q)
	if err != nil {
		return nil, err
	}
	answer, err := n.exchangeUDP(ctx, server, msg[2:], id, q)
	if errors.Is(err, errTruncated) {
		answer, err = n.exchangeTCP(ctx, server, msg, id, q)
	}
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, errServerTimed) {
			return nil, errServerTimed
		}
		return nil, err
	}
	return addresses(answer, q)
}

// newQuery builds a recursive query with an EDNS(0) OPT record, behind
// two bytes left for the length TCP needs.
func newQuery(id uint16, q dnsmessage.Question) ([]byte, error) {
	b := dnsmessage.NewBuilder(make([]byte, 2, 64), dnsmessage.Header{ID: id, RecursionDesired: true})
	b.EnableCompression()
	var opt dnsmessage.ResourceHeader
	err := errors.Join(b.StartQuestions(), b.Question(q), b.StartAdditionals(),
		opt.SetEDNS0(dnsUDPSize, dnsmessage.RCodeSuccess, false), b.OPTResource(opt, dnsmessage.OPTResource{}))
	if err != nil {
		return nil, fmt.Errorf("building the query: %w", err)
	}
	msg, err := b.Finish()
	if err != nil {
		return nil, fmt.Errorf("building the query: %w", err)
	}
	binary.BigEndian.PutUint16(msg, uint16(len(msg)-2))
	return msg, nil
}

// exchangeUDP sends msg and returns the first reply that answers it,
// sending it once more after dnsResend.
func (n *Net) exchangeUDP(ctx context.Context, server netip.AddrPort, msg []byte, id uint16, q dnsmessage.Question) (*dnsmessage.Message, error) {
	full, proto := fullAddress(server)
	c, err := gonet.DialUDP(n.stack, nil, &full, proto)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	deadline, _ := ctx.Deadline()
	buf := make([]byte, 4096)
	resend := time.Now().Add(dnsResend)
	for {
		if deadline.Before(resend) {
			resend = deadline
		}
		if _, err := c.Write(msg); err != nil {
			return nil, err
		}
		c.SetReadDeadline(resend)
		if ctx.Err() != nil { // after the deadline so that AfterFunc's cannot be overwritten unseen
			return nil, errServerTimed
		}
		for {
			nr, err := c.Read(buf)
			if err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					break
				}
				return nil, err
			}
			if m, ok := reply(buf[:nr], id, q); ok {
				if m.Truncated {
					return nil, errTruncated
				}
				return m, nil
			}
		}
		if ctx.Err() != nil || !resend.Before(deadline) {
			return nil, errServerTimed
		}
		resend = deadline
	}
}

// exchangeTCP sends the length-prefixed msg over a TCP connection and
// reads the reply.
func (n *Net) exchangeTCP(ctx context.Context, server netip.AddrPort, msg []byte, id uint16, q dnsmessage.Question) (*dnsmessage.Message, error) {
	full, proto := fullAddress(server)
	c, err := gonet.DialContextTCP(ctx, n.stack, full, proto)
	if err != nil {
		return nil, fmt.Errorf("over TCP: %w", err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := c.Write(msg); err != nil {
		return nil, fmt.Errorf("over TCP: %w", err)
	}
	var size [2]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return nil, fmt.Errorf("over TCP: %w", err)
	}
	buf := make([]byte, binary.BigEndian.Uint16(size[:]))
	if _, err := io.ReadFull(c, buf); err != nil {
		return nil, fmt.Errorf("over TCP: %w", err)
	}
	m, ok := reply(buf, id, q)
	if !ok {
		return nil, errors.New("over TCP: a reply that does not answer the query")
	}
	return m, nil
}

// reply parses b and reports whether it answers the query id about q;
// anything else (late replies, forgeries, garbage) is ignored.
func reply(b []byte, id uint16, q dnsmessage.Question) (*dnsmessage.Message, bool) {
	var m dnsmessage.Message
	if err := m.Unpack(b); err != nil || !m.Response || m.ID != id || len(m.Questions) != 1 {
		return nil, false
	}
	got := m.Questions[0]
	if got.Type != q.Type || got.Class != q.Class || !strings.EqualFold(got.Name.String(), q.Name.String()) {
		return nil, false
	}
	return &m, true
}

// addresses reads the records of q's type for q's name, following the
// aliases (CNAME) the answer gives.
func addresses(m *dnsmessage.Message, q dnsmessage.Question) ([]netip.Addr, error) {
	switch m.RCode {
	case dnsmessage.RCodeSuccess:
	case dnsmessage.RCodeNameError:
		return nil, errNotFound
	default:
		return nil, fmt.Errorf("server misbehaving: %v", m.RCode)
	}
	aliases := map[string]string{}
	for _, r := range m.Answers {
		if c, ok := r.Body.(*dnsmessage.CNAMEResource); ok {
			aliases[strings.ToLower(r.Header.Name.String())] = strings.ToLower(c.CNAME.String())
		}
	}
	names := map[string]bool{}
	for name, i := strings.ToLower(q.Name.String()), 0; name != "" && i <= maxCNAMEs && !names[name]; name, i = aliases[name], i+1 {
		names[name] = true
	}
	var out []netip.Addr
	for _, r := range m.Answers {
		if !names[strings.ToLower(r.Header.Name.String())] {
			continue
		}
		switch b := r.Body.(type) {
		case *dnsmessage.AResource:
			if q.Type == dnsmessage.TypeA {
				out = append(out, netip.AddrFrom4(b.A))
			}
		case *dnsmessage.AAAAResource:
			if q.Type == dnsmessage.TypeAAAA {
				out = append(out, netip.AddrFrom16(b.AAAA))
			}
		}
	}
	if len(out) == 0 {
		return nil, errNoData
	}
	return out, nil
}
