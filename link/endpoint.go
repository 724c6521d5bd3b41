package link

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/rndis-netd/rndis-netd/internal/framebuf"
)

// rxBufferSize holds the largest bulk-IN transfer, the 16 KiB the host
// offers in INITIALIZE (and NCM's input size) with the short-packet rule's
// extra byte, and the batch of transfers a transport hands over at once
// (rxBatch at most): ten of a device that sends one frame per transfer.
const (
	rxBufferSize = hostMaxTransferSize + 512
	rxBatch      = 16
)

// maxRxErrors consecutive failed bulk-IN reads count as the device gone.
const maxRxErrors = 20

// endpoint is the raw link endpoint of the NIC (frames with their Ethernet
// header); LinkEndpoint wraps it in gVisor's ethernet endpoint. It is the
// same for every protocol: the session's function says how frames travel.
type endpoint struct {
	l          *Link
	dispatcher atomic.Pointer[stack.NetworkDispatcher]
	mtu        atomic.Uint32 // frame MTU: IP MTU + Ethernet header
	mu         sync.Mutex
	deviceMTU  int // IP MTU of the device's last start, capped by Options.MTU
	mtuCap     int // IP MTU the stack asked for (SetMTU), 0 for none
	mac        tcpip.LinkAddress
	onClose    func()
	txq        chan *stack.PacketBuffer
	ready      *level // on while the link is up: queued frames may go

	resendMu sync.Mutex
	resend   []*stack.PacketBuffer // taken from txq by a session that ended before it could send them
}

var _ stack.LinkEndpoint = (*endpoint)(nil)

func newEndpoint(l *Link) *endpoint {
	return &endpoint{l: l, txq: make(chan *stack.PacketBuffer, l.opts.TxQueue), ready: newLevel()}
}

// configure takes what a start of the function negotiated.
func (e *endpoint) configure(info DeviceInfo) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.deviceMTU = info.MTU
	if c := e.l.opts.MTU; c > 0 && c < e.deviceMTU {
		e.deviceMTU = c
	}
	e.setMTULocked()
	e.mac = tcpip.LinkAddress(info.MAC)
}

func (e *endpoint) setMTULocked() {
	mtu := e.deviceMTU
	if e.mtuCap > 0 && e.mtuCap < mtu {
		mtu = e.mtuCap
	}
	e.mtu.Store(uint32(mtu + header.EthernetMinimumSize))
}

func (e *endpoint) MTU() uint32 { return e.mtu.Load() }

// SetMTU caps the IP MTU below what the device allows (a DHCP lease's
// interface MTU, through Stack.SetNICMTU), across later starts of the
// function; it never raises it above the device's. gVisor's ethernet
// endpoint passes the IP MTU down unchanged, while MTU reports the frame's.
func (e *endpoint) SetMTU(mtu uint32) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.mtuCap = int(mtu)
	e.setMTULocked()
}

func (e *endpoint) MaxHeaderLength() uint16 { return 0 }

func (e *endpoint) LinkAddress() tcpip.LinkAddress {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.mac
}

func (e *endpoint) SetLinkAddress(addr tcpip.LinkAddress) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.mac = addr
}

func (e *endpoint) Capabilities() stack.LinkEndpointCapabilities { return 0 }

func (e *endpoint) Attach(d stack.NetworkDispatcher) {
	if d == nil {
		e.dispatcher.Store(nil)
		return
	}
	e.dispatcher.Store(&d)
}

func (e *endpoint) IsAttached() bool                        { return e.dispatcher.Load() != nil }
func (e *endpoint) Wait()                                   {}
func (e *endpoint) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareNone }
func (e *endpoint) AddHeader(*stack.PacketBuffer)           {}
func (e *endpoint) ParseHeader(*stack.PacketBuffer) bool    { return true }

func (e *endpoint) SetOnCloseAction(fn func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.onClose = fn
}

// Close is called by the stack when the NIC is removed; the link itself is
// closed with Link.Close.
func (e *endpoint) Close() {
	e.mu.Lock()
	fn := e.onClose
	e.mu.Unlock()
	if fn != nil {
		fn()
	}
}

