package usb

import (
	"bytes"
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fakeUsbfs is usbfs's side of the URB I/O, in process: it holds the URBs
// submitted to each endpoint in order, completes them when the test says,
// and hands them to the reaper, which it wakes as Go's poller would.
type fakeUsbfs struct {
	t      *testing.T
	io     *urbIO
	mu     sync.Mutex
	held   map[uint8][]*usbdevfsURB
	done   []*usbdevfsURB
	out    [][]byte // the data of every OUT URB submitted
	halts  []uint8
	gone   bool
	ready  chan struct{}
	closed chan struct{}
}

var testFunction = Function{Protocol: ProtocolRNDIS, Config: 1, DataIface: 1,
	Notify:  Endpoint{Address: 0x83, Attributes: 3, MaxPacketSize: 8},
	BulkIn:  Endpoint{Address: 0x81, Attributes: 2, MaxPacketSize: 512},
	BulkOut: Endpoint{Address: 0x02, Attributes: 2, MaxPacketSize: 512}}

func newFakeUsbfs(t *testing.T) *fakeUsbfs {
	f := &fakeUsbfs{t: t, held: map[uint8][]*usbdevfsURB{}, ready: make(chan struct{}, 1), closed: make(chan struct{})}
	io, err := newURBIO(f, -1, new(fdGuard), f, Info{Path: "1-1", Function: testFunction})
	if err != nil {
		t.Fatal(err)
	}
	f.io = io
	t.Cleanup(func() {
		io.stop()
		close(f.closed)
		io.free()
	})
	return f
}

// pipe returns the pipe and index of a URB, from its user context.
func (f *fakeUsbfs) pipe(u *usbdevfsURB) (*urbPipe, int) {
	for _, p := range f.io.pipes {
		if i := int(u.UserContext) - p.base; i >= 0 && i < len(p.urbs) && &p.urbs[i] == u {
			return p, i
		}
	}
	f.t.Fatalf("URB %p is none of the transport's", u)
	return nil, 0
}

func (f *fakeUsbfs) submit(u *usbdevfsURB) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gone {
		return unix.ENODEV
	}
	p, i := f.pipe(u)
	if int(u.BufferLength) > p.size || u.Endpoint != p.ep {
		f.t.Errorf("URB of %d bytes for %#x on %s", u.BufferLength, u.Endpoint, p.name)
	}
	if u.Endpoint&0x80 == 0 {
		f.out = append(f.out, bytes.Clone(p.urbData(i)[:u.BufferLength]))
	}
	f.held[u.Endpoint] = append(f.held[u.Endpoint], u)
	return nil
}

func (f *fakeUsbfs) finish(u *usbdevfsURB) {
	f.done = append(f.done, u)
	select {
	case f.ready <- struct{}{}:
	default:
	}
}

func (f *fakeUsbfs) discard(u *usbdevfsURB) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := f.held[u.Endpoint]
	for j, h := range q {
		if h == u {
			f.held[u.Endpoint] = append(q[:j:j], q[j+1:]...)
			u.Status, u.ActualLength = -int32(unix.ENOENT), 0
			f.finish(u)
			return nil
		}
	}
	return unix.EINVAL
}

func (f *fakeUsbfs) reap() (uintptr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.done) > 0 {
		u := f.done[0]
		f.done = f.done[1:]
		return uintptr(unsafe.Pointer(u)), nil
	}
	if f.gone {
		return 0, unix.ENODEV
	}
	return 0, unix.EAGAIN
}

func (f *fakeUsbfs) clearHalt(ep uint8) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.halts = append(f.halts, ep)
	return nil
}

// The reaper's side of syscall.RawConn: the callback runs again whenever a
// URB completes, until it says it is done or the node is closed.
func (f *fakeUsbfs) Write(fn func(uintptr) bool) error {
	for !fn(0) {
		select {
		case <-f.ready:
		case <-f.closed:
			return os.ErrClosed
		}
	}
	return nil
}

func (f *fakeUsbfs) Read(func(uintptr) bool) error { return errors.ErrUnsupported }
func (f *fakeUsbfs) Control(func(uintptr)) error   { return errors.ErrUnsupported }

