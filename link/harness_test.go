package link

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"

	"github.com/rndis-netd/rndis-netd/usb"
	"github.com/rndis-netd/rndis-netd/usb/sim"
)

const hostNIC tcpip.NICID = 1

var hostAddr = tcpip.AddrFrom4([4]byte{192, 168, 42, 2})

// newStack returns a netstack tuned as rndis-netd tunes its own: SACK on,
// RACK off (TCPRecovery(0)), which is stack/netstack.go's default until it
// is chosen by measurement. Tests of loss recovery set either with
// setRecovery.
func newStack() *stack.Stack {
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4},
	})
	sack := tcpip.TCPSACKEnabled(true)
	s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack)
	recovery := tcpip.TCPRecovery(0)
	s.SetTransportProtocolOption(tcp.ProtocolNumber, &recovery)
	return s
}

// setRecovery sets the loss recovery of connections s makes from now on
// (an endpoint takes it from the stack when its handshake completes).
func setRecovery(t testing.TB, s *stack.Stack, r tcpip.TCPRecovery) {
	t.Helper()
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &r); err != nil {
		t.Fatal(err)
	}
}

// testbed is a host netstack joined to a simulated phone by an RNDIS link.
type testbed struct {
	phone  *sim.Phone
	link   *Link
	host   *stack.Stack
	events chan observed
}

// observed is a link event and whether the host's NIC was running just
// after BindNIC handled it.
type observed struct {
	Event
	nicRunning bool
}

func fastOptions() Options {
	return Options{KeepAliveInterval: 300 * time.Millisecond, ControlTimeout: 500 * time.Millisecond,
		PollInterval: 20 * time.Millisecond, RetryMin: 10 * time.Millisecond, RetryMax: 200 * time.Millisecond}
}

func newTestbed(t testing.TB, cfg sim.Config, opts Options) *testbed {
	t.Helper()
	return newTestbedVia(t, cfg, opts, nil)
}

// newTestbedVia opens the phone through wrap (nil: directly), for tests
// that put something between the host and the device.
func newTestbedVia(t testing.TB, cfg sim.Config, opts Options, wrap func(*sim.Phone) usb.Opener) *testbed {
	t.Helper()
	phone, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var opener usb.Opener = phone
	if wrap != nil {
		opener = wrap(phone)
	}
	l, err := Open(context.Background(), opener, opts)
	if err != nil {
		phone.Close()
		t.Fatal(err)
	}
	tb := &testbed{phone: phone, link: l, host: newStack(), events: make(chan observed, 1000)}
	if err := tb.host.CreateNIC(hostNIC, l.LinkEndpoint()); err != nil {
		t.Fatal(err)
	}
	l.BindNIC(tb.host, hostNIC)
	// Subscribed after BindNIC, so called after it: the NIC state is settled.
	l.Subscribe(func(ev Event) {
		tb.events <- observed{ev, tb.host.NICInfo()[hostNIC].Flags.Running}
	})
	tb.host.AddProtocolAddress(hostNIC, tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: hostAddr, PrefixLen: 24}}, stack.AddressProperties{})
	tb.host.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: hostNIC}})
	t.Cleanup(func() {
		l.Close()
		tb.host.Close()
		tb.host.Wait()
		phone.Close()
	})
	return tb
}

func (tb *testbed) phoneAddr(port uint16) tcpip.FullAddress {
	return tcpip.FullAddress{Addr: tcpip.AddrFrom4(tb.phone.Config().PhoneAddr.As4()), Port: port}
}