// WritePackets queues frames for bulk OUT and never blocks: gVisor calls it
// from the receive path too (ARP, NDP and ICMP replies are written from
// inside DeliverNetworkPacket), so waiting here for a slow bulk OUT would
// stall bulk IN. A frame that finds the queue full is dropped and counted,
// as gVisor's own endpoints drop; TCP sends it again.
//
// While the link is down, frames wait in the queue for it to come back
// rather than being dropped: TCP then sees an outage as a delay, not as
// the loss of the newest segments of its flight, a loss gVisor's RACK
// recovers from one or two segments per retransmission timeout. Once the
// link is closed every frame is dropped and counted.
func (e *endpoint) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	n := 0
	closed := e.l.ctx.Err() != nil
	for _, pkt := range pkts.AsSlice() {
		n++
		if closed {
			e.l.stats.txLinkDown.Add(1)
			continue
		}
		pkt.IncRef()
		select {
		case e.txq <- pkt:
		default:
			pkt.DecRef()
			e.l.stats.txQueueFull.Add(1)
		}
	}
	if !closed && e.l.ctx.Err() != nil {
		e.discardQueued() // the link closed meanwhile: nothing will send them
	}
	return n, nil
}

// discardQueued drops the frames still waiting for bulk OUT (link closed).
func (e *endpoint) discardQueued() {
	e.resendMu.Lock()
	kept := e.resend
	e.resend = nil
	e.resendMu.Unlock()
	for _, pkt := range kept {
		pkt.DecRef()
		e.l.stats.txLinkDown.Add(1)
	}
	for {
		select {
		case pkt := <-e.txq:
			pkt.DecRef()
			e.l.stats.txLinkDown.Add(1)
		default:
			return
		}
	}
}

// transmit packs queued frames into bulk-OUT transfers within the
// function's limits, as many as are waiting and fit, while the link is up.
// It holds a transfer's frames until its write returns: the frames of a
// write that failed because the link went down are sent again once it is
// back up, after a new start of the function or a new session. The device
// may have taken some of them before it went: the peer's TCP discards the
// duplicates, and IP allows them.
func (e *endpoint) transmit(s *session) {
	var w frameWriter
	var current framing
	// taken holds the frames taken from txq (or left by an ended session)
	// and not yet sent, in order: a transfer's frames are its first ones.
	taken := e.takeResend()
	defer func() { e.keepForResend(taken) }()
	for {
		select {
		case <-e.ready.wait():
		case <-s.ctx.Done():
			return
		}
		if len(taken) == 0 {
			select {
			case pkt := <-e.txq:
				taken = append(taken, pkt)
			case <-s.ctx.Done():
				return
			}
		}
		if f := s.fn.framing(); w == nil || f != current {
			current, w = f, f.newWriter()
		}
		w.reset()
		packed, bytes := 0, 0
		for {
			if packed == len(taken) {
				select {
				case pkt := <-e.txq:
					taken = append(taken, pkt)
				default:
				}
				if packed == len(taken) {
					break // nothing more waits
				}
			}
			n, ok, err := e.add(w, taken[packed])
			if err != nil {
				e.l.stats.txTooLarge.Add(1)
				taken[packed].DecRef()
				taken = slices.Delete(taken, packed, packed+1)
				continue
			}
			if !ok {
				break // full: the next frame starts the next transfer
			}
			packed++
			bytes += n
		}
		sent, err := e.flush(s, w, bytes)
		if sent {
			for _, pkt := range taken[:packed] {
				pkt.DecRef()
			}
			taken = slices.Delete(taken, 0, packed)
		}
		if isGone(err) {
			<-s.ctx.Done() // the session ends; a later one sends what is left
			return
		}
	}
}

// takeResend returns the frames an ended session took from the queue and
// could not send.
func (e *endpoint) takeResend() []*stack.PacketBuffer {
	e.resendMu.Lock()
	defer e.resendMu.Unlock()
	kept := e.resend
	e.resend = nil
	return kept
}

// keepForResend keeps the frames a session took from the queue and could
// not send, for the next session to send first.
func (e *endpoint) keepForResend(taken []*stack.PacketBuffer) {
	e.resendMu.Lock()
	defer e.resendMu.Unlock()
	e.resend = append(taken, e.resend...)
}

// add copies pkt into the transfer and returns the bytes it added; false
// means the transfer is full. An error means pkt is larger than the
// function can carry.
func (e *endpoint) add(w frameWriter, pkt *stack.PacketBuffer) (int, bool, error) {
	dst, ok, err := w.reserve(pkt.Size())
	if err != nil || !ok {
		return 0, false, err
	}
	framebuf.CopyTo(dst, pkt)
	if c := e.l.opts.Capture; c != nil {
		c.WriteFrame(time.Now(), dst)
	}
	return len(dst), true, nil
}

