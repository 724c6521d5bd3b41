package sim

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/rndis-netd/rndis-netd/ncm"
	"github.com/rndis-netd/rndis-netd/usb"
)

// cdcHost drives a phone's NCM or ECM function as a host does: the
// requests in the order Linux's cdc_ncm and cdc_ether (and this project's
// link) send them, blocks packed and read with package ncm.
type cdcHost struct {
	t         *testing.T
	tr        usb.Transport
	fn        usb.Function
	ctx       context.Context
	notes     ncm.NotificationReader
	params    ncm.NTBParameters
	format    ncm.Format
	inputSize int
	outLimits ncm.Limits
	mac       net.HardwareAddr
	// unread holds the frames of the last transfer that receiveMatch did
	// not reach: a phone may put two replies in one NTB.
	unread []receivedFrame
}

type receivedFrame struct{ frame, transfer []byte }

// hostRxBuffer is what one bulk-IN read of the host holds: a 16 KiB block
// and a packet more, as the link reads.
const hostRxBuffer = 16384 + 512

func newCDCHost(t *testing.T, tr usb.Transport) *cdcHost {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return &cdcHost{t: t, tr: tr, fn: tr.Info().Function, ctx: ctx, format: ncm.NTB16}
}

// newCDCPhone returns a phone of cfg opened by a host that has not started
// it yet.
func newCDCPhone(t *testing.T, cfg Config) (*Phone, *cdcHost) {
	t.Helper()
	p, tr := newPhone(t, cfg)
	return p, newCDCHost(t, tr)
}

// startedPhone returns a phone of cfg that a host has started.
func startedPhone(t *testing.T, cfg Config) (*Phone, *cdcHost) {
	t.Helper()
	p, h := newCDCPhone(t, cfg)
	h.start()
	return p, h
}

func (h *cdcHost) start() {
	h.t.Helper()
	if err := h.begin(); err != nil {
		h.t.Fatal(err)
	}
}

// begin starts the function as a host does and reports why it cannot.
func (h *cdcHost) begin() error {
	if h.fn.Protocol == usb.ProtocolNCM {
		return h.startNCM()
	}
	return h.startECM()
}

func (h *cdcHost) control(s usb.Setup, data []byte) (int, error) {
	return h.tr.Control(h.ctx, s, data)
}

func (h *cdcHost) mustControl(s usb.Setup, data []byte) int {
	h.t.Helper()
	n, err := h.control(s, data)
	if err != nil {
		h.t.Fatalf("%v: %v", s, err)
	}
	return n
}

func (h *cdcHost) in(request uint8, value uint16) usb.Setup {
	return usb.ClassIn(request, value, h.fn.ControlIface)
}

func (h *cdcHost) out(request uint8, value uint16) usb.Setup {
	return usb.ClassOut(request, value, h.fn.ControlIface)
}

func (h *cdcHost) setAlt(alt int) {
	h.t.Helper()
	if err := h.tr.SetAlternate(h.ctx, alt); err != nil {
		h.t.Fatalf("SET_INTERFACE %d: %v", alt, err)
	}
}

// startNCM: the data interface toggled to its bulk setting and back,
// GET_NTB_PARAMETERS, SET_CRC_MODE(none) with the CRC capability,
// SET_NTB_FORMAT(NTB16) where NTB32 is offered, SET_NTB_INPUT_SIZE when the
// device's blocks are not 16 KiB (a refusal is fatal when they are
// larger), then the bulk setting once, the MAC, and the packet filter with
// the filter capability.
func (h *cdcHost) startNCM() error {
	caps := ncm.NetworkCapabilities(h.fn.NCMCapabilities)
	h.tr.SetAlternate(h.ctx, h.fn.DataAlt) // some devices reset only so; its failure does not matter
	if err := h.tr.SetAlternate(h.ctx, 0); err != nil {
		return fmt.Errorf("SET_INTERFACE 0: %w", err)
	}
	var err error
	if h.params, err = h.ntbParameters(); err != nil {
		return err
	}
	if caps&ncm.CapCRCMode != 0 {
		h.control(h.out(ncm.RequestSetCRCMode, ncm.CRCNotAppended), nil)
	}
	if h.params.Supports(ncm.NTB32) {
		h.control(h.out(ncm.RequestSetNTBFormat, uint16(ncm.NTB16)), nil)
	}
	h.inputSize = int(h.params.InMaxSize)
	if want := h.params.InputSize(ncm.NTB16, ncm.DefaultNTBSize); want != h.inputSize {
		_, err := h.control(h.out(ncm.RequestSetNTBInputSize, 0), ncm.NTBInputSize{MaxSize: uint32(want)}.Marshal(caps))
		switch {
		case err == nil:
			h.inputSize = want
		case h.inputSize > ncm.DefaultNTBSize:
			return fmt.Errorf("SET_NTB_INPUT_SIZE %d refused, blocks of %d bytes: %w", want, h.inputSize, err)
		}
	}
	if h.outLimits, err = h.params.OutLimits(ncm.NTB16, ncm.DefaultNTBSize); err != nil {
		return err
	}
	if err := h.tr.SetAlternate(h.ctx, h.fn.DataAlt); err != nil {
		return fmt.Errorf("SET_INTERFACE %d: %w", h.fn.DataAlt, err)
	}
	if err := h.readMAC(); err != nil {
		return err
	}
	if caps&ncm.CapEthernetFilter != 0 {
		h.control(h.out(ncm.RequestSetEthernetPacketFilter, uint16(ncm.DefaultPacketFilter)), nil)
	}
	return nil
}