// complete completes the oldest URB held for ep with data and status.
func (f *fakeUsbfs) complete(ep uint8, data []byte, status int32) {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	q := f.held[ep]
	if len(q) == 0 {
		f.t.Fatalf("no URB in flight on %#x", ep)
	}
	u := q[0]
	f.held[ep] = q[1:]
	p, i := f.pipe(u)
	if ep&0x80 != 0 {
		copy(p.urbData(i), data)
		u.ActualLength = int32(len(data))
	} else {
		u.ActualLength = u.BufferLength
	}
	u.Status = status
	f.finish(u)
}

func (f *fakeUsbfs) inFlight(ep uint8) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.held[ep])
}

// unplug ends every URB with ESHUTDOWN, then ioctls fail with ENODEV.
func (f *fakeUsbfs) unplug() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gone = true
	for ep, q := range f.held {
		for _, u := range q {
			u.Status, u.ActualLength = -int32(unix.ESHUTDOWN), 0
			f.finish(u)
		}
		delete(f.held, ep)
	}
	select { // usbfs's poll says POLLHUP
	case f.ready <- struct{}{}:
	default:
	}
}

// reaped waits until p's bookkeeping holds n reaped URBs.
func (f *fakeUsbfs) reaped(p *urbPipe, n int) {
	f.t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		f.io.mu.Lock()
		k := p.book.reapedCount()
		f.io.mu.Unlock()
		if k >= n {
			return
		}
	}
	f.t.Fatalf("%s: %d URBs never reaped", p.name, n)
}

func shortCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	t.Cleanup(cancel)
	return ctx
}

func TestUsbfsReadBulkBatchesWholeTransfers(t *testing.T) {
	f := newFakeUsbfs(t)
	buf, sizes := make([]byte, 16896), make([]int, 16)
	if _, err := f.io.read(shortCtx(t), buf, sizes); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read with nothing reaped = %v", err)
	}
	if n := f.inFlight(0x81); n != inURBs {
		t.Fatalf("%d IN URBs in flight, want %d", n, inURBs)
	}
	frames := [][]byte{bytes.Repeat([]byte{1}, 1500), bytes.Repeat([]byte{2}, 100), bytes.Repeat([]byte{3}, bulkURB), bytes.Repeat([]byte{4}, 10)}
	for _, fr := range frames {
		f.complete(0x81, fr, 0)
	}
	f.reaped(f.io.in, 4)
	n, err := f.io.read(context.Background(), buf, sizes)
	if err != nil || n != 2 || sizes[0] != 1500 || sizes[1] != 100 {
		t.Fatalf("read = %d %v, %v; want 2: [1500 100], the third not fitting after them", n, sizes[:n], err)
	}
	if want := bytes.Join(frames[:2], nil); !bytes.Equal(buf[:1600], want) {
		t.Error("the transfers' bytes differ")
	}
	n, err = f.io.read(context.Background(), buf, sizes)
	if err != nil || n != 1 || sizes[0] != bulkURB+10 || !bytes.Equal(buf[:sizes[0]], bytes.Join(frames[2:], nil)) {
		t.Fatalf("read = %d %v, %v; want the transfer of two URBs, %d bytes", n, sizes[:n], err, bulkURB+10)
	}
	if n := f.inFlight(0x81); n != inURBs {
		t.Errorf("%d IN URBs in flight after the read, want %d again", n, inURBs)
	}
}

// readOne starts the IN URBs, completes the oldest with data and status,
// and reads what it gave.
func (f *fakeUsbfs) readOne(data []byte, status int32) (int, error) {
	f.t.Helper()
	buf, sizes := make([]byte, 16896), make([]int, 16)
	f.io.read(shortCtx(f.t), buf, sizes)
	f.complete(0x81, data, status)
	f.reaped(f.io.in, 1)
	return f.io.read(context.Background(), buf, sizes)
}

