package usb

import (
	"bytes"
	"testing"
)

// fakeKernel plays the kernel's side of a pipe for the bookkeeping: it
// holds submitted URBs in order and completes them in that order, as the
// bus does for one endpoint, writing a counter's bytes as the data.
type fakeKernel struct {
	t     testing.TB
	b     *urbBook
	size  int
	bufs  [][]byte
	queue []int // what the kernel holds, oldest first
	next  byte  // the next data byte the device sends

	// What the test expects fill to consume: the reaped URBs in order.
	reaped   []fakeURB
	consumed []int // what recycle was handed
}

type fakeURB struct {
	i      int
	status int32
	data   []byte
}

func newFakeKernel(t testing.TB, n, size int) *fakeKernel {
	k := &fakeKernel{t: t, b: newURBBook(n), size: size}
	for range n {
		k.bufs = append(k.bufs, make([]byte, size))
	}
	return k
}

func (k *fakeKernel) urbData(i int) []byte { return k.bufs[i] }

func (k *fakeKernel) recycle(i int) {
	k.consumed = append(k.consumed, i)
	k.submit()
}

func (k *fakeKernel) submit() bool {
	i, ok := k.b.submitting()
	if ok {
		k.queue = append(k.queue, i)
	}
	return ok
}

func (k *fakeKernel) submitAll() {
	for k.submit() {
	}
}

// complete completes the oldest URB the kernel holds with actual bytes and
// status; a discarded one completes as discarded whatever they say.
func (k *fakeKernel) complete(actual int, status int32) bool {
	if len(k.queue) == 0 {
		return false
	}
	i := k.queue[0]
	k.queue = k.queue[1:]
	discarded := k.b.recs[i].state == urbDiscarded
	if discarded || status != 0 {
		actual = 0
	}
	actual = min(actual, k.size)
	for j := range actual {
		k.bufs[i][j] = k.next
		k.next++
	}
	if discarded {
		status = -104 // ECONNRESET
	}
	if err := k.b.completed(i, status, actual); err != nil {
		k.t.Fatal(err)
	}
	if !discarded {
		k.reaped = append(k.reaped, fakeURB{i, status, bytes.Clone(k.bufs[i][:actual])})
	}
	return true
}

func (k *fakeKernel) discard() {
	k.b.discard(nil)
	k.reaped = nil
}

// fill calls the bookkeeping's fill and checks what it consumed against
// the reaped URBs: in order, their bytes back to back in buf, the sizes
// adding up, and no transfer longer than buf.
func (k *fakeKernel) fill(bufLen, nsizes int) (int, int32) {
	buf := make([]byte, bufLen)
	sizes := make([]int, nsizes)
	k.consumed = k.consumed[:0]
	n, status := k.b.fill(buf, sizes, k.size, k)
	if len(k.consumed) > len(k.reaped) {
		k.t.Fatalf("fill consumed %d URBs, %d were reaped", len(k.consumed), len(k.reaped))
	}
	var want []byte
	for j, i := range k.consumed {
		u := k.reaped[j]
		if u.i != i {
			k.t.Fatalf("fill consumed URB %d, the oldest reaped was %d", i, u.i)
		}
		if status == 0 && u.status != 0 {
			k.t.Fatalf("fill consumed failed URB %d without its status", i)
		}
		want = append(want, u.data...)
	}
	k.reaped = k.reaped[len(k.consumed):]
	total := 0
	for _, s := range sizes[:n] {
		if s > bufLen {
			k.t.Fatalf("a transfer of %d bytes in a buffer of %d", s, bufLen)
		}
		total += s
	}
	switch {
	case n > 0 && status != 0:
		k.t.Fatalf("fill returned %d transfers and status %d", n, status)
	case status == 0 && !bytes.Equal(buf[:total], want):
		k.t.Fatalf("fill copied %x, the URBs held %x", buf[:total], want)
	case status != 0 && (len(k.consumed) != 1 || n != 0):
		k.t.Fatalf("a failed URB: fill consumed %d and returned %d transfers", len(k.consumed), n)
	}
	return n, status
}

// check verifies that every URB is in exactly one place.
func (k *fakeKernel) check() {
	b := k.b
	where := make([]int, len(b.recs))
	for j := range b.idle.n {
		i := b.idle.at(j)
		where[i]++
		if b.recs[i].state != urbIdle {
			k.t.Fatalf("URB %d is on the idle ring but %v", i, b.recs[i].state)
		}
	}
	for j := range b.reaped.n {
		i := b.reaped.at(j)
		where[i]++
		if b.recs[i].state != urbReaped {
			k.t.Fatalf("URB %d is on the reaped ring but %v", i, b.recs[i].state)
		}
	}
	for _, i := range k.queue {
		where[i]++
		if s := b.recs[i].state; s != urbSubmitted && s != urbDiscarded {
			k.t.Fatalf("the kernel holds URB %d, which is %v", i, s)
		}
	}
	for i, n := range where {
		if n != 1 {
			k.t.Fatalf("URB %d is in %d places", i, n)
		}
	}
	if b.inFlight != len(k.queue) {
		k.t.Fatalf("inFlight %d, the kernel holds %d", b.inFlight, len(k.queue))
	}
	if b.reaped.n != len(k.reaped) {
		k.t.Fatalf("%d reaped, the test expects %d", b.reaped.n, len(k.reaped))
	}
}

