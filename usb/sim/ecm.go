package sim

import (
	"errors"
	"fmt"

	"github.com/rndis-netd/rndis-netd/ncm"
	"github.com/rndis-netd/rndis-netd/usb"
)

// ecmFunction is the phone's CDC-ECM function, as Linux's f_ecm presents
// it: one frame per transfer each way, SET_ETHERNET_PACKET_FILTER the only
// class request.
type ecmFunction struct {
	cdcFunction
	packer ecmPacker
}

var _ function = (*ecmFunction)(nil)

// rxExtra is what u_ether's OUT request holds beyond a frame of the MTU
// (RX_EXTRA): a longer transfer overflows it.
const rxExtra = 20

// errNoBlock: no transfer the host's buffer holds can carry the frame.
var errNoBlock = errors.New("the host's buffer holds no transfer of the negotiated kind")

func newECM(p *Phone) (*ecmFunction, error) {
	cfg := p.cfg
	switch {
	case maxSegmentSize(cfg) < cfg.MTU+14:
		return nil, fmt.Errorf("sim: %s: ECM wMaxSegmentSize %d cannot carry the %d-byte MTU", cfg.Name, maxSegmentSize(cfg), cfg.MTU)
	case notifyMaxPacket(cfg, 16) < ncm.NotificationHeaderSize:
		return nil, fmt.Errorf("sim: %s: ECM interrupt endpoint of %d bytes cannot carry a notification's header", cfg.Name, cfg.NotifyMaxPacket)
	}
	e := &ecmFunction{cdcFunction: newCDC(p, usb.ECMClass,
		[2]ncm.NotificationCode{ncm.NotifyNetworkConnection, ncm.NotifyConnectionSpeedChange})}
	e.packer.e = e
	return e, nil
}

// control serves SET_ETHERNET_PACKET_FILTER, the only request f_ecm's
// ecm_setup takes; it stalls anything else.
func (e *ecmFunction) control(s usb.Setup, data []byte) (int, error) {
	if e.p.hungLocked() {
		return 0, errNoAnswer
	}
	if classRequest(s) && s.RequestType != classIn && s.Request == ncm.RequestSetEthernetPacketFilter {
		return e.filterRequest(s, data)
	}
	return 0, e.p.stall("%v with %d bytes", s, len(data))
}

// ecmPacker puts one frame in each transfer to the host.
type ecmPacker struct {
	e   *ecmFunction
	out []byte
	n   int
}

func (e *ecmFunction) tx() txFramer { return &e.packer }

func (k *ecmPacker) begin(buf []byte) { k.out, k.n = buf, 0 }

func (k *ecmPacker) count() int {
	if k.n > 0 {
		return 1
	}
	return 0
}

func (k *ecmPacker) reserve(n int) ([]byte, bool, error) {
	switch {
	case n > maxSegmentSize(k.e.p.cfg) || n >= len(k.out):
		return nil, false, errNoBlock
	case k.n > 0:
		return nil, false, nil
	}
	k.n = n
	return k.out[:n], true, nil
}

// finish applies u_ether's short-packet rule: a zero-length packet after a
// frame that fills whole packets, or without them one more byte.
func (k *ecmPacker) finish(corrupt bool) int {
	n := k.n
	if corrupt {
		n = min(n, 6) // a runt
	}
	if k.e.p.cfg.NoZeroLengthPackets && usb.ShortPacketPad(n, k.e.p.cfg.BulkMaxPacket) > 0 {
		k.out[n] = 0
		n++
	}
	return n
}

// fromHost takes one frame per transfer, as f_ecm does, into an OUT request
// of a frame of the MTU and RX_EXTRA: a longer transfer overflows it, one
// that fills whole packets does not end it (it merges with the next), an
// empty one or one shorter than an Ethernet header is a length error. A
// zero byte the host appends for the short-packet rule stays at the frame's
// end, as it does on f_ecm: IP ignores it.
func (e *ecmFunction) fromHost(data []byte, frames [][]byte) (_ [][]byte, violation bool) {
	cfg := e.p.cfg
	if len(data) < 14 || len(data) > 14+cfg.MTU+rxExtra || len(data)%cfg.BulkMaxPacket == 0 {
		return frames, true
	}
	e.p.stats.MaxPacketsFromHost = max(e.p.stats.MaxPacketsFromHost, 1)
	return append(frames, data), false
}
