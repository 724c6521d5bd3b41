package link

import (
	"bufio"
	"io"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"

	"github.com/rndis-netd/rndis-netd/usb/sim"
)

// The phone's services answer over the link: HTTP, DNS and UDP echo.
func TestPhoneServicesOverTheLink(t *testing.T) {
	tb := newTestbed(t, sim.Qualcomm(), fastOptions())

	c := tb.dial(t, sim.HTTPPort)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	req, _ := http.NewRequest("GET", "http://phone.test/", nil)
	req.Write(c)
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != sim.HomePage {
		t.Errorf("GET / = %d %q", resp.StatusCode, body)
	}

	phone := tb.phoneAddr(53)
	u, err := gonet.DialUDP(tb.host, nil, &phone, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	u.SetDeadline(time.Now().Add(10 * time.Second))
	name := dnsmessage.MustNewName(sim.PhoneName + ".")
	q := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 7, RecursionDesired: true})
	q.StartQuestions()
	q.Question(dnsmessage.Question{Name: name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET})
	msg, _ := q.Finish()
	u.Write(msg)
	buf := make([]byte, 512)
	n, err := u.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	var p dnsmessage.Parser
	if h, err := p.Start(buf[:n]); err != nil || h.ID != 7 || h.RCode != dnsmessage.RCodeSuccess {
		t.Fatalf("DNS answer header %+v, %v", h, err)
	}
	p.SkipAllQuestions()
	if _, err := p.AnswerHeader(); err != nil {
		t.Fatalf("no answer for %s: %v", sim.PhoneName, err)
	}
	a, err := p.AResource()
	if err != nil || a.A != tb.phone.Config().PhoneAddr.As4() {
		t.Errorf("A %s = %v, %v; want %v", sim.PhoneName, a.A, err, tb.phone.Config().PhoneAddr)
	}

	echo := tb.phoneAddr(sim.EchoPort)
	e, err := gonet.DialUDP(tb.host, nil, &echo, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	e.SetDeadline(time.Now().Add(10 * time.Second))
	e.Write([]byte("ping over rndis"))
	if n, err := e.Read(buf); err != nil || string(buf[:n]) != "ping over rndis" {
		t.Errorf("UDP echo = %q, %v", buf[:n], err)
	}
}
