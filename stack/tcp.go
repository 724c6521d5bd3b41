package stack

import (
	"fmt"

	"gvisor.dev/gvisor/pkg/tcpip"
	tcpipstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// TCP tunes the netstack's TCP. The zero value is the defaults, chosen by
// measuring TCP over an emulated cellular path (README, "TCP over a
// cellular path"): RACK off, Reno, receive buffers auto-tuned up to 8 MiB
// and send buffers up to 6 MiB, enough for a USB 2.0 or 3.0 tether's
// bandwidth-delay product.
type TCP struct {
	// Recovery is the loss recovery: RecoveryOff (the default; SACK
	// recovery with duplicate-ACK counting, RFC 6675) or RecoveryRACK
	// (RFC 8985's time-based loss detection with tail loss probes).
	// gVisor's RACK recovers a flight whose tail was lost one or two
	// segments per retransmission timeout (its SACK recovery's pipe
	// ignores RACK's lost marks), for tens of seconds, and takes a
	// cellular path's reordering for loss: uploads over an LTE-like path
	// ran at 0.6 × the speed without it.
	Recovery Recovery
	// CongestionControl is CongestionReno (the default) or
	// CongestionCubic. gVisor's CUBIC truncates each ACK's growth of the
	// window to whole segments, so a small window grows only at the rate
	// of its Reno-friendly estimate: uploads over LTE-like and lossy
	// paths ran at 0.65-0.75 × Reno's speed.
	CongestionControl string
	// ReceiveBufferMax and SendBufferMax cap a connection's buffers, in
	// bytes, TCPBufferMaxMin..TCPBufferMaxLimit; 0: 8 MiB and 6 MiB.
	// Receive buffers grow to the cap as the connection needs
	// (auto-tuning); send buffers start at 1 MiB.
	ReceiveBufferMax int
	SendBufferMax    int
}

// Recovery is a TCP loss recovery algorithm.
type Recovery string

// Loss recoveries.
const (
	RecoveryOff  Recovery = "off"
	RecoveryRACK Recovery = "rack"
)

// Congestion controls.
const (
	CongestionReno  = "reno"
	CongestionCubic = "cubic"
)

// Bounds of TCP's buffers: a connection starts with tcpBufDefault and,
// whatever the cap, never has less than tcpBufMin.
const (
	tcpBufMin          = 4 << 10
	tcpBufDefault      = 1 << 20
	tcpRXBufMaxDefault = 8 << 20
	tcpTXBufMaxDefault = 6 << 20
	// TCPBufferMaxMin is the smallest buffer cap TCP accepts: less would
	// hold a connection below one window of full-size segments.
	TCPBufferMaxMin = 64 << 10
	// TCPBufferMaxLimit is the largest, far above a USB tether's
	// bandwidth-delay product.
	TCPBufferMaxLimit = 64 << 20
)

func (t *TCP) defaults() error {
	if t.Recovery == "" {
		t.Recovery = RecoveryOff
	}
	if t.CongestionControl == "" {
		t.CongestionControl = CongestionReno
	}
	if t.ReceiveBufferMax == 0 {
		t.ReceiveBufferMax = tcpRXBufMaxDefault
	}
	if t.SendBufferMax == 0 {
		t.SendBufferMax = tcpTXBufMaxDefault
	}
	switch {
	case t.Recovery != RecoveryOff && t.Recovery != RecoveryRACK:
		return fmt.Errorf("stack: TCP.Recovery %q: want %q or %q", t.Recovery, RecoveryOff, RecoveryRACK)
	case t.CongestionControl != CongestionReno && t.CongestionControl != CongestionCubic:
		return fmt.Errorf("stack: TCP.CongestionControl %q: want %q or %q", t.CongestionControl, CongestionReno, CongestionCubic)
	case t.ReceiveBufferMax < TCPBufferMaxMin || t.ReceiveBufferMax > TCPBufferMaxLimit:
		return fmt.Errorf("stack: TCP.ReceiveBufferMax %d: want %d..%d bytes", t.ReceiveBufferMax, TCPBufferMaxMin, TCPBufferMaxLimit)
	case t.SendBufferMax < TCPBufferMaxMin || t.SendBufferMax > TCPBufferMaxLimit:
		return fmt.Errorf("stack: TCP.SendBufferMax %d: want %d..%d bytes", t.SendBufferMax, TCPBufferMaxMin, TCPBufferMaxLimit)
	}
	return nil
}

// apply sets t, with its defaults filled in, on s's TCP; SACK and
// receive-buffer auto-tuning are always on.
func (t TCP) apply(s *tcpipstack.Stack) error {
	sack := tcpip.TCPSACKEnabled(true)
	moderate := tcpip.TCPModerateReceiveBufferOption(true)
	rx := tcpip.TCPReceiveBufferSizeRangeOption{Min: tcpBufMin, Default: min(tcpBufDefault, t.ReceiveBufferMax), Max: t.ReceiveBufferMax}
	tx := tcpip.TCPSendBufferSizeRangeOption{Min: tcpBufMin, Default: min(tcpBufDefault, t.SendBufferMax), Max: t.SendBufferMax}
	recovery := tcpip.TCPRecovery(0)
	if t.Recovery == RecoveryRACK {
		recovery = tcpip.TCPRACKLossDetection
	}
	cc := tcpip.CongestionControlOption(t.CongestionControl)
	for _, o := range []tcpip.SettableTransportProtocolOption{&sack, &moderate, &rx, &tx, &recovery, &cc} {
		if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, o); err != nil {
			return fmt.Errorf("stack: TCP option %T: %s", o, err)
		}
	}
	return nil
}
