package link

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/rndis-netd/rndis-netd/internal/framebuf"
	"github.com/rndis-netd/rndis-netd/rndis"
	"github.com/rndis-netd/rndis-netd/usb"
)

// rxBufferSize holds the largest bulk-IN transfer, the 16 KiB the host
// offers in INITIALIZE and the short-packet rule's extra byte, and the
// batch of transfers a transport hands over at once (rxBatch at most): ten
// of a device that sends one frame per transfer.
const (
	rxBufferSize = hostMaxTransferSize + 512
	rxBatch      = 16
)

// maxRxErrors consecutive failed bulk-IN reads count as the device gone.
const maxRxErrors = 20

// endpoint is the raw link endpoint of the NIC (frames with their Ethernet
// header); LinkEndpoint wraps it in gVisor's ethernet endpoint.
type endpoint struct {
	l          *Link
	dispatcher atomic.Pointer[stack.NetworkDispatcher]
	mtu        atomic.Uint32 // frame MTU: IP MTU + Ethernet header
	limits     atomic.Pointer[rndis.PacketLimits]
	mu         sync.Mutex
	mac        tcpip.LinkAddress
	onClose    func()
	txq        chan *stack.PacketBuffer
}

var _ stack.LinkEndpoint = (*endpoint)(nil)

func newEndpoint(l *Link) *endpoint {
	return &endpoint{l: l, txq: make(chan *stack.PacketBuffer, l.opts.TxQueue)}
}

func (e *endpoint) configure(info DeviceInfo) {
	mtu := info.MTU
	if cap := e.l.opts.MTU; cap > 0 && cap < mtu {
		mtu = cap
	}
	e.mtu.Store(uint32(mtu + header.EthernetMinimumSize))
	limits := info.Limits
	e.limits.Store(&limits)
	e.mu.Lock()
	e.mac = tcpip.LinkAddress(info.MAC)
	e.mu.Unlock()
}

func (e *endpoint) MTU() uint32       { return e.mtu.Load() }
func (e *endpoint) SetMTU(mtu uint32) {} // the device decides
func (e *endpoint) MaxHeaderLength() uint16 {
	return 0
}
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

// WritePackets queues frames for bulk OUT. While the queue is full it waits
// (back-pressure); while the link is down it drops and counts.
func (e *endpoint) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	gate := e.l.gateChan()
	n := 0
	for _, pkt := range pkts.AsSlice() {
		n++
		if !e.l.isUp() {
			e.l.stats.txLinkDown.Add(1)
			continue
		}
		pkt.IncRef()
		select {
		case e.txq <- pkt:
		case <-gate:
			pkt.DecRef()
			e.l.stats.txLinkDown.Add(1)
		}
	}
	return n, nil
}

// discardQueued drops the frames waiting for bulk OUT (link down).
func (e *endpoint) discardQueued() {
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

// transmit packs queued frames into bulk-OUT transfers within the device's
// limits: as many as are waiting and fit.
func (e *endpoint) transmit(s *session) {
	var w *rndis.PacketWriter
	var limits rndis.PacketLimits
	var held *stack.PacketBuffer // the frame that did not fit the last transfer
	defer func() {
		if held != nil {
			held.DecRef()
		}
	}()
	for {
		if held == nil {
			select {
			case held = <-e.txq:
			case <-s.ctx.Done():
				return
			}
		}
		if l := e.limits.Load(); w == nil || *l != limits {
			limits = *l
			w = rndis.NewPacketWriter(make([]byte, 0, limits.MaxTransferSize+1), limits)
		}
		w.Reset()
		for held != nil {
			if !e.add(w, held) {
				break // full: held starts the next transfer
			}
			select {
			case held = <-e.txq:
			default:
				held = nil
			}
		}
		e.flush(s, w)
	}
}

// add copies pkt into the transfer; false means the transfer is full and
// pkt is still the caller's.
func (e *endpoint) add(w *rndis.PacketWriter, pkt *stack.PacketBuffer) bool {
	size := pkt.Size()
	dst, ok, err := w.Reserve(size)
	if err != nil {
		e.l.stats.txTooLarge.Add(1)
		pkt.DecRef()
		return true
	}
	if !ok {
		return false
	}
	framebuf.CopyTo(dst, pkt)
	pkt.DecRef()
	if c := e.l.opts.Capture; c != nil {
		c.WriteFrame(time.Now(), dst)
	}
	return true
}

func (e *endpoint) flush(s *session, w *rndis.PacketWriter) {
	if w.Count() == 0 {
		return
	}
	if !e.l.isUp() {
		e.l.stats.txLinkDown.Add(uint64(w.Count()))
		return
	}
	transfer := w.Bytes()
	if usb.ShortPacketPad(len(transfer), s.t.Info().Function.BulkOut.MaxPacketSize) > 0 {
		transfer = append(transfer, 0) // within the writer's buffer, which has room for it
	}
	if err := s.t.WriteBulk(s.ctx, transfer); err != nil {
		e.l.stats.txErrors.Add(uint64(w.Count()))
		if errors.Is(err, usb.ErrDeviceGone) {
			s.raise(CauseDeviceGone, err)
		}
		return
	}
	e.l.stats.txTransfers.Add(1)
	e.l.stats.txBatches[batchBucket(w.Count())].Add(1)
	e.l.stats.txFrames.Add(uint64(w.Count()))
	e.l.stats.txBytes.Add(uint64(len(w.Bytes()) - w.Count()*rndis.PacketHeaderSize))
}

// receive reads bulk-IN transfers into the free space of a slab and hands
// each frame to the netstack in views of its own: its headers copied, a
// large payload referenced where the transfer put it (framebuf.Receiver).
func (e *endpoint) receive(s *session) {
	var rx framebuf.Receiver
	defer rx.Release()
	errs := 0
	var sizes [rxBatch]int
	for {
		buf := rx.Space(rxBufferSize)[:rxBufferSize]
		n, err := s.t.ReadBulk(s.ctx, buf, sizes[:])
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			e.l.stats.rxErrors.Add(1)
			if errs++; errors.Is(err, usb.ErrDeviceGone) || errs >= maxRxErrors {
				s.raise(CauseDeviceGone, err)
				return
			}
			e.l.log.Debug("bulk IN", "err", err)
			continue
		}
		errs = 0
		s.heard()
		off := 0
		for _, size := range sizes[:n] {
			if size == 0 {
				e.l.stats.rxEmpty.Add(1)
				continue
			}
			e.deliver(buf[off:off+size], off, &rx)
			off += size
		}
	}
}

// deliver hands the frames of one transfer, which begins base bytes into
// the receiver's space, to the netstack.
func (e *endpoint) deliver(transfer []byte, base int, rx *framebuf.Receiver) {
	e.l.stats.rxTransfers.Add(1)
	d := e.dispatcher.Load()
	r := rndis.NewPacketReader(transfer)
	frames := 0
	defer func() { e.l.stats.rxBatches[batchBucket(frames)].Add(1) }()
	mtu := int(e.mtu.Load())
	for frame, ok := r.Next(); ok; frame, ok = r.Next() {
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
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: rx.MakeInPlace(frame, base+r.Offset())})
		(*d).DeliverNetworkPacket(0, pkt)
		pkt.DecRef()
		e.l.stats.rxFrames.Add(1)
		e.l.stats.rxBytes.Add(uint64(len(frame)))
	}
	if err := r.Err(); err != nil {
		e.l.stats.rxMalformed.Add(1)
		e.l.log.Debug("malformed bulk-IN transfer", "err", err)
	}
}
