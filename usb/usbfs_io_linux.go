package usb

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// URBs in flight per pipe. Bulk IN: at least 32 (Linux's usbnet keeps about
// 44 at high speed), each of 16 KiB, the largest transfer the host offers
// RNDIS devices and a multiple of every bulk wMaxPacketSize, so that most
// transfers take one URB and one reap. Bulk OUT: 16, which the link, packing
// one transfer while others are on the bus, does not outrun. Interrupt: 2,
// so that a notification that follows another at once is not missed, each
// of one wMaxPacketSize, as Linux's usbnet reads them: an interrupt URB
// ends at a short packet or when full, and an 8-byte RNDIS
// RESPONSE_AVAILABLE on an endpoint of 8-byte packets is no short packet,
// so a larger URB would wait for the next notification to complete.
const (
	inURBs     = 32
	outURBs    = 16
	notifyURBs = 2
	bulkURB    = 16384
	notifyURB  = 64 // when the endpoint descriptor gives no wMaxPacketSize
)

// maxErrRun is how many URBs of a pipe in a row may complete with errors
// before the device counts as gone: a device that answers nothing but bus
// errors (EPROTO, EILSEQ, ETIME) is as good as unplugged.
const maxErrRun = 2 * inURBs

// urbPipe is one endpoint's URBs: their structures, buffers and states.
type urbPipe struct {
	name string // "bulk IN 0x81", for errors
	ep   uint8
	typ  uint8
	size int // bytes per URB
	base int // index of its first URB among the transport's
	book *urbBook
	urbs []usbdevfsURB // in urbIO.structs
	bufs []byte        // size bytes per URB, in memory Go does not manage
	wake chan struct{} // a reap came for this pipe (capacity 1)
	err  error         // a SUBMITURB of recycle failed
	k    urbKernel
}

// urbKernel is what the URB I/O asks of usbfs: an open device node
// (usbfsFD), or a test's fake.
type urbKernel interface {
	submit(*usbdevfsURB) error
	discard(*usbdevfsURB) error
	reap() (uintptr, error) // EAGAIN when no URB has completed
	clearHalt(ep uint8) error
}

func (p *urbPipe) urbData(i int) []byte { return p.bufs[i*p.size : (i+1)*p.size] }

// recycle submits the URB fill consumed again; fill's caller holds urbIO.mu.
func (p *urbPipe) recycle(int) {
	if err := p.submit(p.size); err != nil && p.err == nil {
		p.err = err
	}
}

// submit submits an idle URB of n bytes (its buffer already filled for OUT).
func (p *urbPipe) submit(n int) error {
	i, ok := p.book.submitting()
	if !ok {
		return nil
	}
	return p.submitAt(i, n)
}

func (p *urbPipe) submitAt(i, n int) error {
	p.urbs[i] = usbdevfsURB{Type: p.typ, Endpoint: p.ep, Buffer: uintptr(unsafe.Pointer(&p.bufs[i*p.size])),
		BufferLength: int32(n), UserContext: uintptr(p.base + i)}
	if err := p.k.submit(&p.urbs[i]); err != nil {
		p.book.unsubmit(i)
		return err
	}
	return nil
}

// fillAll keeps every idle URB of an IN pipe submitted.
func (p *urbPipe) fillAll() error {
	for p.book.idleCount() > 0 {
		if err := p.submit(p.size); err != nil {
			return err
		}
	}
	return nil
}

func (p *urbPipe) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// urbIO is a transport's asynchronous side: the pipes, the memory of their
// URBs, and the reaper. The reaper waits in Go's poller for the device
// node to be writable, which usbfs reports while completed URBs wait to be
// reaped, reaps them all with REAPURBNDELAY and hands each to its pipe; no
// thread blocks per transfer.
type urbIO struct {
	k     urbKernel
	guard *fdGuard // for the ioctls that may race with Close (discards, clearing a halt)
	info  Info

	mu       sync.Mutex // pipes' books and everything below
	in, out  *urbPipe
	notify   *urbPipe
	pipes    []*urbPipe
	bulkOn   bool  // the data interface is at the setting with the bulk pair
	outErr   int32 // the status of an OUT URB not yet reported
	gone     error // the device went away; every call fails with it from now on
	stopping bool

	notifyBuf []byte // the last notification, valid until the next

	structs    []byte // the URB structures (anonymous mmap)
	buffers    [][]byte
	reaperDone chan struct{}
	goneCh     chan struct{}
	stopCh     chan struct{}
}