func TestFillJoinsFullURBsIntoATransfer(t *testing.T) {
	k := newFakeKernel(t, 8, 4)
	k.submitAll()
	k.complete(4, 0)
	k.complete(4, 0)
	if n, _ := k.fill(64, 4); n != 0 {
		t.Fatalf("fill returned %d transfers before the end of the first was reaped", n)
	}
	k.complete(2, 0)
	k.complete(3, 0)
	k.complete(4, 0)
	k.complete(0, 0) // a zero-length packet ends a transfer of full URBs
	sizes := make([]int, 4)
	n, status := k.b.fill(make([]byte, 64), sizes, 4, k)
	if n != 3 || status != 0 || sizes[0] != 10 || sizes[1] != 3 || sizes[2] != 4 {
		t.Fatalf("fill = %d transfers %v, status %d; want 3: [10 3 4]", n, sizes[:n], status)
	}
	k.reaped = k.reaped[len(k.consumed):] // checked by hand here
	k.check()
}

func TestFillLeavesWhatDoesNotFit(t *testing.T) {
	k := newFakeKernel(t, 8, 8)
	k.submitAll()
	for _, n := range []int{5, 5, 5} {
		k.complete(n, 0)
	}
	if n, _ := k.fill(12, 8); n != 2 {
		t.Fatalf("fill = %d transfers into 12 bytes, want 2", n)
	}
	if n, _ := k.fill(12, 8); n != 1 {
		t.Fatalf("the third: fill = %d, want 1", n)
	}
	for range 3 {
		k.complete(1, 0)
	}
	if n, _ := k.fill(12, 2); n != 2 {
		t.Fatalf("fill with 2 sizes = %d, want 2", n)
	}
	k.check()
}

// A transfer longer than the buffer comes as its whole URBs that fit, then
// the rest, as readTransfer does.
func TestFillSplitsATransferLongerThanTheBuffer(t *testing.T) {
	k := newFakeKernel(t, 8, 4)
	k.submitAll()
	for _, n := range []int{4, 4, 4, 1} {
		k.complete(n, 0)
	}
	sizes := make([]int, 4)
	buf := make([]byte, 8)
	k.consumed = k.consumed[:0]
	if n, _ := k.b.fill(buf, sizes, 4, k); n != 1 || sizes[0] != 8 {
		t.Fatalf("fill = %d %v, want one transfer of 8", n, sizes[:n])
	}
	k.reaped = k.reaped[2:]
	if n, _ := k.b.fill(buf, sizes, 4, k); n != 1 || sizes[0] != 5 {
		t.Fatalf("fill = %d %v, want the rest, 5", n, sizes[:n])
	}
}

func TestFillReportsAFailedURBAfterTheTransfersBeforeIt(t *testing.T) {
	k := newFakeKernel(t, 4, 8)
	k.submitAll()
	k.complete(3, 0)
	k.complete(0, -71) // EPROTO
	k.complete(2, 0)
	if n, status := k.fill(64, 4); n != 1 || status != 0 {
		t.Fatalf("fill = %d, %d; want the transfer before the failure", n, status)
	}
	if n, status := k.fill(64, 4); n != 0 || status != -71 {
		t.Fatalf("fill = %d, %d; want the failure", n, status)
	}
	if k.b.errRun != 1 || k.b.errors != 1 {
		t.Fatalf("errRun %d errors %d, want 1 1", k.b.errRun, k.b.errors)
	}
	if n, _ := k.fill(64, 4); n != 1 || k.b.errRun != 0 {
		t.Fatalf("fill = %d, errRun %d; want the transfer after, and the run ended", n, k.b.errRun)
	}
	if k.b.inFlight != 4 {
		t.Fatalf("%d in flight, want every URB again", k.b.inFlight)
	}
	k.check()
}

func TestFillDropsAURBLargerThanTheBuffer(t *testing.T) {
	k := newFakeKernel(t, 2, 16)
	k.submitAll()
	k.complete(10, 0)
	k.reaped = nil // dropped, not copied
	sizes := make([]int, 1)
	if n, status := k.b.fill(make([]byte, 4), sizes, 16, k); n != 0 || status != -errnoEOVERFLOW {
		t.Fatalf("fill = %d, %d; want EOVERFLOW", n, status)
	}
}

