package usb

import "fmt"

// The bookkeeping of a pipe's URBs, apart from the ioctls that move them so
// that it can be tested and fuzzed anywhere. Every URB of a pipe is in one
// state at a time:
//
//	idle ──submitting──▶ submitted ──completed──▶ reaped ──recycle──▶ idle
//	                         │                                   ▲
//	                     discarding ──▶ discarded ──completed────┘
//
// A URB is marked submitted before SUBMITURB, since the reaper may reap it
// before the ioctl returns, and back to idle if the ioctl fails. Reaped URBs
// wait in completion order, which for one endpoint is the order of the bus.
type urbState uint8

const (
	urbIdle      urbState = iota // the host's, free
	urbSubmitted                 // the kernel's, until a reap returns it
	urbReaped                    // reaped; status and length wait to be consumed
	urbDiscarded                 // DISCARDURB sent: the reap that returns it makes it idle
)

func (s urbState) String() string {
	switch s {
	case urbIdle:
		return "idle"
	case urbSubmitted:
		return "submitted"
	case urbReaped:
		return "reaped"
	case urbDiscarded:
		return "discarded"
	}
	return fmt.Sprintf("urbState(%d)", uint8(s))
}

// urbRecord is what the bookkeeping knows of one URB.
type urbRecord struct {
	state  urbState
	status int32 // 0 or the negative errno the URB completed with
	actual int   // bytes it moved
}

// urbRing is a FIFO of URB indices with room for every URB of the pipe, so
// that it never grows.
type urbRing struct {
	buf     []int
	head, n int
}

func newURBRing(n int) urbRing { return urbRing{buf: make([]int, n)} }

func (r *urbRing) push(i int) {
	r.buf[(r.head+r.n)%len(r.buf)] = i
	r.n++
}

func (r *urbRing) pop() int {
	i := r.buf[r.head]
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	return i
}

// at returns the k-th index from the head.
func (r *urbRing) at(k int) int { return r.buf[(r.head+k)%len(r.buf)] }

// urbBook keeps the states of one pipe's URBs. It is not safe for
// concurrent use: the transport holds its lock around every call.
type urbBook struct {
	recs     []urbRecord
	idle     urbRing
	reaped   urbRing // completion order
	inFlight int     // submitted or discarded: the kernel holds them
	errRun   int     // URBs consumed in a row that completed with an error
	errors   uint64  // every URB consumed that completed with an error
}

func newURBBook(n int) *urbBook {
	b := &urbBook{recs: make([]urbRecord, n), idle: newURBRing(n), reaped: newURBRing(n)}
	for i := range n {
		b.idle.push(i)
	}
	return b
}

// idleCount returns how many URBs are free to submit.
func (b *urbBook) idleCount() int { return b.idle.n }

// reapedCount returns how many URBs wait to be consumed.
func (b *urbBook) reapedCount() int { return b.reaped.n }

// submitting takes an idle URB and marks it submitted; false when none is
// idle.
func (b *urbBook) submitting() (int, bool) {
	if b.idle.n == 0 {
		return 0, false
	}
	i := b.idle.pop()
	b.recs[i] = urbRecord{state: urbSubmitted}
	b.inFlight++
	return i, true
}

// unsubmit returns URB i to idle after its SUBMITURB failed.
func (b *urbBook) unsubmit(i int) {
	b.recs[i].state = urbIdle
	b.inFlight--
	b.idle.push(i)
}

// completed records what a reap returned for URB i. It fails for an index
// the pipe does not have or a URB the kernel did not hold, which would be a
// bug of the kernel's or of the transport's.
func (b *urbBook) completed(i int, status int32, actual int) error {
	if i < 0 || i >= len(b.recs) {
		return fmt.Errorf("reaped URB %d of %d", i, len(b.recs))
	}
	r := &b.recs[i]
	switch r.state {
	case urbSubmitted:
		*r = urbRecord{state: urbReaped, status: status, actual: max(actual, 0)}
		b.reaped.push(i)
	case urbDiscarded:
		*r = urbRecord{state: urbIdle}
		b.idle.push(i)
	default:
		return fmt.Errorf("reaped URB %d, which is %v", i, r.state)
	}
	b.inFlight--
	return nil
}