// newURBIO sets up the pipes of a function claimed on the device node fd
// (-1 for none), which k submits to and reaps from, and starts the reaper on
// rc, the node in Go's poller.
func newURBIO(k urbKernel, fd int, guard *fdGuard, rc syscall.RawConn, info Info) (*urbIO, error) {
	fn := info.Function
	io := &urbIO{k: k, guard: guard, info: info, bulkOn: fn.Protocol == ProtocolRNDIS,
		reaperDone: make(chan struct{}), goneCh: make(chan struct{}), stopCh: make(chan struct{})}
	specs := []struct {
		pipe **urbPipe
		name string
		ep   Endpoint
		typ  uint8
		n    int
		size int
	}{
		{&io.in, "bulk IN", fn.BulkIn, urbTypeBulk, inURBs, bulkURB},
		{&io.out, "bulk OUT", fn.BulkOut, urbTypeBulk, outURBs, bulkURB},
		{&io.notify, "interrupt IN", fn.Notify, urbTypeInterrupt, notifyURBs, cmp.Or(fn.Notify.MaxPacketSize, notifyURB)},
	}
	total := 0
	for _, s := range specs {
		total += s.n
	}
	var err error
	if io.structs, err = unix.Mmap(-1, 0, total*int(unsafe.Sizeof(usbdevfsURB{})), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS); err != nil {
		return nil, fmt.Errorf("mapping URB memory: %w", err)
	}
	all := unsafe.Slice((*usbdevfsURB)(unsafe.Pointer(&io.structs[0])), total)
	base := 0
	for _, s := range specs {
		bufs, err := mapBuffers(fd, s.n*s.size)
		if err != nil {
			io.unmap()
			return nil, fmt.Errorf("mapping %s buffers: %w", s.name, err)
		}
		io.buffers = append(io.buffers, bufs)
		p := &urbPipe{name: fmt.Sprintf("%s %#02x", s.name, s.ep.Address), ep: s.ep.Address, typ: s.typ, size: s.size,
			base: base, book: newURBBook(s.n), urbs: all[base : base+s.n], bufs: bufs, wake: make(chan struct{}, 1), k: k}
		*s.pipe = p
		io.pipes = append(io.pipes, p)
		base += s.n
	}
	go io.reap(rc)
	return io, nil
}

