package sim

import (
	"context"
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

	"github.com/rndis-netd/rndis-netd/ncm"
	"github.com/rndis-netd/rndis-netd/rndis"
	"github.com/rndis-netd/rndis-netd/usb"
)

// Stats counts what the phone saw. Tests read it to check the host.
type Stats struct {
	// RNDIS.
	HostHalts          int // REMOTE_NDIS_HALT_MSGs received from the host
	HostResets         int
	HostKeepAlives     int
	KeepAliveCompletes int // KEEPALIVE_CMPLTs answering the phone's own KEEPALIVEs
	Initializes        int
	MalformedCommands  int

	// PacketFilter is the packet filter in force: RNDIS's
	// OID_GEN_CURRENT_PACKET_FILTER as the host set it; NCM's and ECM's
	// SET_ETHERNET_PACKET_FILTER, which every selection of alternate
	// setting 1 resets to 0x0F (everything), as f_ncm and f_ecm do.
	PacketFilter uint32
	Stalls       int // requests the phone stalled

	// CDC-NCM and CDC-ECM.
	SetInterfaces int        // SET_INTERFACE requests for the data interface
	DataAlt       int        // its alternate setting now
	NTBFormat     ncm.Format // NCM: the format SET_NTB_FORMAT chose, in force now
	NTBInputSize  int        // NCM: the largest NTB to the host, SET_NTB_INPUT_SIZE's or the default, now
	CRC           bool       // NCM: SET_CRC_MODE asked for CRCs, in force now
	NTBsFromHost  int        // NCM: blocks received (a transfer may hold several)
	// BulkWhileInactive counts bulk transfers the host began while the data
	// interface was at alternate setting 0, which has no bulk endpoints (a
	// real device's host fails them: ENOENT from usbfs).
	BulkWhileInactive int

	FramesFromHost     int
	TransfersFromHost  int
	MaxPacketsFromHost int // most packets the host put in one transfer (NCM: in one NTB)
	LimitViolations    int // host transfers that broke the phone's limits (dropped)
	DroppedFromHost    int // frames that arrived while the data path was down

	FramesToHost     int
	TransfersToHost  int
	MaxPacketsToHost int
	DroppedToHost    int // frames the phone's stack sent while the data path was down, or its filter refused
}

// Phone is a simulated tethering phone. It is an usb.Opener: Open returns a
// Transport while the phone is plugged in.
type Phone struct {
	cfg   Config
	stack *stack.Stack
	nic   *channel.Endpoint // the phone's side of its network function

	mu        sync.Mutex
	fn        function
	rndis     *rndisFunction // fn, when the phone speaks RNDIS
	plugged   bool
	conn      *conn // the current plug, nil when unplugged
	media     bool  // media connected: the phone's network is up
	wake      chan struct{}
	pending   *stack.PacketBuffer // a frame that did not fit the last transfer
	faults    faults
	stats     Stats
	services  *services
	filterSet chan struct{} // the host set its packet filter or started the data path: time for an RA
	done      chan struct{}
	raDone    chan struct{}
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
	p := &Phone{cfg: cfg, plugged: true, media: true, wake: make(chan struct{}, 1),
		filterSet: make(chan struct{}, 1), done: make(chan struct{}), raDone: make(chan struct{})}
	fn, err := newFunction(p)
	if err != nil {
		return nil, err
	}
	p.fn = fn
	p.rndis, _ = fn.(*rndisFunction)
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
	p.fn.configure()
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
		p.fn.release(true)
	}
	p.resetLocked()
}

// Replug plugs the phone back in, unconfigured.
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
		p.fn.release(false)
		p.resetLocked()
	}
}

// resetLocked drops what the phone holds for the host and brings its
// network back up. The function resets its own state.
func (p *Phone) resetLocked() {
	p.media = true
	p.dropQueuedLocked()
}