func TestUsbfsReadBulkCountsFailuresAndGivesUp(t *testing.T) {
	f := newFakeUsbfs(t)
	_, err := f.readOne(nil, -int32(unix.EPROTO))
	if !errors.Is(err, unix.EPROTO) || errors.Is(err, ErrDeviceGone) || errors.Is(err, ErrStall) {
		t.Fatalf("read after EPROTO = %v, want EPROTO alone", err)
	}
	if n, err := f.readOne([]byte{9}, 0); n != 1 || err != nil {
		t.Fatalf("read after the failure = %d, %v", n, err)
	}
	for k := 0; ; k++ {
		_, err := f.readOne(nil, -int32(unix.EILSEQ))
		if errors.Is(err, ErrDeviceGone) {
			if k+1 != maxErrRun {
				t.Errorf("gone after %d failures in a row, want %d", k+1, maxErrRun)
			}
			break
		}
		if k > maxErrRun {
			t.Fatalf("still not gone after %d failures: %v", k, err)
		}
	}
}

// A stalled IN endpoint: its URBs are discarded and reaped, the halt
// cleared, and the next read submits them all again.
func TestUsbfsReadBulkClearsAStall(t *testing.T) {
	f := newFakeUsbfs(t)
	if _, err := f.readOne(nil, -int32(unix.EPIPE)); !errors.Is(err, ErrStall) {
		t.Fatalf("read after a stall = %v, want ErrStall", err)
	}
	if f.inFlight(0x81) != 0 || len(f.halts) != 1 || f.halts[0] != 0x81 {
		t.Fatalf("after the stall: %d in flight, halts cleared %v; want 0, [0x81]", f.inFlight(0x81), f.halts)
	}
	f.io.read(shortCtx(t), make([]byte, 16896), make([]int, 16))
	if n := f.inFlight(0x81); n != inURBs {
		t.Errorf("%d IN URBs in flight after the stall, want %d", n, inURBs)
	}
}

// WriteBulk returns once its transfer is submitted, waits only when every
// OUT URB is in flight, and reports a failed one at the next call.
func TestUsbfsWriteBulk(t *testing.T) {
	f := newFakeUsbfs(t)
	for k := range outURBs {
		if err := f.io.write(shortCtx(t), []byte{byte(k)}); err != nil {
			t.Fatalf("write %d: %v", k, err)
		}
	}
	if err := f.io.write(shortCtx(t), []byte{0xff}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("write with every URB in flight = %v, want to wait", err)
	}
	f.complete(0x02, nil, 0)
	f.complete(0x02, nil, -int32(unix.EPROTO))
	f.reaped(f.io.out, 2)
	if err := f.io.write(context.Background(), []byte{0xfe}); !errors.Is(err, unix.EPROTO) {
		t.Fatalf("write after a failed URB = %v, want its EPROTO", err)
	}
	long := bytes.Repeat([]byte{7}, 2*bulkURB+100)
	for range 3 {
		f.complete(0x02, nil, 0)
	}
	f.reaped(f.io.out, 3)
	if err := f.io.write(context.Background(), long); err != nil {
		t.Fatalf("write of %d bytes: %v", len(long), err)
	}
	f.mu.Lock()
	got := f.out[len(f.out)-3:]
	f.mu.Unlock()
	if len(got[0]) != bulkURB || len(got[1]) != bulkURB || !bytes.Equal(bytes.Join(got, nil), long) {
		t.Errorf("the long transfer went as URBs of %d, %d, %d bytes", len(got[0]), len(got[1]), len(got[2]))
	}
	if err := f.io.write(context.Background(), make([]byte, (outURBs+1)*bulkURB)); err == nil {
		t.Error("a transfer longer than every OUT URB together was taken")
	}
}

func TestUsbfsWriteBulkClearsAStall(t *testing.T) {
	f := newFakeUsbfs(t)
	f.io.write(context.Background(), []byte{1})
	f.io.write(context.Background(), []byte{2})
	f.complete(0x02, nil, -int32(unix.EPIPE))
	f.reaped(f.io.out, 1)
	if err := f.io.write(context.Background(), []byte{3}); !errors.Is(err, ErrStall) {
		t.Fatalf("write after a stall = %v", err)
	}
	if f.inFlight(0x02) != 0 || len(f.halts) != 1 || f.halts[0] != 0x02 {
		t.Errorf("after the stall: %d in flight, halts %v", f.inFlight(0x02), f.halts)
	}
}

