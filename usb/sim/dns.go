package sim

import (
	"net"
	"net/netip"
	"strings"
	"sync"

	"golang.org/x/net/dns/dnsmessage"
)

// dnsServer answers A queries for a few names, as a phone's DNS forwarder
// would for the sites a test visits.
type dnsServer struct {
	mu    sync.Mutex
	names map[string]netip.Addr // lower case, with the final dot
}

func (d *dnsServer) setPhone(a netip.Addr) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.names[PhoneName+"."] = a
}

func newDNSServer(cfg Config) *dnsServer {
	d := &dnsServer{names: map[string]netip.Addr{PhoneName + ".": cfg.PhoneAddr}}
	for n, a := range cfg.DNS {
		d.names[strings.ToLower(strings.TrimSuffix(n, "."))+"."] = a
	}
	return d
}

func (d *dnsServer) serve(c net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		if reply, ok := d.answer(buf[:n]); ok {
			c.WriteTo(reply, from)
		}
	}
}

func (d *dnsServer) answer(query []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil || h.Response {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	d.mu.Lock()
	addr, known := d.names[strings.ToLower(q.Name.String())]
	d.mu.Unlock()
	if !known {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	b.StartQuestions()
	b.Question(q)
	b.StartAnswers()
	if known && q.Type == dnsmessage.TypeA && addr.Is4() {
		b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}, dnsmessage.AResource{A: addr.As4()})
	}
	out, err := b.Finish()
	return out, err == nil
}
