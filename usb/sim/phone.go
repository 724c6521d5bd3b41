package sim

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/rndis-netd/rndis-netd/rndis"
	"github.com/rndis-netd/rndis-netd/usb"
)

// Stats counts what the phone saw. Tests read it to check the host.
type Stats struct {
	HostHalts          int // REMOTE_NDIS_HALT_MSGs received from the host
	HostResets         int
	HostKeepAlives     int
	KeepAliveCompletes int // KEEPALIVE_CMPLTs answering the phone's own KEEPALIVEs
	Initializes        int
	PacketFilter       uint32

	FramesFromHost     int
	TransfersFromHost  int
	MaxPacketsFromHost int // most packets the host put in one transfer
	LimitViolations    int // host transfers that broke the phone's limits (dropped)
	DroppedFromHost    int // frames that arrived while the data path was down

	FramesToHost      int
	TransfersToHost   int
	MaxPacketsToHost  int
	DroppedToHost     int // frames the phone's stack sent while the data path was down
	MalformedCommands int
}

// Phone is a simulated RNDIS device. It is an usb.Opener: Open returns a
// Transport while the phone is plugged in.
type Phone struct {
	cfg   Config
	stack *stack.Stack
	nic   *channel.Endpoint // the phone's side of its RNDIS function

	mu          sync.Mutex
	plugged     bool
	conn        *conn // the current plug, nil when unplugged
	initialized bool
	filter      uint32
	media       bool // media connected
	hostMaxXfer int  // the host's MaxTransferSize from INITIALIZE
	responses   [][]byte
	notify      chan struct{}
	nextRID     uint32
	pending     *stack.PacketBuffer // a frame that did not fit the last transfer
	faults      faults
	stats       Stats
	services    *services
	filterSet   chan struct{} // the host set its packet filter: time for an RA
	done        chan struct{}
	raDone      chan struct{}
}

type faults struct {
	silent          bool // hung: answer no control message, move no frame
	corruptControl  int  // corrupt the next n responses
	truncateControl int  // truncate the next n responses
	corruptBulk     int  // corrupt the next n transfers to the host
	dropToHost      int  // drop the next n frames to the host
}

// New starts a phone, plugged in, with its netstack and services running.
func New(cfg Config) (*Phone, error) {
	if cfg.MaxTransferSize < rndis.PacketHeaderSize+cfg.MTU+14 || cfg.MaxPacketsPerTransfer < 1 {
		return nil, fmt.Errorf("sim: %s: MaxTransferSize %d / MaxPacketsPerTransfer %d cannot carry a %d-byte MTU",
			cfg.Name, cfg.MaxTransferSize, cfg.MaxPacketsPerTransfer, cfg.MTU)
	}
	p := &Phone{cfg: cfg, plugged: true, media: true, notify: make(chan struct{}, 64),
		filterSet: make(chan struct{}, 1), done: make(chan struct{}), raDone: make(chan struct{})}
	if err := p.startStack(); err != nil {
		return nil, err
	}
	svc, err := startServices(p)
	if err != nil {
		p.stack.Close()
		return nil, err
	}
	p.services = svc
	go func() {
		defer close(p.raDone)
		p.advertiseLoop(p.filterSet, p.done)
	}()
	return p, nil
}

// Close stops the phone.
func (p *Phone) Close() {
	close(p.done)
	<-p.raDone
	p.Unplug()
	p.services.close()
	p.nic.Close()
	p.stack.Close()
	p.stack.Wait()
}

// Config returns the phone's configuration.
func (p *Phone) Config() Config {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg
}

// Renumber moves the phone's tethering network to another subnet, as a
// phone does when it restarts tethering: new address, DHCP leases
// forgotten (a host asking for its old address gets a NAK).
func (p *Phone) Renumber(subnet netip.Prefix, phone netip.Addr) error {
	p.mu.Lock()
	old := p.cfg.PhoneAddr
	p.cfg.Subnet, p.cfg.PhoneAddr = subnet, phone
	p.mu.Unlock()
	p.stack.RemoveAddress(phoneNIC, tcpip.AddrFrom4(old.As4()))
	if err := p.stack.AddProtocolAddress(phoneNIC, tcpip.ProtocolAddress{
		Protocol:          ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4(phone.As4()), PrefixLen: subnet.Bits()},
	}, stack.AddressProperties{}); err != nil {
		return fmt.Errorf("sim: adding %v: %v", phone, err)
	}
	if d := p.services.dhcp; d != nil {
		d.renumber(subnet, phone)
	}
	p.services.dns.setPhone(phone)
	return nil
}

// Stack returns the phone's netstack, for tests that talk from the phone side.
func (p *Phone) Stack() *stack.Stack { return p.stack }

// Stats returns a copy of the counters.
func (p *Phone) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Open returns a Transport to the phone, or usb.ErrNoDevice while it is
// unplugged.
func (p *Phone) Open(ctx context.Context) (usb.Transport, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.plugged {
		return nil, fmt.Errorf("%w: simulated phone %s is unplugged", usb.ErrNoDevice, p.cfg.Name)
	}
	if p.conn != nil {
		return nil, fmt.Errorf("%w: simulated phone %s is already open", usb.ErrBusy, p.cfg.Name)
	}
	p.conn = newConn(p)
	return p.conn, nil
}

// Unplug makes the phone vanish: every call on its transport fails with
// usb.ErrDeviceGone, and Open fails until Replug.
func (p *Phone) Unplug() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.plugged = false
	if p.conn != nil {
		p.conn.cancel()
		p.conn = nil
	}
	p.resetLocked()
}

// Replug plugs the phone back in, uninitialized.
func (p *Phone) Replug() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.plugged = true
}

