package sim

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/rndis-netd/rndis-netd/rndis"
	"github.com/rndis-netd/rndis-netd/usb"
)

// waitFor polls cond until it holds: the phone answers on its own time.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
	}
}

func newPhone(t *testing.T, cfg Config) (*Phone, usb.Transport) {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	tr, err := p.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return p, tr
}

// request sends m and returns the next control message, as a host does:
// wait for RESPONSE_AVAILABLE, then GET_ENCAPSULATED_RESPONSE.
func request(t *testing.T, tr usb.Transport, m rndis.Message) rndis.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sendCommand(ctx, tr, m); err != nil {
		t.Fatal(err)
	}
	return response(t, tr)
}

// sendCommand sends an RNDIS control message as a host does.
func sendCommand(ctx context.Context, tr usb.Transport, m rndis.Message) error {
	_, err := tr.Control(ctx, usb.ClassOut(usb.RequestSendEncapsulatedCommand, 0, 0), rndis.Marshal(m))
	return err
}

// getResponse reads a control response; 0 when the phone stalls for having none.
func getResponse(tr usb.Transport, ctx context.Context, buf []byte) (int, error) {
	n, err := tr.Control(ctx, usb.ClassIn(usb.RequestGetEncapsulatedResponse, 0, 0), buf)
	if errors.Is(err, usb.ErrStall) {
		return 0, nil
	}
	return n, err
}

// readBulk reads one bulk-IN transfer.
func readBulk(tr usb.Transport, ctx context.Context, buf []byte) (int, error) {
	var sizes [1]int
	_, err := tr.ReadBulk(ctx, buf, sizes[:])
	return sizes[0], err
}

func response(t *testing.T, tr usb.Transport) rndis.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := tr.WaitNotification(ctx)
	if err != nil || len(n) != rndis.NotificationSize {
		t.Fatalf("WaitNotification = %x, %v", n, err)
	}
	buf := make([]byte, usb.ResponseBufferSize)
	got, err := getResponse(tr, ctx, buf)
	if err != nil {
		t.Fatal(err)
	}
	m, err := rndis.Parse(buf[:got])
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func initialize(t *testing.T, tr usb.Transport) rndis.InitializeComplete {
	t.Helper()
	c, ok := request(t, tr, rndis.Initialize{RequestID: 1, MajorVersion: 1, MaxTransferSize: 16384}).(rndis.InitializeComplete)
	if !ok {
		t.Fatalf("INITIALIZE answered with %T", c)
	}
	return c
}

func setFilter(t *testing.T, tr usb.Transport) {
	t.Helper()
	filter := []byte{byte(rndis.FilterDirected | rndis.FilterBroadcast | rndis.FilterAllMulticast), 0, 0, 0}
	if c := request(t, tr, rndis.Set{RequestID: 3, OID: rndis.OIDGenCurrentPacketFilter, Buffer: filter}); c != (rndis.SetComplete{RequestID: 3}) {
		t.Fatalf("SET filter = %#v", c)
	}
}

func TestInitializeQuerySetReturnConfiguredValues(t *testing.T) {
	for _, cfg := range []Config{LinuxGadget(), Qualcomm()} {
		t.Run(cfg.Name, func(t *testing.T) {
			cfg.HostMAC = net.HardwareAddr{0x02, 1, 2, 3, 4, 5}
			p, tr := newPhone(t, cfg)
			c := initialize(t, tr)
			want := rndis.InitializeComplete{RequestID: 1, MajorVersion: 1, DeviceFlags: rndis.DeviceFlagConnectionless,
				Medium: rndis.Medium8023, MaxPacketsPerTransfer: uint32(cfg.MaxPacketsPerTransfer),
				MaxTransferSize: uint32(cfg.MaxTransferSize), PacketAlignmentFactor: uint32(cfg.AlignmentShift)}
			if c != want {
				t.Errorf("INITIALIZE_CMPLT\n got %+v\nwant %+v", c, want)
			}
			mac := request(t, tr, rndis.Query{RequestID: 2, OID: rndis.OID8023PermanentAddress, Buffer: make([]byte, 48)}).(rndis.QueryComplete)
			if mac.Status != rndis.StatusSuccess || !bytes.Equal(mac.Buffer, cfg.HostMAC) {
				t.Errorf("PERMANENT_ADDRESS = %x (%v), want %x", mac.Buffer, mac.Status, []byte(cfg.HostMAC))
			}
			frame := request(t, tr, rndis.Query{RequestID: 4, OID: rndis.OIDGenMaximumFrameSize}).(rndis.QueryComplete)
			if len(frame.Buffer) != 4 || int(frame.Buffer[0])|int(frame.Buffer[1])<<8 != cfg.MTU {
				t.Errorf("MAXIMUM_FRAME_SIZE = %x, want %d", frame.Buffer, cfg.MTU)
			}
			if q := request(t, tr, rndis.Query{RequestID: 5, OID: 0xffff0001}).(rndis.QueryComplete); q.Status != rndis.StatusNotSupported {
				t.Errorf("unknown OID answered %v", q.Status)
			}
			setFilter(t, tr)
			if got := p.Stats().PacketFilter; got != 0x0d {
				t.Errorf("packet filter = %#x, want 0x0d", got)
			}
		})
	}
}