// A run of full URBs with nothing left in flight is a whole transfer: no
// URB could go on with it.
func TestFillEndsFullURBsWhenNoneIsInFlight(t *testing.T) {
	k := newFakeKernel(t, 2, 4)
	k.submitAll()
	k.complete(4, 0)
	k.complete(4, 0)
	if n, _ := k.fill(64, 2); n != 1 {
		t.Fatalf("fill = %d, want 1", n)
	}
}

func TestDiscardFreesAtTheReap(t *testing.T) {
	k := newFakeKernel(t, 4, 8)
	k.submitAll()
	k.complete(3, 0)
	var sent []int
	k.b.discard(func(i int) { sent = append(sent, i) })
	k.reaped = nil
	if len(sent) != 3 || k.b.idleCount() != 1 || k.b.inFlight != 3 {
		t.Fatalf("discard sent %v, %d idle, %d in flight; want 3, 1, 3", sent, k.b.idleCount(), k.b.inFlight)
	}
	for k.complete(8, 0) {
	}
	if k.b.idleCount() != 4 || k.b.reapedCount() != 0 {
		t.Fatalf("%d idle, %d reaped after the discards' reaps; want 4, 0", k.b.idleCount(), k.b.reapedCount())
	}
	k.check()
}

func TestCompletedRejectsWhatTheKernelDidNotHold(t *testing.T) {
	b := newURBBook(2)
	if err := b.completed(0, 0, 1); err == nil {
		t.Error("completing an idle URB succeeded")
	}
	if err := b.completed(5, 0, 1); err == nil {
		t.Error("completing URB 5 of 2 succeeded")
	}
	i, _ := b.submitting()
	b.unsubmit(i)
	if b.inFlight != 0 || b.idleCount() != 2 {
		t.Errorf("after a failed submit: %d in flight, %d idle", b.inFlight, b.idleCount())
	}
}

type nopSink struct {
	b   *urbBook
	buf []byte
}

func (s *nopSink) urbData(int) []byte { return s.buf }
func (s *nopSink) recycle(int)        { s.b.submitting() }

// The cycle of a bulk-IN URB allocates nothing: reap, fill, submit again.
func TestURBCycleAllocatesNothing(t *testing.T) {
	const n, size = 32, 2048
	b := newURBBook(n)
	for range n {
		b.submitting()
	}
	sink := &nopSink{b, make([]byte, size)}
	buf := make([]byte, 16896)
	sizes := make([]int, 16)
	next := 0
	allocs := testing.AllocsPerRun(1000, func() {
		for range 8 {
			b.completed(next, 0, 1500)
			next = (next + 1) % n
		}
		if k, _ := b.fill(buf, sizes, size, sink); k != 8 {
			t.Fatalf("fill = %d, want 8", k)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per cycle, want 0", allocs)
	}
}

// FuzzURBs drives the bookkeeping with submits, completions (in order,
// of any length, some failing), fills into buffers of any size, discards
// and failed submits, and checks after each step that every URB is in one
// place and that fill hands over the reaped bytes in order, none twice.
func FuzzURBs(f *testing.F) {
	f.Add([]byte{0, 1, 10, 1, 200, 2, 40, 3, 0, 1, 5, 2, 9})
	f.Add([]byte{0, 1, 255, 1, 255, 1, 3, 2, 1, 5, 4, 1, 0x80, 2, 2})
	f.Fuzz(func(t *testing.T, ops []byte) {
		const size = 8
		k := newFakeKernel(t, 6, size)
		for len(ops) > 0 {
			op := ops[0]
			arg := byte(0)
			if len(ops) > 1 {
				arg = ops[1]
			}
			ops = ops[min(2, len(ops)):]
			switch op % 6 {
			case 0:
				k.submitAll()
			case 1:
				status := int32(0)
				if arg&0x80 != 0 {
					status = -71
				}
				k.complete(int(arg&0x7f)%(size+2), status)
			case 2:
				k.fill(1+int(arg%40), 1+int(arg/40)%5)
			case 3:
				k.discard()
			case 4:
				if k.b.reapedCount() > 0 { // the OUT pipe's way: consume one, whatever it held
					i, _ := k.b.consume()
					if k.reaped[0].i != i {
						t.Fatalf("consume took %d, the oldest reaped is %d", i, k.reaped[0].i)
					}
					k.reaped = k.reaped[1:]
				}
			case 5:
				if i, ok := k.b.submitting(); ok {
					k.b.unsubmit(i)
				}
			}
			k.check()
		}
		// Close: discard everything and reap it all back.
		k.discard()
		for k.complete(0, 0) {
		}
		k.check()
		if k.b.idleCount() != len(k.b.recs) {
			t.Fatalf("%d of %d URBs idle after the close", k.b.idleCount(), len(k.b.recs))
		}
	})
}
