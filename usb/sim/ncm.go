package sim

import (
	"fmt"

	"github.com/rndis-netd/rndis-netd/ncm"
	"github.com/rndis-netd/rndis-netd/usb"
)

// ncmFunction is the phone's CDC-NCM function, as Linux's f_ncm (Android's
// NCM tethering) presents it.
type ncmFunction struct {
	cdcFunction
	params ncm.NTBParameters
	caps   ncm.NetworkCapabilities
	// Negotiated: reset whenever the data interface leaves setting 1.
	format         ncm.Format
	crc            bool
	inputSize      int // the largest NTB to the host
	inMaxDatagrams int // wNtbInMaxDatagrams of an 8-byte SET_NTB_INPUT_SIZE; 0: none
	packer         ntbPacker
	reader         ncm.Reader
}

var _ function = (*ncmFunction)(nil)

// servedCapabilities are the bits of bmNetworkCapabilities whose requests
// the phone serves.
const servedCapabilities = ncm.CapEthernetFilter | ncm.CapCRCMode | ncm.CapNTBInputSize8Bytes

// classIn is bmRequestType of a class request reading from an interface.
const classIn = 0xA1

func newNCM(p *Phone) (*ncmFunction, error) {
	cfg := p.cfg
	bad := func(format string, args ...any) (*ncmFunction, error) {
		return nil, fmt.Errorf("sim: %s: NCM %s", cfg.Name, fmt.Sprintf(format, args...))
	}
	params, err := ncm.ParseNTBParameters(cfg.NTBParameters.Marshal())
	switch {
	case err != nil:
		return bad("NTB parameters: %v", err)
	case !params.Supports(ncm.NTB16):
		return bad("NTB parameters offer no NTB16 (formats %#x), which every function supports", params.FormatsSupported)
	case cfg.NCMCapabilities&^servedCapabilities != 0:
		return bad("capabilities %#x: the phone serves only %#x", cfg.NCMCapabilities, servedCapabilities)
	case maxSegmentSize(cfg) < cfg.MTU+14:
		return bad("wMaxSegmentSize %d cannot carry the %d-byte MTU", maxSegmentSize(cfg), cfg.MTU)
	case notifyMaxPacket(cfg, 16) < ncm.NotificationHeaderSize:
		return bad("interrupt endpoint of %d bytes cannot carry a notification's header", cfg.NotifyMaxPacket)
	case cfg.NTBMaxDatagrams < 0:
		return bad("NTBMaxDatagrams %d", cfg.NTBMaxDatagrams)
	}
	for _, f := range []ncm.Format{ncm.NTB16, ncm.NTB32} {
		if !params.Supports(f) {
			continue
		}
		l, err := params.InLimits(f, int(params.InMaxSize), 1)
		if err != nil {
			return bad("%v blocks to the host: %v", f, err)
		}
		if l.MaxFrame(f) < cfg.MTU+14 {
			return bad("%v blocks of %d bytes to the host cannot carry a %d-byte frame", f, l.MaxSize, cfg.MTU+14)
		}
	}
	n := &ncmFunction{cdcFunction: newCDC(p, usb.NCMClass,
		[2]ncm.NotificationCode{ncm.NotifyConnectionSpeedChange, ncm.NotifyNetworkConnection}),
		params: params, caps: cfg.NCMCapabilities}
	n.onDisconnect = n.resetValues
	n.packer.n = n
	n.resetValues()
	return n, nil
}

// resetValues is f_ncm's ncm_reset_values: NTB16, no CRC, blocks of the
// device's own size, no datagram limit from the host, the default filter.
func (n *ncmFunction) resetValues() {
	n.format, n.crc = ncm.NTB16, false
	n.inputSize, n.inMaxDatagrams = int(n.params.InMaxSize), 0
	n.setFilter(defaultFilter)
	n.publish()
}

// publish copies what was negotiated into the stats.
func (n *ncmFunction) publish() {
	s := &n.p.stats
	s.NTBFormat, s.NTBInputSize, s.CRC = n.format, n.inputSize, n.crc
}

