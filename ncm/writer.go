package ncm

import (
	"errors"
	"fmt"
	"slices"
)

// Writer packs frames into one NTB within its receiver's Limits: the NTH,
// the datagrams, each at an offset the divisor and remainder allow, then
// one NDP pointing to them. Reusing its buffer, it allocates nothing per
// frame.
//
// The NDP goes at the end of the block, after the last datagram, aligned.
// The NCM specification allows it anywhere; at the end it takes only the
// entries the block needs, where Linux's cdc_ncm reserves room for the most
// it might need before the first datagram, and Windows's NCM host and
// Linux's f_ncm gadget (the sender on Android phones) put it there too, so
// every device has met that layout. Linux puts it there for the devices it
// knows to need it (CDC_NCM_FLAG_NDP_TO_END).
//
// wSequence counts blocks across Reset, from 0, as Linux's cdc_ncm does.
type Writer struct {
	lay      *layout
	limits   Limits
	maxFrame int
	buf      []byte
	entries  []entry
	seq      uint16
	block    []byte // the finished block, until Reset
}

type entry struct{ index, length int }

// NewWriter returns a writer of blocks of format f that appends into
// buf[:0]; give buf a capacity of limits.MaxSize+1 so that it never grows
// (the +1 for a short-packet byte, see Finish). It fails for limits that
// Validate rejects.
func NewWriter(buf []byte, limits Limits, f Format) (*Writer, error) {
	if err := limits.Validate(f); err != nil {
		return nil, err
	}
	w := &Writer{
		lay:      layoutOf(f),
		limits:   limits,
		maxFrame: limits.MaxFrame(f),
		buf:      buf[:0],
		entries:  make([]entry, 0, limits.MaxDatagrams),
	}
	w.Reset()
	return w, nil
}

// Add appends frame as one datagram. It returns false, adding nothing, when
// the block is full; then send Finish's block, Reset, and add again.
func (w *Writer) Add(frame []byte) (bool, error) {
	dst, ok, err := w.Reserve(len(frame))
	if ok {
		copy(dst, frame)
	}
	return ok, err
}

// Reserve appends a datagram of n bytes and returns its space, for a caller
// whose frame is in pieces; the caller fills all n bytes. It returns false,
// adding nothing, when the block is full: MaxDatagrams reached, or no room
// left for the datagram and the NDP that will point to it.
func (w *Writer) Reserve(n int) ([]byte, bool, error) {
	switch {
	case w.block != nil:
		return nil, false, ErrFinished
	case n <= 0:
		return nil, false, errors.New("ncm: a datagram of no bytes")
	case n > w.maxFrame:
		return nil, false, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, w.maxFrame)
	case len(w.entries) == w.limits.MaxDatagrams:
		return nil, false, nil
	}
	start := w.limits.datagramStart(len(w.buf))
	end := start + n
	if alignUp(end, w.limits.NDPAlignment)+w.lay.ndpSize(len(w.entries)+1) > w.limits.MaxSize {
		return nil, false, nil
	}
	w.grow(end)
	w.entries = append(w.entries, entry{start, n})
	return w.buf[start:end:end], true, nil
}

// grow extends the block to end bytes; the new bytes before the last
// datagram's end are zero padding.
func (w *Writer) grow(end int) {
	old := len(w.buf)
	w.buf = slices.Grow(w.buf, end-old)[:end]
	clear(w.buf[old:end])
}

// Count returns the number of datagrams in the block.
func (w *Writer) Count() int { return len(w.entries) }

// Finish writes the NDP and the NTH (block length, NDP index, wSequence) and
// returns the block, or nil when it holds no datagram. The block is valid
// until Reset; a second Finish returns it again.
//
// The short-packet rule is the caller's: a block whose length is a multiple
// of the bulk-OUT endpoint's packet size and less than the receiver's
// dwNtbOutMaxSize must be followed by a zero-length packet or end with one
// more byte. A zero byte appended after the block is harmless: it lies
// outside wBlockLength, Windows's NCM host sends it so, and Linux's f_ncm
// skips exactly one such byte (more would be read as a further NTB); a
// Reader ignores it. Give NewWriter a buffer of MaxSize+1 bytes and the
// append costs nothing. A block of dwNtbOutMaxSize bytes needs neither: the
// device's transfer ends there.
func (w *Writer) Finish() []byte {
	if w.block != nil || len(w.entries) == 0 {
		return w.block
	}
	l := w.lay
	ndpAt := alignUp(len(w.buf), w.limits.NDPAlignment)
	ndpLen := l.ndpSize(len(w.entries))
	w.grow(ndpAt + ndpLen) // zeroes the padding, the reserved fields and the null entry
	ndp := w.buf[ndpAt:]
	le.PutUint32(ndp, l.ndpSig)
	le.PutUint16(ndp[4:], uint16(ndpLen))
	// wNextNdpIndex stays 0: the only NDP
	for i, e := range w.entries {
		at := l.ndpHeader + i*l.entrySize
		l.putWord(ndp, at, e.index)
		l.putWord(ndp, at+l.entrySize/2, e.length)
	}
	nth := w.buf[:l.nthSize]
	le.PutUint32(nth, l.nthSig)
	le.PutUint16(nth[4:], uint16(l.nthSize))
	le.PutUint16(nth[6:], w.seq)
	l.putWord(nth, l.blockLenAt, len(w.buf))
	l.putWord(nth, l.ndpIndexAt, ndpAt)
	w.seq++
	w.block = w.buf
	return w.block
}

// Reset empties the block, keeping the buffer and the sequence count.
func (w *Writer) Reset() {
	w.buf = w.buf[:0]
	w.grow(w.lay.nthSize) // the NTH, written by Finish
	w.entries = w.entries[:0]
	w.block = nil
}