func TestDeviceHaltArrivesAsTwelveByteMessage(t *testing.T) {
	p, tr := newPhone(t, LinuxGadget())
	initialize(t, tr)
	p.Halt()
	if m, ok := response(t, tr).(rndis.Halt); !ok {
		t.Fatalf("got %#v, want a HALT", m)
	}
	// After a halt the device is uninitialized: queries fail until INITIALIZE.
	if q := request(t, tr, rndis.Query{RequestID: 9, OID: rndis.OIDGenMaximumFrameSize}).(rndis.QueryComplete); q.Status == rndis.StatusSuccess {
		t.Error("query after HALT succeeded")
	}
}

func TestHostHaltIsRecordedAndUnanswered(t *testing.T) {
	p, tr := newPhone(t, LinuxGadget())
	initialize(t, tr)
	sendCommand(context.Background(), tr, rndis.Halt{RequestID: 7})
	if got := p.Stats().HostHalts; got != 1 {
		t.Errorf("HostHalts = %d", got)
	}
	if n, _ := getResponse(tr, context.Background(), make([]byte, 1025)); n != 0 {
		t.Errorf("HALT was answered with %d bytes", n)
	}
}

func TestKeepAliveBothWays(t *testing.T) {
	p, tr := newPhone(t, LinuxGadget())
	initialize(t, tr)
	if c := request(t, tr, rndis.KeepAlive{RequestID: 8}); c != (rndis.KeepAliveComplete{RequestID: 8}) {
		t.Errorf("KEEPALIVE answered %#v", c)
	}
	p.SendKeepAlive()
	ka, ok := response(t, tr).(rndis.KeepAlive)
	if !ok {
		t.Fatal("no device KEEPALIVE")
	}
	sendCommand(context.Background(), tr, rndis.KeepAliveComplete{RequestID: ka.RequestID})
	if p.Stats().KeepAliveCompletes != 1 {
		t.Error("KEEPALIVE_CMPLT not recorded")
	}
}

func TestUnplugAndReplug(t *testing.T) {
	p, tr := newPhone(t, LinuxGadget())
	initialize(t, tr)
	p.Unplug()
	if err := sendCommand(context.Background(), tr, rndis.KeepAlive{}); !errors.Is(err, usb.ErrDeviceGone) {
		t.Errorf("SEND_ENCAPSULATED_COMMAND after unplug = %v, want ErrDeviceGone", err)
	}
	if _, err := readBulk(tr, context.Background(), make([]byte, 16384)); !errors.Is(err, usb.ErrDeviceGone) {
		t.Errorf("ReadBulk after unplug = %v, want ErrDeviceGone", err)
	}
	if _, err := p.Open(context.Background()); !errors.Is(err, usb.ErrNoDevice) {
		t.Errorf("Open while unplugged = %v, want ErrNoDevice", err)
	}
	p.Replug()
	tr2, err := p.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tr2.Close()
	initialize(t, tr2)
}

// hostAddr is an address of the phone's subnet a host may use: its 100th.
func hostAddr(cfg Config) netip.Addr {
	a := cfg.Subnet.Masked().Addr()
	for range 100 {
		a = a.Next()
	}
	return a
}

// arpRequest is a broadcast frame asking for the phone's address, from
// hostAddr.
func arpRequest(cfg Config) []byte {
	frame := make([]byte, header.EthernetMinimumSize+header.ARPSize)
	header.Ethernet(frame).Encode(&header.EthernetFields{SrcAddr: tcpip.LinkAddress(cfg.HostMAC), DstAddr: header.EthernetBroadcastAddress, Type: header.ARPProtocolNumber})
	a := header.ARP(frame[header.EthernetMinimumSize:])
	a.SetIPv4OverEthernet()
	a.SetOp(header.ARPRequest)
	copy(a.HardwareAddressSender(), cfg.HostMAC)
	copy(a.ProtocolAddressSender(), hostAddr(cfg).AsSlice())
	copy(a.ProtocolAddressTarget(), cfg.PhoneAddr.AsSlice())
	return frame
}

