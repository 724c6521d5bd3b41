package rndis

import (
	"errors"
	"fmt"
	"slices"
)

// PacketReader walks the PACKET_MSGs concatenated in one bulk-IN transfer and
// yields each Ethernet frame as a slice of the transfer, without copying.
//
// Each message is MessageLength long (padding to the device's alignment is
// counted in it). Zero bytes after the last message are padding (the
// short-packet rule's extra byte, or a device zero-filling its transfer).
// The first malformed message ends the walk; Err says what was wrong, and the
// frames before it stand.
type PacketReader struct {
	transfer []byte
	pos      int // start of the next message
	frameOff int // offset of the frame Next returned last
	err      error
}

// NewPacketReader returns a reader over transfer.
func NewPacketReader(transfer []byte) PacketReader {
	return PacketReader{transfer: transfer}
}

// Next returns the next frame, or false at the end of the transfer or at the
// first malformed message.
func (r *PacketReader) Next() ([]byte, bool) {
	if r.err != nil {
		return nil, false
	}
	rest := r.transfer[r.pos:]
	if allZero(rest) {
		r.pos = len(r.transfer)
		return nil, false
	}
	t, msg, err := header(rest)
	if err != nil {
		r.err = fmt.Errorf("at byte %d of the transfer: %w", r.pos, err)
		return nil, false
	}
	if t != TypePacket {
		r.err = fmt.Errorf("at byte %d of the transfer: %w", r.pos,
			formatErr(t, "MessageType", "%v in a data transfer, want PACKET_MSG", t))
		return nil, false
	}
	frame, err := parsePacket(msg)
	if err != nil {
		r.err = fmt.Errorf("at byte %d of the transfer: %w", r.pos, err)
		return nil, false
	}
	r.frameOff = r.pos + int(le.Uint32(msg[8:])) + bufferOffsetBase
	r.pos += len(msg)
	return frame, true
}

// Offset returns where in the transfer the frame Next returned last begins.
func (r *PacketReader) Offset() int { return r.frameOff }

// Err returns the error that ended the walk, or nil.
func (r *PacketReader) Err() error { return r.err }

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// PacketLimits are what a receiver accepts in one bulk transfer, from its
// INITIALIZE_CMPLT (device) or INITIALIZE_MSG (host).
type PacketLimits struct {
	MaxTransferSize       int // bytes of PACKET_MSGs in one transfer, padding included
	MaxPacketsPerTransfer int
	Alignment             int // each message after the first starts at a multiple of this; a power of two
}

// MaxFrame returns the largest frame that fits in a transfer.
func (l PacketLimits) MaxFrame() int { return l.MaxTransferSize - PacketHeaderSize }

// Validate reports limits that no transfer can satisfy.
func (l PacketLimits) Validate() error {
	switch {
	case l.MaxFrame() <= 0:
		return fmt.Errorf("rndis: MaxTransferSize %d leaves no room for a frame", l.MaxTransferSize)
	case l.MaxPacketsPerTransfer < 1:
		return fmt.Errorf("rndis: MaxPacketsPerTransfer %d is less than 1", l.MaxPacketsPerTransfer)
	case l.Alignment < 1 || l.Alignment&(l.Alignment-1) != 0:
		return fmt.Errorf("rndis: alignment %d is not a power of two", l.Alignment)
	}
	return nil
}

// ErrFrameTooLarge is returned by PacketWriter.Add for a frame that does not
// fit even in an empty transfer.
var ErrFrameTooLarge = errors.New("rndis: frame larger than the transfer limit")

// PacketWriter packs frames as PACKET_MSGs into one transfer within the
// receiver's limits. Reusing its buffer, it allocates nothing per frame.
type PacketWriter struct {
	limits PacketLimits
	buf    []byte
	count  int
	last   int // offset of the last message, whose MessageLength grows by padding
}

// NewPacketWriter returns a writer that appends into buf[:0]; give buf a
// capacity of limits.MaxTransferSize+1 (the +1 for the short-packet rule) so
// that it never grows.
func NewPacketWriter(buf []byte, limits PacketLimits) *PacketWriter {
	return &PacketWriter{limits: limits, buf: buf[:0]}
}

// Add appends frame as one PACKET_MSG. It returns false, adding nothing, when
// the transfer is full; then send Bytes, Reset, and add again.
func (w *PacketWriter) Add(frame []byte) (bool, error) {
	dst, ok, err := w.Reserve(len(frame))
	if ok {
		copy(dst, frame)
	}
	return ok, err
}

// Reserve appends a PACKET_MSG for a frame of n bytes and returns the space
// for the frame, for a caller whose frame is in pieces. It returns false,
// adding nothing, when the transfer is full.
func (w *PacketWriter) Reserve(n int) ([]byte, bool, error) {
	if n == 0 || n > w.limits.MaxFrame() {
		return nil, false, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, w.limits.MaxFrame())
	}
	start := 0
	if w.count > 0 {
		start = alignUp(len(w.buf), w.limits.Alignment)
		if w.count >= w.limits.MaxPacketsPerTransfer || start+PacketHeaderSize+n > w.limits.MaxTransferSize {
			return nil, false, nil
		}
		pad := start - len(w.buf)
		for range pad {
			w.buf = append(w.buf, 0)
		}
		le.PutUint32(w.buf[w.last+4:], le.Uint32(w.buf[w.last+4:])+uint32(pad))
	}
	w.last = start
	w.buf = appendPacketHeader(w.buf, n)
	w.buf = slices.Grow(w.buf, n)[:len(w.buf)+n] // the caller fills all n bytes
	w.count++
	return w.buf[len(w.buf)-n:], true, nil
}

// Bytes returns the transfer built so far.
func (w *PacketWriter) Bytes() []byte { return w.buf }

// Count returns the number of frames in the transfer.
func (w *PacketWriter) Count() int { return w.count }

// Reset empties the transfer, keeping the buffer.
func (w *PacketWriter) Reset() {
	w.buf = w.buf[:0]
	w.count = 0
	w.last = 0
}

func alignUp(n, align int) int {
	return (n + align - 1) &^ (align - 1)
}

// appendPacket appends a PACKET_MSG holding frame.
func appendPacket(b []byte, frame []byte) []byte {
	return append(appendPacketHeader(b, len(frame)), frame...)
}

// appendPacketHeader appends the header of a PACKET_MSG for an n-byte frame.
func appendPacketHeader(b []byte, n int) []byte {
	b = le.AppendUint32(b, uint32(TypePacket))
	b = le.AppendUint32(b, uint32(PacketHeaderSize+n))
	b = le.AppendUint32(b, packetDataOffset)
	b = le.AppendUint32(b, uint32(n))
	for range 7 { // OOB data, per-packet info, VcHandle, reserved: unused
		b = le.AppendUint32(b, 0)
	}
	return b
}
