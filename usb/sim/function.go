package sim

import (
	"errors"
	"fmt"

	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/rndis-netd/rndis-netd/usb"
)

// function is the USB network function the phone presents: RNDIS, CDC-NCM
// or CDC-ECM. It decides the descriptors, how class requests, alternate
// settings and the interrupt endpoint behave, and how frames travel in bulk
// transfers; the phone's netstack, services, fault knobs and plug state are
// the same whatever it is. Every method runs with the phone's mutex held.
type function interface {
	// descriptor is the function as the host's descriptor parsing finds it.
	descriptor() usb.Function
	// configure: the host opened the device (SET_CONFIGURATION).
	configure()
	// release: the host closed the device, or the phone was unplugged.
	release(unplugged bool)
	// control answers a class request of the function; it stalls what the
	// function does not serve, and returns errNoAnswer while it is hung.
	control(s usb.Setup, data []byte) (int, error)
	// setAlternate selects a setting of the data interface.
	setAlternate(alt int) error
	// notification returns the next interrupt-IN transfer, nil when none
	// waits.
	notification() []byte
	// setMedia tells the function that the phone's network went down or
	// came up.
	setMedia(connected bool)
	// dataReady reports whether the function moves frames at all (the
	// phone adds its medium and silence).
	dataReady() bool
	// passes reports whether the function's packet filter lets pkt out to
	// the host.
	passes(pkt *stack.PacketBuffer) bool
	// tx packs the phone's frames into transfers to the host.
	tx() txFramer
	// fromHost appends the frames of a host transfer to frames; violation
	// when the transfer breaks the function's rules, for which a real
	// device drops all of it.
	fromHost(transfer []byte, frames [][]byte) (_ [][]byte, violation bool)
}

// txFramer packs frames into one bulk-IN transfer.
type txFramer interface {
	// begin starts a transfer in buf.
	begin(buf []byte)
	// reserve returns room for an n-byte frame, false when the transfer is
	// full, and an error for a frame no transfer can carry.
	reserve(n int) ([]byte, bool, error)
	count() int
	// finish ends the transfer, damaged when corrupt (CorruptBulk), and
	// returns its length in buf, the device's side of the short-packet rule
	// applied.
	finish(corrupt bool) int
}

// errNoAnswer: the function is hung (SetSilent) and answers nothing; the
// request waits until the host gives up.
var errNoAnswer = errors.New("no answer")

// newFunction returns the function cfg asks for, or why cfg cannot work.
func newFunction(p *Phone) (function, error) {
	switch p.cfg.Protocol {
	case usb.ProtocolRNDIS, "":
		return newRNDIS(p)
	case usb.ProtocolNCM:
		return newNCM(p)
	case usb.ProtocolECM:
		return newECM(p)
	}
	return nil, fmt.Errorf("sim: %s: no protocol %q (want rndis, ncm or ecm)", p.cfg.Name, p.cfg.Protocol)
}

// stall is the error of a request the phone stalls, counted.
func (p *Phone) stall(format string, args ...any) error {
	p.stats.Stalls++
	return fmt.Errorf("simulated phone %s: %s: %w", p.cfg.Name, fmt.Sprintf(format, args...), usb.ErrStall)
}