// inputSizeLength is the length of SET_NTB_INPUT_SIZE's data the function
// takes: 4, or 8 with CapNTBInputSize8Bytes.
func (n *ncmFunction) inputSizeLength() int {
	if n.caps&ncm.CapNTBInputSize8Bytes != 0 {
		return 8
	}
	return 4
}

// control serves NCM's class requests as f_ncm's ncm_setup does: each only
// in its direction, to the control interface, with the wValue and wLength
// the spec gives it; anything else stalls (GET/SET_NET_ADDRESS and
// GET/SET_MAX_DATAGRAM_SIZE among them, which f_ncm does not offer).
func (n *ncmFunction) control(s usb.Setup, data []byte) (int, error) {
	p := n.p
	if p.hungLocked() {
		return 0, errNoAnswer
	}
	if !classRequest(s) {
		return 0, p.stall("%v", s)
	}
	in := s.RequestType == classIn
	switch {
	case !in && s.Request == ncm.RequestSetEthernetPacketFilter && n.caps&ncm.CapEthernetFilter != 0:
		return n.filterRequest(s, data)
	case in && s.Request == ncm.RequestGetNTBParameters && len(data) > 0 && s.Value == 0:
		return copy(data, n.params.Marshal()), nil
	case in && s.Request == ncm.RequestGetNTBInputSize && len(data) >= n.inputSizeLength() && s.Value == 0:
		b := ncm.NTBInputSize{MaxSize: uint32(n.inputSize), MaxDatagrams: uint16(n.inMaxDatagrams)}.Marshal(n.caps)
		return copy(data, b), nil
	case !in && s.Request == ncm.RequestSetNTBInputSize && len(data) == n.inputSizeLength() && s.Value == 0:
		return n.setInputSize(data)
	case in && s.Request == ncm.RequestGetNTBFormat && len(data) >= 2 && s.Value == 0:
		return copy(data, le.AppendUint16(nil, uint16(n.format))), nil
	case !in && s.Request == ncm.RequestSetNTBFormat && len(data) == 0 && n.params.Supports(ncm.Format(s.Value)):
		// f_ncm takes it at either setting; the next time the data
		// interface leaves setting 1 it is back to NTB16.
		n.format = ncm.Format(s.Value)
		n.publish()
		return 0, nil
	case in && s.Request == ncm.RequestGetCRCMode && len(data) >= 2 && s.Value == 0 && n.caps&ncm.CapCRCMode != 0:
		mode := uint16(ncm.CRCNotAppended)
		if n.crc {
			mode = ncm.CRCAppended
		}
		return copy(data, le.AppendUint16(nil, mode)), nil
	case !in && s.Request == ncm.RequestSetCRCMode && len(data) == 0 && s.Value <= ncm.CRCAppended && n.caps&ncm.CapCRCMode != 0:
		n.crc = s.Value == ncm.CRCAppended
		n.publish()
		return 0, nil
	}
	return 0, p.stall("%v with %d bytes", s, len(data))
}

// setInputSize is SET_NTB_INPUT_SIZE's data stage: a size f_ncm cannot
// send (below 2048 or above its dwNtbInMaxSize) it stalls.
func (n *ncmFunction) setInputSize(data []byte) (int, error) {
	v, err := ncm.ParseNTBInputSize(data)
	if err != nil || v.MaxSize < ncm.MinNTBInputSize || v.MaxSize > n.params.InMaxSize {
		return 0, n.p.stall("SET_NTB_INPUT_SIZE %d: want %d to %d", v.MaxSize, ncm.MinNTBInputSize, n.params.InMaxSize)
	}
	n.inputSize, n.inMaxDatagrams = int(v.MaxSize), int(v.MaxDatagrams)
	n.publish()
	return len(data), nil
}

// negotiated reports the NTB format and input size in force, for the
// hostile device to build its blocks by (see negotiator).
func (c *conn) negotiated() (ncm.Format, int) {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	if n, ok := c.p.fn.(*ncmFunction); ok {
		return n.format, n.inputSize
	}
	return ncm.NTB16, ncm.DefaultNTBSize
}