// head returns the oldest reaped URB.
func (b *urbBook) head() (int, urbRecord, bool) {
	if b.reaped.n == 0 {
		return 0, urbRecord{}, false
	}
	i := b.reaped.at(0)
	return i, b.recs[i], true
}

// consume takes the oldest reaped URB, counts its error, and makes it idle
// for the caller to submit again.
func (b *urbBook) consume() (int, urbRecord) {
	i := b.reaped.pop()
	r := b.recs[i]
	b.count(r.status)
	b.recs[i] = urbRecord{state: urbIdle}
	b.idle.push(i)
	return i, r
}

func (b *urbBook) count(status int32) {
	if status != 0 {
		b.errRun++
		b.errors++
	} else {
		b.errRun = 0
	}
}

// discard marks every submitted URB discarded, calling send for each (the
// DISCARDURB), and drops the reaped ones unread. The discarded become idle
// as their reaps come back.
func (b *urbBook) discard(send func(i int)) {
	for i := range b.recs {
		if b.recs[i].state == urbSubmitted {
			b.recs[i].state = urbDiscarded
			if send != nil {
				send(i)
			}
		}
	}
	for b.reaped.n > 0 {
		i := b.reaped.pop()
		b.recs[i] = urbRecord{state: urbIdle}
		b.idle.push(i)
	}
}

// urbSink gives fill the data of a URB and takes back the URBs it consumed.
type urbSink interface {
	urbData(i int) []byte // the URB's buffer
	recycle(i int)        // consumed: submit it again
}

// fill copies reaped bulk-IN URBs into buf as whole transfers: a transfer
// is a run of URBs of urbSize bytes ended by a shorter one, as the device
// ends each with a short packet. It returns how many transfers it copied
// (their lengths in sizes), and, when the oldest reaped URB failed and no
// transfer came before it, that URB's status. A transfer whose end has not
// been reaped yet stays for a later call; one that does not fit in what is
// left of buf too, unless it is the first: then the whole URBs that fit
// make a transfer, as readTransfer does, and the rest comes as the next.
func (b *urbBook) fill(buf []byte, sizes []int, urbSize int, sink urbSink) (n int, status int32) {
	off := 0
	for n < len(sizes) {
		i, r, ok := b.head()
		if !ok {
			return n, 0
		}
		if r.status != 0 {
			if n > 0 {
				return n, 0 // the error is the next call's
			}
			b.consume()
			sink.recycle(i)
			return 0, r.status
		}
		urbs, length, fit := b.transfer(urbSize, len(buf)-off)
		switch {
		case fit == transferIncomplete:
			return n, 0
		case fit == transferTooLong && n > 0:
			return n, 0 // it gets a buffer of its own
		case urbs == 0:
			// One URB larger than buf: the caller broke the contract.
			b.consume()
			sink.recycle(i)
			return 0, -errnoEOVERFLOW
		}
		for range urbs {
			i, r := b.consume()
			copy(buf[off:], sink.urbData(i)[:r.actual])
			off += r.actual
			sink.recycle(i)
		}
		sizes[n] = length
		n++
	}
	return n, 0
}

// errnoEOVERFLOW is Linux's EOVERFLOW, the status of a URB that overflowed.
const errnoEOVERFLOW = 75

// How the first reaped transfer fits the room left.
const (
	transferWhole      = iota // its end is reaped and it fits
	transferIncomplete        // its end is not reaped yet and it may still fit
	transferTooLong           // it does not fit: urbs is how many of its URBs do
)

// transfer measures the first reaped transfer: how many URBs it spans and
// its length. An errored URB ends it as a short one would. A transfer whose
// every URB is reaped and full is whole when no URB is left in flight to go
// on with it.
func (b *urbBook) transfer(urbSize, room int) (urbs, length, fit int) {
	for k := 0; k < b.reaped.n; k++ {
		r := b.recs[b.reaped.at(k)]
		if r.status != 0 {
			return k, length, transferWhole
		}
		if length+r.actual > room {
			return k, length, transferTooLong
		}
		length += r.actual
		if r.actual < urbSize {
			return k + 1, length, transferWhole
		}
	}
	switch {
	case length >= room:
		return b.reaped.n, length, transferTooLong
	case b.inFlight == 0:
		return b.reaped.n, length, transferWhole
	}
	return b.reaped.n, length, transferIncomplete
}
