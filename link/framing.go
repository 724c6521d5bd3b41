package link

import (
	"fmt"

	"github.com/rndis-netd/rndis-netd/rndis"
	"github.com/rndis-netd/rndis-netd/usb"
)

// framing is how a function's frames travel in bulk transfers, within the
// limits its last start negotiated. Each data-path goroutine makes its own
// writer or reader and keeps it while the framing stays the same.
type framing interface {
	newWriter() frameWriter
	newReader() frameReader
}

// frameWriter packs frames into one bulk-OUT transfer.
type frameWriter interface {
	// reserve returns room for an n-byte frame in the transfer, false when
	// the transfer is full (send it, reset, reserve again), and an error for
	// a frame too large for any transfer.
	reserve(n int) ([]byte, bool, error)
	// count is the number of frames in the transfer.
	count() int
	// transfer finishes the transfer and returns it as it goes on the bus,
	// the short-packet rule applied.
	transfer() []byte
	reset()
}

// frameReader walks the frames of one bulk-IN transfer.
type frameReader interface {
	reset(transfer []byte)
	// next returns the next frame, a slice of the transfer, or false at
	// the end or at the first malformed part.
	next() ([]byte, bool)
	// offset is where in the transfer the frame next returned last begins.
	offset() int
	// err says what ended the walk early, nil at the end of a good transfer.
	err() error
}

// errFrameTooLarge: a frame larger than the device takes in a transfer.
type errFrameTooLarge struct{ n, max int }

func (e errFrameTooLarge) Error() string {
	return fmt.Sprintf("a frame of %d bytes, the device takes %d at most", e.n, e.max)
}

// padShortPacket applies the short-packet rule to a transfer held in a
// buffer with room for one more byte.
func padShortPacket(b []byte, maxPacket int) []byte {
	if usb.ShortPacketPad(len(b), maxPacket) > 0 {
		b = append(b, 0)
	}
	return b
}

// rndisFraming: PACKET_MSGs, several per transfer within the device's
// limits.
type rndisFraming struct {
	limits    rndis.PacketLimits
	maxPacket int // wMaxPacketSize of bulk OUT
}

func (f rndisFraming) newWriter() frameWriter {
	// +1 for the short-packet rule's byte.
	return &rndisWriter{PacketWriter: rndis.NewPacketWriter(make([]byte, 0, f.limits.MaxTransferSize+1), f.limits), maxPacket: f.maxPacket}
}

func (f rndisFraming) newReader() frameReader { return &rndisReader{} }

type rndisWriter struct {
	*rndis.PacketWriter
	maxPacket int
}

func (w *rndisWriter) reserve(n int) ([]byte, bool, error) { return w.Reserve(n) }
func (w *rndisWriter) count() int                          { return w.Count() }
func (w *rndisWriter) transfer() []byte                    { return padShortPacket(w.Bytes(), w.maxPacket) }
func (w *rndisWriter) reset()                              { w.Reset() }

type rndisReader struct{ r rndis.PacketReader }

func (r *rndisReader) reset(transfer []byte) { r.r = rndis.NewPacketReader(transfer) }
func (r *rndisReader) next() ([]byte, bool)  { return r.r.Next() }
func (r *rndisReader) offset() int           { return r.r.Offset() }
func (r *rndisReader) err() error            { return r.r.Err() }
