package sim

import (
	"encoding/binary"
	"fmt"

	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/rndis-netd/rndis-netd/rndis"
	"github.com/rndis-netd/rndis-netd/usb"
)

// rndisFunction is the phone's RNDIS function, as Linux's f_rndis and
// Android phones present it: control messages through
// SEND_ENCAPSULATED_COMMAND and GET_ENCAPSULATED_RESPONSE, each response
// announced by RESPONSE_AVAILABLE, and PACKET_MSGs on the bulk pipes.
type rndisFunction struct {
	p           *Phone
	initialized bool
	filter      uint32
	hostMaxXfer int // the host's MaxTransferSize from INITIALIZE
	responses   [][]byte
	available   int // RESPONSE_AVAILABLE notifications the host has not read
	nextID      uint32
	packer      rndisPacker
}

var _ function = (*rndisFunction)(nil)

// maxAvailable bounds the RESPONSE_AVAILABLE notifications waiting: a
// device's interrupt endpoint holds few, and one is enough to make the host
// read every response.
const maxAvailable = 64

func newRNDIS(p *Phone) (*rndisFunction, error) {
	cfg := p.cfg
	if cfg.MaxTransferSize < rndis.PacketHeaderSize+cfg.MTU+14 || cfg.MaxPacketsPerTransfer < 1 {
		return nil, fmt.Errorf("sim: %s: MaxTransferSize %d / MaxPacketsPerTransfer %d cannot carry a %d-byte MTU",
			cfg.Name, cfg.MaxTransferSize, cfg.MaxPacketsPerTransfer, cfg.MTU)
	}
	r := &rndisFunction{p: p}
	r.packer.r = r
	return r, nil
}

func (r *rndisFunction) descriptor() usb.Function {
	cfg := r.p.cfg
	return usb.Function{
		Protocol: usb.ProtocolRNDIS, Config: 1, Control: usb.Class{Class: 0xE0, SubClass: 0x01, Protocol: 0x03},
		ControlIface: 0, DataIface: 1,
		Notify:  usb.Endpoint{Address: 0x81, Attributes: 3, MaxPacketSize: notifyMaxPacket(cfg, rndis.NotificationSize)},
		BulkIn:  usb.Endpoint{Address: 0x82, Attributes: 2, MaxPacketSize: cfg.BulkMaxPacket},
		BulkOut: usb.Endpoint{Address: 0x01, Attributes: 2, MaxPacketSize: cfg.BulkMaxPacket},
	}
}

// notifyMaxPacket is the interrupt endpoint's wMaxPacketSize: the
// configuration's, else def.
func notifyMaxPacket(cfg Config, def int) int {
	if cfg.NotifyMaxPacket > 0 {
		return cfg.NotifyMaxPacket
	}
	return def
}

func (r *rndisFunction) configure() {}

func (r *rndisFunction) release(unplugged bool) { r.reset() }

// reset returns the function to its uninitialized state.
func (r *rndisFunction) reset() {
	r.initialized = false
	r.filter = 0
	r.responses = nil
}

// control serves the encapsulated commands and responses. Anything else
// it stalls, as a device does a request it does not support.
func (r *rndisFunction) control(s usb.Setup, data []byte) (int, error) {
	switch {
	case s == usb.ClassOut(usb.RequestSendEncapsulatedCommand, 0, 0):
		r.command(data)
		return len(data), nil
	case s == usb.ClassIn(usb.RequestGetEncapsulatedResponse, 0, 0):
		return r.response(data)
	}
	return 0, r.p.stall("%v", s)
}

// response hands out the oldest queued control response; with none queued
// the phone stalls the request, as Linux's f_rndis does.
func (r *rndisFunction) response(buf []byte) (int, error) {
	if len(r.responses) == 0 {
		return 0, r.p.stall("no response pending")
	}
	m := r.responses[0]
	r.responses = r.responses[1:]
	return copy(buf, m), nil
}

// setAlternate accepts setting 0, the only one an RNDIS data interface has.
func (r *rndisFunction) setAlternate(alt int) error {
	if alt != 0 {
		return r.p.stall("data interface has no alternate setting %d", alt)
	}
	return nil
}

func (r *rndisFunction) notification() []byte {
	if r.available == 0 {
		return nil
	}
	r.available--
	return rndis.ResponseAvailableNotification()
}

func (r *rndisFunction) setMedia(connected bool) {
	status := rndis.StatusMediaConnect
	if !connected {
		status = rndis.StatusMediaDisconnect
	}
	r.queue(rndis.IndicateStatus{Status: status})
}

func (r *rndisFunction) dataReady() bool { return r.initialized && r.filter != 0 }

// passes: the phone applies no RNDIS packet filter to what it sends.
func (r *rndisFunction) passes(*stack.PacketBuffer) bool { return true }

func (r *rndisFunction) nextRID() uint32 {
	r.nextID++
	return 0x10000000 | r.nextID
}

// queue queues a control message for GET_ENCAPSULATED_RESPONSE and
// signals RESPONSE_AVAILABLE.
func (r *rndisFunction) queue(m rndis.Message) {
	p := r.p
	if p.conn == nil {
		return
	}
	b := rndis.Marshal(m)
	switch {
	case p.faults.corruptControl > 0:
		p.faults.corruptControl--
		binary.LittleEndian.PutUint32(b[4:], 0xfffffff0)
	case p.faults.truncateControl > 0:
		p.faults.truncateControl--
		b = b[:6]
	}
	r.responses = append(r.responses, b)
	r.available = min(r.available+1, maxAvailable)
	p.wakeLocked()
}