func TestUsbfsNotification(t *testing.T) {
	f := newFakeUsbfs(t)
	if _, err := f.io.notification(shortCtx(t)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("notification = %v", err)
	}
	if n := f.inFlight(0x83); n != notifyURBs {
		t.Fatalf("%d interrupt URBs in flight, want %d", n, notifyURBs)
	}
	f.complete(0x83, nil, 0) // empty: skipped
	msg := []byte{1, 0, 0, 0, 0, 0, 0, 0}
	f.complete(0x83, msg, 0)
	f.reaped(f.io.notify, 2)
	got, err := f.io.notification(context.Background())
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("notification = %x, %v; want %x", got, err, msg)
	}
	if n := f.inFlight(0x83); n != notifyURBs {
		t.Errorf("%d interrupt URBs in flight after, want %d", n, notifyURBs)
	}
}

func TestUsbfsUnplug(t *testing.T) {
	f := newFakeUsbfs(t)
	buf, sizes := make([]byte, 16896), make([]int, 16)
	f.io.read(shortCtx(t), buf, sizes)
	done := make(chan error, 1)
	go func() {
		_, err := f.io.read(context.Background(), buf, sizes)
		done <- err
	}()
	f.unplug()
	select {
	case err := <-done:
		if !errors.Is(err, ErrDeviceGone) {
			t.Errorf("read across an unplug = %v, want ErrDeviceGone", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("read did not see the unplug")
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		err := f.io.write(context.Background(), []byte{1})
		if errors.Is(err, ErrDeviceGone) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("write after the unplug = %v", err)
		}
	}
	if _, err := f.io.notification(context.Background()); !errors.Is(err, ErrDeviceGone) {
		t.Errorf("notification after the unplug = %v", err)
	}
}

// Changing the data interface's setting discards the bulk URBs first; bulk
// I/O fails until the bulk setting is back, then starts again.
func TestUsbfsStopBulk(t *testing.T) {
	f := newFakeUsbfs(t)
	buf, sizes := make([]byte, 16896), make([]int, 16)
	f.io.read(shortCtx(t), buf, sizes)
	f.io.write(context.Background(), []byte{1})
	if err := f.io.stopBulk(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.inFlight(0x81) != 0 || f.inFlight(0x02) != 0 {
		t.Fatalf("%d IN and %d OUT in flight after stopBulk", f.inFlight(0x81), f.inFlight(0x02))
	}
	if _, err := f.io.read(context.Background(), buf, sizes); !errors.Is(err, errNoBulk) {
		t.Errorf("read at a setting without bulk = %v", err)
	}
	if err := f.io.write(context.Background(), []byte{1}); !errors.Is(err, errNoBulk) {
		t.Errorf("write at a setting without bulk = %v", err)
	}
	f.io.setBulk(true)
	f.io.read(shortCtx(t), buf, sizes)
	if n := f.inFlight(0x81); n != inURBs {
		t.Errorf("%d IN URBs in flight after setBulk, want %d", n, inURBs)
	}
}

// stop discards every URB and waits for their reaps; calls fail after.
func TestUsbfsStopReapsEverything(t *testing.T) {
	f := newFakeUsbfs(t)
	buf, sizes := make([]byte, 16896), make([]int, 16)
	f.io.read(shortCtx(t), buf, sizes)
	f.io.notification(shortCtx(t))
	f.io.write(context.Background(), []byte{1})
	waiting := make(chan error, 1)
	go func() {
		_, err := f.io.read(context.Background(), buf, sizes)
		waiting <- err
	}()
	time.Sleep(10 * time.Millisecond)
	f.io.stop()
	if err := <-waiting; !errors.Is(err, errClosed) {
		t.Errorf("a read waiting across stop = %v, want errClosed", err)
	}
	f.io.mu.Lock()
	for _, p := range f.io.pipes {
		if p.book.inFlight != 0 || p.book.idleCount() != len(p.urbs) {
			t.Errorf("%s: %d in flight, %d of %d idle after stop", p.name, p.book.inFlight, p.book.idleCount(), len(p.urbs))
		}
	}
	f.io.mu.Unlock()
	if _, err := f.io.read(context.Background(), buf, sizes); !errors.Is(err, errClosed) {
		t.Errorf("read after stop = %v", err)
	}
}