func TestPhoneAnswersARPThroughTheBulkPipes(t *testing.T) {
	cfg := LinuxGadget()
	_, tr := newPhone(t, cfg)
	initialize(t, tr)
	setFilter(t, tr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tr.WriteBulk(ctx, rndis.Marshal(rndis.Packet{Data: arpRequest(cfg)})); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16384)
	n, err := readBulk(tr, ctx, buf)
	if err != nil {
		t.Fatal(err)
	}
	r := rndis.NewPacketReader(buf[:n])
	frame, ok := r.Next()
	if !ok {
		t.Fatalf("no frame: %v", r.Err())
	}
	a := header.ARP(frame[header.EthernetMinimumSize:])
	if a.Op() != header.ARPReply || !bytes.Equal(a.HardwareAddressSender(), cfg.PhoneMAC) {
		t.Errorf("got %x, want an ARP reply from %v", frame, cfg.PhoneMAC)
	}
}

func TestPhoneDropsTransfersBeyondItsLimits(t *testing.T) {
	cfg := LinuxGadget() // one packet per transfer
	p, tr := newPhone(t, cfg)
	initialize(t, tr)
	setFilter(t, tr)
	w := rndis.NewPacketWriter(nil, rndis.PacketLimits{MaxTransferSize: 16384, MaxPacketsPerTransfer: 2, Alignment: 1})
	w.Add(arpRequest(cfg))
	w.Add(arpRequest(cfg))
	tr.WriteBulk(context.Background(), w.Bytes())
	waitFor(t, func() bool { return p.Stats().TransfersFromHost == 1 })
	if s := p.Stats(); s.LimitViolations != 1 || s.FramesFromHost != 0 {
		t.Errorf("two packets to a one-packet device: %+v", s)
	}
}

func TestQualcommPhoneAggregatesToTheHost(t *testing.T) {
	cfg := Qualcomm()
	p, tr := newPhone(t, cfg)
	initialize(t, tr)
	setFilter(t, tr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Many ARP requests make the phone queue many replies before the host reads.
	for range 25 {
		tr.WriteBulk(ctx, rndis.Marshal(rndis.Packet{Data: arpRequest(cfg)}))
	}
	buf := make([]byte, 16384)
	frames := 0
	for frames < 25 {
		n, err := readBulk(tr, ctx, buf)
		if err != nil {
			t.Fatal(err)
		}
		r := rndis.NewPacketReader(buf[:n])
		for _, ok := r.Next(); ok; _, ok = r.Next() {
			if (r.Offset()-rndis.PacketHeaderSize)%8 != 0 {
				t.Errorf("message at %d not 8-byte aligned", r.Offset()-rndis.PacketHeaderSize)
			}
			frames++
		}
	}
	// How many frames share a transfer depends on how many were queued when
	// the phone packed it: several, never more than its limit.
	if s := p.Stats(); s.MaxPacketsToHost < 2 || s.MaxPacketsToHost > cfg.DownlinkMaxPackets {
		t.Errorf("most packets in one transfer = %d, want 2..%d", s.MaxPacketsToHost, cfg.DownlinkMaxPackets)
	}
}

// Frames the phone queued for the host before a HALT never reach it: the
// spec discards outstanding packets.
func TestHaltDiscardsTransfersInFlight(t *testing.T) {
	cfg := LinuxGadget()
	p, tr := newPhone(t, cfg)
	initialize(t, tr)
	setFilter(t, tr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range 5 {
		tr.WriteBulk(ctx, rndis.Marshal(rndis.Packet{Data: arpRequest(cfg)}))
	}
	waitFor(t, func() bool { return p.nic.NumQueued() >= 2 }) // replies queued, waiting for the host
	p.Halt()
	if _, ok := response(t, tr).(rndis.Halt); !ok {
		t.Fatal("no HALT")
	}
	initialize(t, tr)
	setFilter(t, tr)
	fresh := arpRequest(cfg)
	sender := []byte{192, 168, 42, 77}
	copy(header.ARP(fresh[header.EthernetMinimumSize:]).ProtocolAddressSender(), sender)
	tr.WriteBulk(ctx, rndis.Marshal(rndis.Packet{Data: fresh}))
	buf := make([]byte, 16384)
	n, err := readBulk(tr, ctx, buf)
	if err != nil {
		t.Fatal(err)
	}
	r := rndis.NewPacketReader(buf[:n])
	frame, _ := r.Next()
	if got := header.ARP(frame[header.EthernetMinimumSize:]).ProtocolAddressTarget(); !bytes.Equal(got, sender) {
		t.Errorf("first frame after the halt answers %v, want the request sent after it (%v)", net.IP(got), net.IP(sender))
	}
}