// dial opens a TCP connection from the host to the phone.
func (tb *testbed) dial(t testing.TB, port uint16) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := gonet.DialContextTCP(ctx, tb.host, tb.phoneAddr(port), ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// carries checks that the link carries a 1 MiB TCP echo intact.
func (tb *testbed) carries(t testing.TB, after string) {
	t.Helper()
	c := tb.dial(t, sim.EchoPort)
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if sent, got := echoStream(t, c, 1<<20, nil); sent != got {
		t.Errorf("echo %s corrupted", after)
	}
}

// nextEvent waits for the next link event.
func (tb *testbed) nextEvent(t testing.TB, within time.Duration) observed {
	t.Helper()
	select {
	case ev := <-tb.events:
		return ev
	case <-time.After(within):
		t.Fatalf("no link event within %v", within)
		return observed{}
	}
}

// echoStream writes size bytes of a pattern to the phone's TCP echo server
// while reading them back, and returns the SHA-256 of what was sent and of
// what came back. during, if not nil, runs once mid-stream.
func echoStream(t testing.TB, c net.Conn, size int, during func()) (sent, got [32]byte) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		h := sha256.New()
		r := io.LimitReader(sim.Pattern(), int64(size))
		buf := make([]byte, 64*1024)
		written := 0
		fired := false
		for {
			n, err := r.Read(buf)
			if n > 0 {
				h.Write(buf[:n])
				if _, err := c.Write(buf[:n]); err != nil {
					t.Errorf("write: %v", err)
					return
				}
				written += n
				if during != nil && !fired && written >= size/2 {
					fired = true
					during()
				}
			}
			if err == io.EOF {
				break
			}
		}
		copy(sent[:], h.Sum(nil))
	}()
	h := sha256.New()
	if _, err := io.CopyN(h, c, int64(size)); err != nil {
		t.Errorf("read back: %v", err)
	}
	copy(got[:], h.Sum(nil))
	wg.Wait()
	return sent, got
}

// ccState names a gVisor congestion control state.
func ccState(s tcpip.CongestionControlState) string {
	switch s {
	case tcpip.Open:
		return "open"
	case tcpip.RTORecovery:
		return "RTO recovery"
	case tcpip.FastRecovery:
		return "fast recovery"
	case tcpip.SACKRecovery:
		return "SACK recovery"
	case tcpip.Disorder:
		return "disorder"
	}
	return fmt.Sprintf("congestion state %d", s)
}

// state describes the testbed for a failure message: the link's and the
// phone's counters, the host's neighbours, and both stacks' TCP counters
// and connections (a stalled sender shows as a recovery state with an RTO
// of seconds).
func (tb *testbed) state() string {
	neigh, _ := tb.host.Neighbors(hostNIC, ipv4.ProtocolNumber)
	describe := func(s *stack.Stack) string {
		t := s.Stats().TCP
		desc := fmt.Sprintf("retransmits %d, timeouts %d, fast retransmits %d, SACK recoveries %d, segments sent %d, received %d, checksum errors %d, invalid %d",
			t.Retransmits.Value(), t.Timeouts.Value(), t.FastRetransmit.Value(), t.SACKRecovery.Value(),
			t.SegmentsSent.Value(), t.ValidSegmentsReceived.Value(), t.ChecksumErrors.Value(), t.InvalidSegmentsReceived.Value())
		for _, ep := range s.RegisteredEndpoints() {
			var info tcpip.TCPInfoOption
			if e, ok := ep.(*tcp.Endpoint); ok && e.GetSockOpt(&info) == nil && tcp.EndpointState(info.State) != tcp.StateListen {
				desc += fmt.Sprintf("\n  %v: %v, %s, cwnd %d, ssthresh %d, RTT %v, RTO %v",
					e.Info().(*stack.TransportEndpointInfo).ID, tcp.EndpointState(info.State), ccState(info.CcState),
					info.SndCwnd, info.SndSsthresh, info.RTT, info.RTO)
			}
		}
		return desc
	}
	return fmt.Sprintf("link up %v, last event %v\nlink %+v\nphone %+v\nhost neighbours %+v\nhost TCP: %s\nphone TCP: %s",
		tb.link.Up(), tb.link.LastEvent(), tb.link.Stats(), tb.phone.Stats(), neigh, describe(tb.host), describe(tb.phone.Stack()))
}