// mapBuffers maps n bytes for URB buffers: from usbfs itself where the
// kernel offers it, so that it neither allocates a buffer per URB nor
// copies data in and out; else anonymous memory.
func mapBuffers(fd, n int) ([]byte, error) {
	n = (n + unix.Getpagesize() - 1) &^ (unix.Getpagesize() - 1)
	if fd >= 0 {
		if b, err := unix.Mmap(fd, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err == nil {
			return b, nil
		}
	}
	return unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
}

// free waits for the reaper to end, which it does when the device's fd is
// closed, and unmaps the URB memory: the kernel holds no URB any more.
func (io *urbIO) free() {
	<-io.reaperDone
	io.unmap()
}

func (io *urbIO) unmap() {
	for _, b := range io.buffers {
		unix.Munmap(b)
	}
	io.buffers = nil
	if io.structs != nil {
		unix.Munmap(io.structs)
		io.structs = nil
	}
}

// reap runs until the fd is closed or the device is gone.
func (io *urbIO) reap(rc syscall.RawConn) {
	defer close(io.reaperDone)
	var fatal error
	err := rc.Write(func(uintptr) bool {
		for {
			addr, err := io.k.reap()
			switch err {
			case nil:
				if err := io.complete(addr); err != nil {
					fatal = err
					return true
				}
				continue
			case unix.EAGAIN:
				return false // wait in the poller for the next completion
			case unix.EINTR:
				continue
			}
			fatal = err
			return true
		}
	})
	if fatal == nil {
		fatal = err
	}
	io.mu.Lock()
	defer io.mu.Unlock()
	if !io.stopping && io.gone == nil {
		io.gone = fmt.Errorf("%v: USBDEVFS_REAPURBNDELAY: %w", io.info, classifyErrno(fatal))
		if !errors.Is(io.gone, ErrDeviceGone) {
			io.gone = fmt.Errorf("%w: %w", ErrDeviceGone, io.gone)
		}
		close(io.goneCh)
	}
}

// complete hands a reaped URB to its pipe.
func (io *urbIO) complete(addr uintptr) error {
	size := unsafe.Sizeof(usbdevfsURB{})
	first := uintptr(unsafe.Pointer(&io.structs[0]))
	if addr < first || (addr-first)%size != 0 || int((addr-first)/size) >= len(io.structs)/int(size) {
		return fmt.Errorf("reaped URB at %#x, not one of the transport's", addr)
	}
	idx := int((addr - first) / size)
	io.mu.Lock()
	defer io.mu.Unlock()
	for _, p := range io.pipes {
		if idx >= p.base && idx < p.base+len(p.urbs) {
			u := &p.urbs[idx-p.base]
			if err := p.book.completed(idx-p.base, u.Status, int(u.ActualLength)); err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			p.signal()
			return nil
		}
	}
	return fmt.Errorf("reaped URB %d of no pipe", idx)
}

// wait waits for a reap for p, the device's departure, a stop, or ctx.
// io.mu is not held.
func (io *urbIO) wait(ctx context.Context, p *urbPipe) error {
	select {
	case <-p.wake:
		return nil
	case <-io.goneCh:
		return nil // the caller finds io.gone
	case <-io.stopCh:
		return fmt.Errorf("%v: %s: %w", io.info, p.name, errClosed)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ready checks, with io.mu held, that p may move data.
func (io *urbIO) ready(p *urbPipe) error {
	switch {
	case io.gone != nil:
		return io.gone
	case io.stopping:
		return fmt.Errorf("%v: %s: %w", io.info, p.name, errClosed)
	case p != io.notify && !io.bulkOn:
		return fmt.Errorf("%v: %s: %w", io.info, p.name, errNoBulk)
	}
	return nil
}

// statusError turns a URB's status into the error a caller sees; p's
// errors in a row past maxErrRun mean the device is gone.
func (io *urbIO) statusError(p *urbPipe, status int32) error {
	errno := unix.Errno(-status)
	switch {
	case errno == unix.EPIPE:
		return fmt.Errorf("%v: %s: %w", io.info, p.name, ErrStall)
	case errno == unix.ESHUTDOWN || errno == unix.ENODEV:
		return fmt.Errorf("%v: %s: %w (%v)", io.info, p.name, ErrDeviceGone, errno)
	case p.book.errRun >= maxErrRun:
		return fmt.Errorf("%v: %s: %w (%d transfers in a row failed, the last with %v)", io.info, p.name, ErrDeviceGone, p.book.errRun, errno)
	}
	return fmt.Errorf("%v: %s: transfer failed: %w", io.info, p.name, errno)
}

// submitError is statusError for a failed SUBMITURB.
func (io *urbIO) submitError(p *urbPipe, err error) error {
	p.err = nil
	return fmt.Errorf("%v: %s: USBDEVFS_SUBMITURB: %w", io.info, p.name, classifyErrno(err))
}

// read is ReadBulk: it keeps every IN URB in flight and fills buf with the
// whole transfers reaped so far.
func (io *urbIO) read(ctx context.Context, buf []byte, sizes []int) (int, error) {
	p := io.in
	for {
		io.mu.Lock()
		if err := io.ready(p); err != nil {
			io.mu.Unlock()
			return 0, err
		}
		err := p.fillAll()
		n, status := 0, int32(0)
		if err == nil {
			n, status = p.book.fill(buf, sizes, p.size, p)
			err = p.err
		}
		if err != nil {
			err = io.submitError(p, err)
		} else if status != 0 {
			err = io.statusError(p, status)
		}
		io.mu.Unlock()
		if n > 0 {
			return n, nil
		}
		if err != nil {
			return 0, io.afterError(ctx, p, err)
		}
		if err := io.wait(ctx, p); err != nil {
			return 0, err
		}
	}
}

// afterError clears a stalled endpoint: its URBs are discarded and reaped
// first, as Linux's usbnet unlinks its URBs before it clears a halt.
func (io *urbIO) afterError(ctx context.Context, p *urbPipe, err error) error {
	if !errors.Is(err, ErrStall) {
		return err
	}
	if derr := io.drain(ctx, p); derr != nil {
		return errors.Join(err, derr)
	}
	if !io.guard.enter() {
		return err
	}
	cerr := io.k.clearHalt(p.ep)
	io.guard.leave()
	if cerr != nil {
		return errors.Join(err, fmt.Errorf("%v: %s: USBDEVFS_CLEAR_HALT: %w", io.info, p.name, classifyErrno(cerr)))
	}
	return err
}

// drain discards p's URBs in flight and waits until they are reaped.
func (io *urbIO) drain(ctx context.Context, p *urbPipe) error {
	if io.guard.enter() {
		io.mu.Lock()
		p.book.discard(func(i int) { io.k.discard(&p.urbs[i]) })
		io.mu.Unlock()
		io.guard.leave()
	}
	for {
		io.mu.Lock()
		left, gone := p.book.inFlight, io.gone
		io.mu.Unlock()
		if left == 0 || gone != nil {
			return gone
		}
		// A reader may take p's wake-up; look again soon in any case.
		t := time.NewTimer(10 * time.Millisecond)
		select {
		case <-p.wake:
		case <-t.C:
		case <-io.goneCh:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		t.Stop()
	}
}

// write is WriteBulk: it copies p into idle OUT URBs (several when it is
// longer than one, each but the last a multiple of wMaxPacketSize, which
// the device sees as the same packets) and returns once they are
// submitted; it waits only while too few are idle. A failed OUT URB is
// reported by the next call.
func (io *urbIO) write(ctx context.Context, data []byte) error {
	p := io.out
	need := max(1, (len(data)+p.size-1)/p.size)
	if need > len(p.urbs) {
		return fmt.Errorf("%v: %s: a transfer of %d bytes is longer than %d URBs of %d", io.info, p.name, len(data), len(p.urbs), p.size)
	}
	for {
		io.mu.Lock()
		if err := io.ready(p); err != nil {
			io.mu.Unlock()
			return err
		}
		for p.book.reapedCount() > 0 {
			if _, r := p.book.consume(); r.status != 0 && io.outErr == 0 {
				io.outErr = r.status
			}
		}
		if status := io.outErr; status != 0 {
			io.outErr = 0
			err := io.statusError(p, status)
			io.mu.Unlock()
			return io.afterError(ctx, p, err)
		}
		if p.book.idleCount() >= need {
			err := io.submitOut(p, data)
			io.mu.Unlock()
			return err
		}
		io.mu.Unlock()
		if err := io.wait(ctx, p); err != nil {
			return err
		}
	}
}

func (io *urbIO) submitOut(p *urbPipe, data []byte) error {
	for first := true; first || len(data) > 0; first = false {
		i, _ := p.book.submitting()
		n := copy(p.urbData(i), data)
		data = data[n:]
		if err := p.submitAt(i, n); err != nil {
			return io.submitError(p, err)
		}
	}
	return nil
}

// notification is WaitNotification: the next non-empty interrupt transfer.
func (io *urbIO) notification(ctx context.Context) ([]byte, error) {
	p := io.notify
	for {
		io.mu.Lock()
		if err := io.ready(p); err != nil {
			io.mu.Unlock()
			return nil, err
		}
		err := p.fillAll()
		var msg []byte
		status := int32(0)
		for err == nil && msg == nil && p.book.reapedCount() > 0 {
			i, r := p.book.consume()
			status = r.status
			if status != 0 {
				break
			}
			if r.actual > 0 {
				msg = p.urbData(i)[:r.actual]
				msg = append(io.notifyCopy(), msg...)
			}
			err = p.submit(p.size)
		}
		if err != nil {
			err = io.submitError(p, err)
		} else if status != 0 {
			err = io.statusError(p, status)
			if perr := p.fillAll(); perr != nil {
				err = errors.Join(err, io.submitError(p, perr))
			}
		}
		io.mu.Unlock()
		if msg != nil {
			return msg, nil
		}
		if err != nil {
			return nil, io.afterError(ctx, p, err)
		}
		if err := io.wait(ctx, p); err != nil {
			return nil, err
		}
	}
}

// notifyCopy returns the buffer the last notification is copied to, valid
// until the next: the URB's own is submitted again at once.
func (io *urbIO) notifyCopy() []byte {
	if io.notifyBuf == nil {
		io.notifyBuf = make([]byte, 0, io.notify.size)
	}
	return io.notifyBuf[:0]
}

// stopBulk discards the bulk URBs and waits for their reaps, for a change
// of the data interface's setting; the pipes stay off until setBulk.
func (io *urbIO) stopBulk(ctx context.Context) error {
	io.mu.Lock()
	io.bulkOn = false
	io.mu.Unlock()
	for _, p := range []*urbPipe{io.in, io.out} {
		if err := io.drain(ctx, p); err != nil && !errors.Is(err, ErrDeviceGone) {
			return err
		}
	}
	return nil
}

func (io *urbIO) setBulk(on bool) {
	io.mu.Lock()
	io.bulkOn = on
	io.outErr = 0
	io.mu.Unlock()
}

// stop discards every URB and waits, a second at most, for their reaps.
// Waiting calls end with errClosed.
func (io *urbIO) stop() {
	io.mu.Lock()
	if io.stopping {
		io.mu.Unlock()
		return
	}
	io.stopping = true
	close(io.stopCh)
	io.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, p := range io.pipes {
		io.drain(ctx, p)
	}
}