// release forgets a closed transport so the phone can be opened again.
func (p *Phone) release(c *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == c {
		p.conn = nil
		p.resetLocked()
	}
}

// resetLocked returns the RNDIS function to its uninitialized state.
func (p *Phone) resetLocked() {
	p.initialized = false
	p.filter = 0
	p.responses = nil
	p.media = true
	if p.pending != nil {
		p.pending.DecRef()
		p.pending = nil
	}
	p.nic.Drain()
}

// dataReady reports whether frames may flow.
func (p *Phone) dataReadyLocked() bool {
	return p.initialized && p.filter != 0 && p.media && !p.faults.silent
}

// Halt sends a device-initiated REMOTE_NDIS_HALT_MSG and drops back to the
// uninitialized state, discarding outstanding responses and packets.
func (p *Phone) Halt() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.resetLocked()
	p.queueLocked(rndis.Halt{RequestID: p.nextRIDLocked()})
}

// IndicateStatus sends INDICATE_STATUS with status. MEDIA_DISCONNECT stops
// the data path until MEDIA_CONNECT.
func (p *Phone) IndicateStatus(status rndis.Status) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch status {
	case rndis.StatusMediaDisconnect:
		p.media = false
		p.nic.Drain()
	case rndis.StatusMediaConnect:
		p.media = true
	}
	p.queueLocked(rndis.IndicateStatus{Status: status})
}

// SendKeepAlive sends a device KEEPALIVE; Stats.KeepAliveCompletes counts
// the host's answers.
func (p *Phone) SendKeepAlive() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.queueLocked(rndis.KeepAlive{RequestID: p.nextRIDLocked()})
}

// SetSilent makes the phone hang (or come back): it answers no control
// message and moves no frame either way, as a device whose firmware stalled.
func (p *Phone) SetSilent(silent bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults.silent = silent
}

// CorruptControl corrupts the next n control responses (a MessageLength
// beyond the transfer); TruncateControl cuts the next n short.
func (p *Phone) CorruptControl(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults.corruptControl = n
}

// TruncateControl cuts the next n control responses to 6 bytes.
func (p *Phone) TruncateControl(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults.truncateControl = n
}

// CorruptBulk corrupts the next n transfers to the host (a DataLength
// running past the message).
func (p *Phone) CorruptBulk(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults.corruptBulk = n
}

// DropToHost drops the next n frames the phone sends to the host.
func (p *Phone) DropToHost(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults.dropToHost = n
}

func (p *Phone) nextRIDLocked() uint32 {
	p.nextRID++
	return 0x10000000 | p.nextRID
}

// queueLocked queues a control message for GET_ENCAPSULATED_RESPONSE and
// signals RESPONSE_AVAILABLE.
func (p *Phone) queueLocked(m rndis.Message) {
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
	p.responses = append(p.responses, b)
	select {
	case p.notify <- struct{}{}:
	default: // the host has notifications pending already
	}
}

// ClaimAddress gives the phone's stack another IPv4 address of its subnet,
// so that it answers ARP for it: a host that probes before using a lease
// finds it taken.
func (p *Phone) ClaimAddress(a netip.Addr) error {
	if err := p.stack.AddProtocolAddress(phoneNIC, tcpip.ProtocolAddress{
		Protocol:          ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4(a.As4()), PrefixLen: 32},
	}, stack.AddressProperties{PEB: stack.NeverPrimaryEndpoint}); err != nil {
		return fmt.Errorf("sim: claiming %v: %v", a, err)
	}
	return nil
}

// DialTCP connects from the phone's side of the tether, for tests of what
// the host exposes.
func (p *Phone) DialTCP(ctx context.Context, to netip.AddrPort) (net.Conn, error) {
	full := tcpip.FullAddress{NIC: phoneNIC, Addr: tcpip.AddrFromSlice(to.Addr().AsSlice()), Port: to.Port()}
	proto := ipv4.ProtocolNumber
	if to.Addr().Is6() {
		proto = ipv6.ProtocolNumber
	}
	return gonet.DialContextTCP(ctx, p.stack, full, proto)
}

// ProbeUDP sends a datagram from the phone's side of the tether to to and
// waits up to timeout: answered when a datagram comes back, refused when
// an ICMP port unreachable does, neither when nothing does.
func (p *Phone) ProbeUDP(to netip.AddrPort, timeout time.Duration) (answered, refused bool, err error) {
	proto := ipv4.ProtocolNumber
	if to.Addr().Is6() {
		proto = ipv6.ProtocolNumber
	}
	var wq waiter.Queue
	ep, terr := p.stack.NewEndpoint(udp.ProtocolNumber, proto, &wq)
	if terr != nil {
		return false, false, fmt.Errorf("sim: %s", terr)
	}
	defer ep.Close()
	entry, events := waiter.NewChannelEntry(waiter.EventIn | waiter.EventErr)
	wq.EventRegister(&entry)
	defer wq.EventUnregister(&entry)
	if terr := ep.Connect(tcpip.FullAddress{NIC: phoneNIC, Addr: tcpip.AddrFromSlice(to.Addr().AsSlice()), Port: to.Port()}); terr != nil {
		return false, false, fmt.Errorf("sim: connecting to %v: %s", to, terr)
	}
	if _, terr := ep.Write(strings.NewReader("rndis-netd probe"), tcpip.WriteOptions{}); terr != nil {
		return false, false, fmt.Errorf("sim: sending to %v: %s", to, terr)
	}
	select {
	case <-events:
	case <-time.After(timeout):
		return false, false, nil
	}
	if _, isRefused := ep.LastError().(*tcpip.ErrConnectionRefused); isRefused {
		return false, true, nil
	}
	return true, false, nil
}