// flush sends the transfer w holds, of frame bytes in all. It reports
// whether the transfer's frames are done with, sent or dropped: not when
// the link is down or went down, when they are to be sent again once it
// is back up.
func (e *endpoint) flush(s *session, w frameWriter, bytes int) (bool, error) {
	frames := w.count()
	if frames == 0 {
		return true, nil
	}
	if !e.l.isUp() {
		return false, nil
	}
	if err := s.t.WriteBulk(s.ctx, w.transfer()); err != nil {
		e.countStall(err)
		if isGone(err) {
			s.raise(CauseDeviceGone, err)
			return false, err
		}
		if !e.l.isUp() {
			return false, err
		}
		e.l.stats.txErrors.Add(uint64(frames))
		return true, err
	}
	e.l.stats.txTransfers.Add(1)
	e.l.stats.txBatches[batchBucket(frames)].Add(1)
	e.l.stats.txFrames.Add(uint64(frames))
	e.l.stats.txBytes.Add(uint64(bytes))
	return true, nil
}

// countStall counts a bulk endpoint the device stalled (and the transport
// cleared) as a fault of the device's.
func (e *endpoint) countStall(err error) {
	if isStall(err) {
		e.l.stats.stalls.Add(1)
	}
}

// receive reads bulk-IN transfers into the free space of a slab and hands
// each frame to the netstack in views of its own: its headers copied, a
// large payload referenced where the transfer put it (framebuf.Receiver).
func (e *endpoint) receive(s *session) {
	var rx framebuf.Receiver
	defer rx.Release()
	var r frameReader
	var current framing
	var sizes [rxBatch]int
	errs := 0
	for {
		buf := rx.Space(rxBufferSize)[:rxBufferSize]
		n, err := s.t.ReadBulk(s.ctx, buf, sizes[:])
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			e.l.stats.rxErrors.Add(1)
			e.countStall(err)
			if errs++; isGone(err) || errs >= maxRxErrors {
				s.raise(CauseDeviceGone, err)
				return
			}
			e.l.log.Debug("bulk IN", "err", err)
			continue
		}
		errs = 0
		s.heard()
		if f := s.fn.framing(); r == nil || f != current {
			current, r = f, f.newReader()
		}
		off := 0
		for _, size := range sizes[:n] {
			if size == 0 {
				e.l.stats.rxEmpty.Add(1)
				continue
			}
			e.deliver(r, buf[off:off+size], off, &rx)
			off += size
		}
	}
}

// deliver hands the frames of one transfer, which begins base bytes into
// the receiver's space, to the netstack.
func (e *endpoint) deliver(r frameReader, transfer []byte, base int, rx *framebuf.Receiver) {
	e.l.stats.rxTransfers.Add(1)
	d := e.dispatcher.Load()
	r.reset(transfer)
	frames := 0
	defer func() { e.l.stats.rxBatches[batchBucket(frames)].Add(1) }()
	mtu := int(e.mtu.Load())
	for frame, ok := r.next(); ok; frame, ok = r.next() {
		frames++
		switch {
		case len(frame) < header.EthernetMinimumSize:
			e.l.stats.rxRunt.Add(1)
			continue
		case len(frame) > mtu:
			e.l.stats.rxOversize.Add(1)
			continue
		}
		if d == nil || !e.l.isUp() {
			e.l.stats.rxLinkDown.Add(1)
			continue
		}
		if c := e.l.opts.Capture; c != nil {
			c.WriteFrame(time.Now(), frame)
		}
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: rx.MakeInPlace(frame, base+r.offset())})
		(*d).DeliverNetworkPacket(0, pkt)
		pkt.DecRef()
		e.l.stats.rxFrames.Add(1)
		e.l.stats.rxBytes.Add(uint64(len(frame)))
	}
	switch err := r.err(); {
	case err != nil:
		e.l.stats.rxMalformed.Add(1)
		e.l.log.Debug("malformed bulk-IN transfer", "err", err)
	case frames == 0:
		e.l.stats.rxEmpty.Add(1) // well formed, and no frame in it (an NCM block whose first entry ends its list)
	}
}