func (h *cdcHost) ntbParameters() (ncm.NTBParameters, error) {
	buf := make([]byte, ncm.NTBParametersSize)
	n, err := h.control(h.in(ncm.RequestGetNTBParameters, 0), buf)
	if err != nil {
		return ncm.NTBParameters{}, err
	}
	return ncm.ParseNTBParameters(buf[:n])
}

func (h *cdcHost) mustNTBParameters() ncm.NTBParameters {
	h.t.Helper()
	p, err := h.ntbParameters()
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

// startECM: the data interface at setting 0, then its bulk setting, the
// MAC, the packet filter.
func (h *cdcHost) startECM() error {
	for _, alt := range []int{0, h.fn.DataAlt} {
		if err := h.tr.SetAlternate(h.ctx, alt); err != nil {
			return fmt.Errorf("SET_INTERFACE %d: %w", alt, err)
		}
	}
	if err := h.readMAC(); err != nil {
		return err
	}
	h.control(h.out(ncm.RequestSetEthernetPacketFilter, uint16(ncm.DefaultPacketFilter)), nil)
	return nil
}

func (h *cdcHost) readMAC() error {
	s, err := usb.ReadString(h.ctx, h.tr, h.fn.MACAddressIndex)
	if err != nil {
		return err
	}
	mac, err := hex.DecodeString(s)
	if err != nil || len(mac) != 6 {
		return fmt.Errorf("iMACAddress %q: not 12 hex digits", s)
	}
	h.mac = mac
	return nil
}

// notification waits for the next notification.
func (h *cdcHost) notification() ncm.Notification {
	h.t.Helper()
	for {
		if n, ok := h.notes.Next(); ok {
			return n
		}
		b, err := h.tr.WaitNotification(h.ctx)
		if err != nil {
			h.t.Fatalf("waiting for a notification: %v", err)
		}
		h.notes.Feed(b)
		if err := h.notes.Err(); err != nil {
			h.t.Fatalf("notification %x: %v", b, err)
		}
	}
}

// untilConnection reads notifications up to a NETWORK_CONNECTION and
// returns it and the codes of those before it.
func (h *cdcHost) untilConnection() (ncm.Notification, []ncm.NotificationCode) {
	h.t.Helper()
	var before []ncm.NotificationCode
	for {
		n := h.notification()
		if n.Code == ncm.NotifyNetworkConnection {
			return n, before
		}
		before = append(before, n.Code)
	}
}

// block packs frames into one NTB as the host's writer does.
func (h *cdcHost) block(frames ...[]byte) []byte {
	h.t.Helper()
	w, err := ncm.NewWriter(make([]byte, 0, h.outLimits.MaxSize+1), h.outLimits, h.format)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, f := range frames {
		if ok, err := w.Add(f); !ok || err != nil {
			h.t.Fatalf("adding a %d-byte frame: %v, %v", len(f), ok, err)
		}
	}
	return bytes.Clone(w.Finish())
}

// withShortPacket appends the short-packet rule's zero byte where the host
// does: after a transfer that fills whole packets and (NCM) is shorter
// than the device's blocks.
func (h *cdcHost) withShortPacket(b []byte) []byte {
	if usb.ShortPacketPad(len(b), h.fn.BulkOut.MaxPacketSize) > 0 && (h.fn.Protocol != usb.ProtocolNCM || len(b) < h.outLimits.MaxSize) {
		b = append(b, 0)
	}
	return b
}

// send sends frames: one NTB for NCM, a transfer each for ECM.
func (h *cdcHost) send(frames ...[]byte) {
	h.t.Helper()
	if h.fn.Protocol == usb.ProtocolNCM {
		h.write(h.withShortPacket(h.block(frames...)))
		return
	}
	for _, f := range frames {
		h.write(h.withShortPacket(bytes.Clone(f)))
	}
}

func (h *cdcHost) write(transfer []byte) {
	h.t.Helper()
	if err := h.tr.WriteBulk(h.ctx, transfer); err != nil {
		h.t.Fatal(err)
	}
}

// receive reads one transfer and returns it and its frames, held to the
// host's rules: an NTB no longer than the input size (and a byte), that
// ncm.Reader walks without error; for ECM, the transfer is the frame.
func (h *cdcHost) receive() ([]byte, [][]byte) {
	h.t.Helper()
	buf := make([]byte, hostRxBuffer)
	n, err := readBulk(h.tr, h.ctx, buf)
	if err != nil {
		h.t.Fatal(err)
	}
	transfer := buf[:n]
	if h.fn.Protocol != usb.ProtocolNCM {
		return transfer, [][]byte{transfer}
	}
	if n > h.inputSize+1 {
		h.t.Fatalf("an NTB of %d bytes, beyond the %d-byte input size", n, h.inputSize)
	}
	r := ncm.NewReader(transfer, h.format)
	var frames [][]byte
	for d, ok := r.Next(); ok; d, ok = r.Next() {
		frames = append(frames, d)
	}
	if r.Err() != nil {
		h.t.Fatalf("NTB from the phone: %v", r.Err())
	}
	return transfer, frames
}

// receiveFrame reads transfers until a frame that match accepts.
func (h *cdcHost) receiveFrame(match func([]byte) bool) []byte {
	h.t.Helper()
	frame, _ := h.receiveMatch(match)
	return frame
}

// receiveMatch reads transfers until a frame that match accepts, and
// returns it and its transfer; the frames after it in that transfer are
// left for the next call.
func (h *cdcHost) receiveMatch(match func([]byte) bool) (frame, transfer []byte) {
	h.t.Helper()
	for {
		for len(h.unread) > 0 {
			f := h.unread[0]
			h.unread = h.unread[1:]
			if match(f.frame) {
				return f.frame, f.transfer
			}
		}
		transfer, frames := h.receive()
		for _, f := range frames {
			h.unread = append(h.unread, receivedFrame{f, transfer})
		}
	}
}

// arpRequestFor is a broadcast frame from the host asking for the phone's
// address, from sender.
func arpRequestFor(cfg Config, sender netip.Addr) []byte {
	frame := arpRequest(cfg)
	copy(header.ARP(frame[header.EthernetMinimumSize:]).ProtocolAddressSender(), sender.AsSlice())
	return frame
}

// isARPReply reports whether frame is the phone's ARP reply to sender.
func isARPReply(cfg Config, sender netip.Addr) func([]byte) bool {
	return func(frame []byte) bool {
		if len(frame) < header.EthernetMinimumSize+header.ARPSize || header.Ethernet(frame).Type() != header.ARPProtocolNumber {
			return false
		}
		a := header.ARP(frame[header.EthernetMinimumSize:])
		return a.Op() == header.ARPReply && bytes.Equal(a.HardwareAddressSender(), cfg.PhoneMAC) &&
			bytes.Equal(a.ProtocolAddressTarget(), sender.AsSlice())
	}
}

// dhcpDiscover is a DHCPDISCOVER broadcast from mac.
func dhcpDiscover(t *testing.T, mac net.HardwareAddr) []byte {
	t.Helper()
	d, err := dhcpv4.NewDiscovery(mac)
	if err != nil {
		t.Fatal(err)
	}
	payload := d.ToBytes()
	const ipAt, udpAt = header.EthernetMinimumSize, header.EthernetMinimumSize + header.IPv4MinimumSize
	frame := make([]byte, udpAt+header.UDPMinimumSize+len(payload))
	header.Ethernet(frame).Encode(&header.EthernetFields{SrcAddr: tcpip.LinkAddress(mac), DstAddr: header.EthernetBroadcastAddress, Type: header.IPv4ProtocolNumber})
	ip := header.IPv4(frame[ipAt:])
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(len(frame) - ipAt), TTL: 64, Protocol: uint8(header.UDPProtocolNumber),
		SrcAddr: header.IPv4Any, DstAddr: header.IPv4Broadcast})
	ip.SetChecksum(^ip.CalculateChecksum())
	header.UDP(frame[udpAt:]).Encode(&header.UDPFields{SrcPort: dhcpv4.ClientPort, DstPort: dhcpv4.ServerPort, Length: uint16(len(frame) - udpAt)})
	copy(frame[udpAt+header.UDPMinimumSize:], payload)
	return frame
}

// dhcpReply returns the DHCP message frame carries to the client port.
func dhcpReply(frame []byte) (*dhcpv4.DHCPv4, bool) {
	if len(frame) < header.EthernetMinimumSize+header.IPv4MinimumSize || header.Ethernet(frame).Type() != header.IPv4ProtocolNumber {
		return nil, false
	}
	ip := header.IPv4(frame[header.EthernetMinimumSize:])
	if !ip.IsValid(len(frame)-header.EthernetMinimumSize) || ip.TransportProtocol() != header.UDPProtocolNumber {
		return nil, false
	}
	u := header.UDP(ip.Payload())
	if len(u) < header.UDPMinimumSize || u.DestinationPort() != dhcpv4.ClientPort {
		return nil, false
	}
	m, err := dhcpv4.FromBytes(u.Payload())
	return m, err == nil
}
