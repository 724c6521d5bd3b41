package link

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

const benchChunk = 16 << 20 // bytes per benchmark iteration

// streamOnce sends benchChunk bytes over one TCP connection from one stack
// to a listener on the other and waits until the receiver has read them all.
func streamOnce(b *testing.B, ln net.Listener, from *stack.Stack, to tcpip.FullAddress) {
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		got <- n
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := gonet.DialContextTCP(ctx, from, to, ipv4.ProtocolNumber)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 256<<10)
	for sent := 0; sent < benchChunk; sent += len(buf) {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	c.Close()
	if n := <-got; n != benchChunk {
		b.Fatalf("received %d of %d bytes", n, benchChunk)
	}
}

func runStream(b *testing.B, from, to *stack.Stack, toAddr tcpip.Address) {
	ln, err := gonet.ListenTCP(to, tcpip.FullAddress{Addr: toAddr, Port: 9000}, ipv4.ProtocolNumber)
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	b.SetBytes(benchChunk)
	b.ResetTimer()
	for b.Loop() {
		streamOnce(b, ln, from, tcpip.FullAddress{Addr: toAddr, Port: 9000})
	}
	b.ReportMetric(float64(benchChunk)*8*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gbit/s")
}

// BenchmarkTCPThroughputLink: one TCP stream each way between the host
// stack and the simulated phone, through the link (RNDIS one frame per
// transfer and aggregating, NCM, ECM) and the in-memory transport.
func BenchmarkTCPThroughputLink(b *testing.B) {
	for _, cfg := range everyPreset() {
		b.Run(cfg.Name, func(b *testing.B) {
			tb := newTestbed(b, cfg, Options{})
			phoneAddr := tcpip.AddrFrom4(cfg.PhoneAddr.As4())
			b.Run("host-to-phone", func(b *testing.B) { runStream(b, tb.host, tb.phone.Stack(), phoneAddr) })
			b.Run("phone-to-host", func(b *testing.B) { runStream(b, tb.phone.Stack(), tb.host, hostAddr) })
		})
	}
}

// BenchmarkTCPThroughputBaseline: the same two kinds of stack joined by
// gVisor's channel endpoints, without the link.
func BenchmarkTCPThroughputBaseline(b *testing.B) {
	host, phone := newStack(), newStack()
	phoneAddr := tcpip.AddrFrom4([4]byte{192, 168, 42, 129})
	hostEP := channel.New(4096, 1514, "\x02\x00\x00\x00\x00\x01")
	phoneEP := channel.New(4096, 1514, "\x02\x00\x00\x00\x00\x02")
	for _, n := range []struct {
		s    *stack.Stack
		ep   *channel.Endpoint
		addr tcpip.Address
	}{{host, hostEP, hostAddr}, {phone, phoneEP, phoneAddr}} {
		if err := n.s.CreateNIC(1, ethernet.New(n.ep)); err != nil {
			b.Fatal(err)
		}
		n.s.AddProtocolAddress(1, tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber,
			AddressWithPrefix: tcpip.AddressWithPrefix{Address: n.addr, PrefixLen: 24}}, stack.AddressProperties{})
		n.s.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: 1}})
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wire := func(from, to *channel.Endpoint) {
		for {
			pkt := from.ReadContext(ctx)
			if pkt == nil {
				return
			}
			in := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: pkt.ToBuffer()})
			pkt.DecRef()
			to.InjectInbound(0, in)
			in.DecRef()
		}
	}
	go wire(hostEP, phoneEP)
	go wire(phoneEP, hostEP)
	b.Run("host-to-phone", func(b *testing.B) { runStream(b, host, phone, phoneAddr) })
	b.Run("phone-to-host", func(b *testing.B) { runStream(b, phone, host, hostAddr) })
	cancel()
	host.Close()
	phone.Close()
}
