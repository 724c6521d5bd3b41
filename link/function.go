package link

import (
	"context"
	"fmt"
	"net"

	"github.com/rndis-netd/rndis-netd/usb"
)

// function is the host side of one protocol (RNDIS, CDC-NCM, CDC-ECM) over
// a session's transport. The Link above it is the same for every protocol:
// one endpoint, one state machine, one set of counters.
type function interface {
	// start brings the function up: its control requests in its order,
	// until frames may flow. mac, when not nil, is the host address chosen
	// at an earlier start, kept so that leases and neighbours stay valid.
	// It may run again on the same transport after a halt or a failed reset.
	start(ctx context.Context, mac net.HardwareAddr) (DeviceInfo, error)
	// watch reads what the device says on its control side until the
	// session ends, and raises the link events it means (halt, medium,
	// keepalive timeout, device gone) on the session.
	watch()
	// reset recovers the function after a timeout without starting it
	// again, where the protocol can (RNDIS RESET); errNoReset where not.
	reset(ctx context.Context) error
	// discard fails the requests in flight, as RNDIS's HALT requires.
	discard()
	// stop tells the device the host is leaving (RNDIS HALT, the data
	// interface of NCM and ECM back to alternate setting 0). It expects no
	// answer.
	stop(ctx context.Context) error
	// framing is how the frames of the last start travel in transfers.
	framing() framing
}

// newFunction returns the function for the protocol of s's transport.
func newFunction(s *session) (function, error) {
	switch p := s.t.Info().Function.Protocol; p {
	case usb.ProtocolRNDIS:
		return newRNDIS(s), nil
	case usb.ProtocolNCM:
		return newCDC(s, true), nil
	case usb.ProtocolECM:
		return newCDC(s, false), nil
	default:
		return nil, fmt.Errorf("%v: no host for protocol %q", s.t.Info(), p)
	}
}