// dropQueuedLocked drops the frames waiting for the host: the one left
// over from the last transfer and the queue.
func (p *Phone) dropQueuedLocked() {
	if p.pending != nil {
		p.pending.DecRef()
		p.pending = nil
	}
	p.nic.Drain()
}

// hungLocked reports whether the phone answers nothing on the control
// pipe: SetSilent on an NCM or ECM phone, whose requests are answered by
// the device (the RNDIS phone takes its commands and answers none).
func (p *Phone) hungLocked() bool { return p.faults.silent && p.rndis == nil }

// dataReadyLocked reports whether frames may flow.
func (p *Phone) dataReadyLocked() bool {
	return p.fn.dataReady() && p.media && !p.faults.silent
}

// wakeLocked tells a host waiting on the interrupt endpoint to look again.
func (p *Phone) wakeLocked() {
	select {
	case p.wake <- struct{}{}:
	default: // it will look anyway
	}
}

// SetMedia takes the phone's network down or brings it back, on every
// protocol: RNDIS indicates MEDIA_DISCONNECT or MEDIA_CONNECT; NCM and ECM
// send NETWORK_CONNECTION 0 or 1 (with CONNECTION_SPEED_CHANGE, as f_ncm and
// f_ecm do) while the data interface is active. No frame moves while it is
// down.
func (p *Phone) SetMedia(connected bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.setMediaLocked(connected)
}

func (p *Phone) setMediaLocked(connected bool) {
	p.media = connected
	if !connected {
		p.nic.Drain()
	}
	p.fn.setMedia(connected)
}

// Halt sends a device-initiated REMOTE_NDIS_HALT_MSG and drops back to the
// uninitialized state, discarding outstanding responses and packets. NCM
// and ECM have no such message: on their phones Halt does nothing.
func (p *Phone) Halt() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rndis == nil {
		return
	}
	p.rndis.reset()
	p.resetLocked()
	p.rndis.queue(rndis.Halt{RequestID: p.rndis.nextRID()})
}

// IndicateStatus sends INDICATE_STATUS with status. MEDIA_DISCONNECT stops
// the data path until MEDIA_CONNECT. NCM and ECM have no indications: on
// their phones the two media statuses act as SetMedia and any other status
// does nothing.
func (p *Phone) IndicateStatus(status rndis.Status) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch status {
	case rndis.StatusMediaDisconnect:
		p.setMediaLocked(false)
	case rndis.StatusMediaConnect:
		p.setMediaLocked(true)
	}
	if p.rndis != nil && status != rndis.StatusMediaDisconnect && status != rndis.StatusMediaConnect {
		p.rndis.queue(rndis.IndicateStatus{Status: status})
	}
}

// SendKeepAlive sends a device KEEPALIVE; Stats.KeepAliveCompletes counts
// the host's answers. RNDIS only: on NCM and ECM phones it does nothing.
func (p *Phone) SendKeepAlive() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rndis != nil {
		p.rndis.queue(rndis.KeepAlive{RequestID: p.rndis.nextRID()})
	}
}

// SetSilent makes the phone hang (or come back): it moves no frame either
// way, and answers no control message (RNDIS: commands are taken and never
// answered; NCM and ECM: requests, SET_INTERFACE included, and
// notifications wait until the host gives up), as a device whose firmware
// stalled.
func (p *Phone) SetSilent(silent bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults.silent = silent
	p.wakeLocked()
}

// CorruptControl corrupts the next n RNDIS control responses (a
// MessageLength beyond the transfer). NCM and ECM answer no messages; on
// their phones it does nothing.
func (p *Phone) CorruptControl(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults.corruptControl = n
}

// TruncateControl cuts the next n RNDIS control responses to 6 bytes. On
// NCM and ECM phones it does nothing.
func (p *Phone) TruncateControl(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults.truncateControl = n
}

// CorruptBulk corrupts the next n transfers to the host: RNDIS, a
// DataLength running past the message; NCM, a wBlockLength past the
// transfer; ECM, a frame cut to a 6-byte runt.
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
