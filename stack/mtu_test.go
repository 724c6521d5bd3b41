package stack

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"

	rndislink "github.com/rndis-netd/rndis-netd/link"
	"github.com/rndis-netd/rndis-netd/usb/sim"
)

// startPhoneDHCP serves DHCP on a simulated phone started without its
// own server, leasing .100 with the given interface MTU (DHCP option 26),
// which the phone's own server sets to its device MTU.
func startPhoneDHCP(t *testing.T, phone *sim.Phone, mtu int) {
	t.Helper()
	cfg := phone.Config()
	s := phone.Stack()
	var nic tcpip.NICID
	for id := range s.NICInfo() {
		nic = id
	}
	var wq waiter.Queue
	ep, terr := s.NewEndpoint(udp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
	if terr != nil {
		t.Fatal(terr)
	}
	ep.SocketOptions().SetBroadcast(true)
	if terr := ep.Bind(tcpip.FullAddress{NIC: nic, Port: dhcpv4.ServerPort}); terr != nil {
		ep.Close()
		t.Fatal(terr)
	}
	pc := gonet.NewUDPConn(&wq, ep)
	done := make(chan struct{})
	go func() {
		defer close(done)
		phoneIP := net.IP(cfg.PhoneAddr.AsSlice())
		buf := make([]byte, 1500)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			req, err := dhcpv4.FromBytes(buf[:n])
			if err != nil {
				continue
			}
			answer := map[dhcpv4.MessageType]dhcpv4.MessageType{dhcpv4.MessageTypeDiscover: dhcpv4.MessageTypeOffer,
				dhcpv4.MessageTypeRequest: dhcpv4.MessageTypeAck}[req.MessageType()]
			if answer == dhcpv4.MessageTypeNone {
				continue
			}
			reply, err := dhcpv4.NewReplyFromRequest(req, dhcpv4.WithMessageType(answer),
				dhcpv4.WithYourIP(net.IPv4(192, 168, 42, 100)), dhcpv4.WithServerIP(phoneIP),
				dhcpv4.WithOption(dhcpv4.OptServerIdentifier(phoneIP)), dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
				dhcpv4.WithRouter(phoneIP), dhcpv4.WithDNS(phoneIP), dhcpv4.WithLeaseTime(3600),
				dhcpv4.WithGeneric(dhcpv4.OptionInterfaceMTU, []byte{byte(mtu >> 8), byte(mtu)}))
			if err == nil {
				pc.WriteTo(reply.ToBytes(), &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort})
			}
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
}

// openWithLeaseMTU opens a Net on a linux-gadget phone whose DHCP lease
// has the given interface MTU; capture, if not nil, records the link.
func openWithLeaseMTU(t *testing.T, mtu int, capture io.Writer) (*Net, *sim.Phone) {
	t.Helper()
	cfg := sim.LinuxGadget()
	cfg.NoDHCP = true
	phone := newPhone(t, cfg)
	startPhoneDHCP(t, phone, mtu)
	opts := Options{Device: phone, Link: fastLink(), DHCPRetry: 200 * time.Millisecond, NoIPv6: true}
	if capture != nil {
		var err error
		if opts.Link.Capture, err = rndislink.NewPcapWriter(capture); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	return n, phone
}

// A DHCP interface MTU below the device's becomes the NIC's: TCP sends
// segments that fit it.
func TestLeaseMTUBelowTheDevicesIsApplied(t *testing.T) {
	var capture bytes.Buffer
	n, phone := openWithLeaseMTU(t, 1400, &capture)
	closed := false
	defer func() {
		if !closed {
			n.Close()
		}
	}()
	if l, _ := n.Lease(); l.MTU != 1400 {
		t.Fatalf("lease MTU %d, want 1400", l.MTU)
	}
	if got := n.MTU(); got != 1400 {
		t.Errorf("MTU() = %d, want the lease's 1400 (the device's is %d)", got, phone.Config().MTU)
	}
	c, err := n.DialContext(context.Background(), "tcp", netip.AddrPortFrom(phone.Config().PhoneAddr, sim.EchoPort).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	data := bytes.Repeat([]byte("segment "), 8<<10)
	go c.Write(data)
	back := make([]byte, len(data))
	if _, err := io.ReadFull(c, back); err != nil || !bytes.Equal(back, data) {
		t.Fatalf("echo: %v", err)
	}
	c.Close()
	n.Close()
	closed = true
	if got := largestFrame(t, capture.Bytes()); got > 1400+14 {
		t.Errorf("a %d-byte frame crossed the link, more than the MTU 1400 and Ethernet's 14 bytes", got)
	}
}

// A lease whose interface MTU is above the device's leaves the device's.
func TestLeaseMTUAboveTheDevicesIsNot(t *testing.T) {
	n, phone := openWithLeaseMTU(t, 9000, nil)
	defer n.Close()
	if got := n.MTU(); got != phone.Config().MTU {
		t.Errorf("MTU() = %d, want the device's %d", got, phone.Config().MTU)
	}
}

// largestFrame returns the length of the longest frame of a pcap file.
func largestFrame(t *testing.T, pcap []byte) int {
	t.Helper()
	largest := 0
	for rest := pcap[24:]; len(rest) > 0; {
		if len(rest) < 16 {
			t.Fatal("truncated pcap record")
		}
		n := int(binary.LittleEndian.Uint32(rest[8:]))
		largest = max(largest, n)
		rest = rest[min(len(rest), 16+n):]
	}
	return largest
}
