package ncm

import "fmt"

// Reader walks one received NTB and yields each datagram as a slice of the
// block, without copying.
//
// The format is the one the host negotiated (SET_NTB_FORMAT); a block with
// the other format's signature is an error. The NTH is checked and the whole
// wNextNdpIndex chain is walked when the Reader is set up, at most MaxNDPs
// NDPs, each inside the block and overlapping neither the NTH nor another
// NDP (so a loop ends it); each datagram is then checked as Next reaches it:
// inside the block, clear of the NTH and of every NDP. So no datagram covers
// a byte the walk reads, and the caller may hand each over, or change it, in
// place without changing the walk. Datagrams are not checked against one
// another: a device may point twice at the same bytes.
//
// The first malformed structure ends the walk; Err says which, and the
// datagrams before it stand. Bytes after the block length are padding (the
// short-packet rule's extra byte) and are ignored. wSequence is reported,
// not checked: Linux's f_ncm leaves it 0.
type Reader struct {
	lay      *layout
	block    []byte // cut to the block length
	seq      uint16
	ndps     [MaxNDPs]ndpSpan
	nndp     int
	chainErr error // what ended the NDP chain, reported after its datagrams
	cur      int   // the NDP being walked
	entry    int   // offset of its next entry
	n        int   // entries read in it
	frameOff int
	crc      bool
	err      error
}

type ndpSpan struct {
	start, end int // the NDP's bytes, wLength of them
	crc        bool
}

// NewReader returns a reader over block, an NTB of format f.
func NewReader(block []byte, f Format) Reader {
	var r Reader
	r.Reset(block, f)
	return r
}

// Reset makes r a reader over block, an NTB of format f, as NewReader does,
// without building another Reader.
func (r *Reader) Reset(block []byte, f Format) {
	*r = Reader{}
	r.lay = layoutOf(f)
	if r.lay == nil {
		r.err = fmt.Errorf("ncm: unknown NTB format %v", f)
		return
	}
	first, err := r.header(block)
	if err != nil {
		r.err = err
		return
	}
	r.chainErr = r.chain(first)
	if r.nndp > 0 {
		r.entry = r.ndps[0].start + r.lay.ndpHeader
	}
}

// header checks the NTH, cuts r.block to the block length and returns the
// offset of the first NDP.
func (r *Reader) header(block []byte) (uint64, error) {
	l := r.lay
	if len(block) < l.nthSize {
		return 0, formatErr(l.nth, 0, "wHeaderLength", "%d bytes cannot hold the %d-byte %s", len(block), l.nthSize, l.nth)
	}
	switch sig := le.Uint32(block); sig {
	case l.nthSig:
	case l.otherNTHSig:
		return 0, formatErr(l.nth, 0, "dwSignature", "%s signature %q in a block of the negotiated %s", l.otherNTH, signature(sig), l.name)
	default:
		return 0, formatErr(l.nth, 0, "dwSignature", "%#08x (%q), want %q", sig, signature(sig), signature(l.nthSig))
	}
	if n := le.Uint16(block[4:]); int(n) != l.nthSize {
		return 0, formatErr(l.nth, 0, "wHeaderLength", "%d, want %d", n, l.nthSize)
	}
	r.seq = le.Uint16(block[6:])
	blockLen := l.word(block, l.blockLenAt)
	switch {
	case blockLen == 0:
		// The block ends with the transfer: Windows's NCM host reads a
		// zero so. Linux bounds everything by the transfer and never
		// reads the length.
		blockLen = min(uint64(len(block)), l.maxBlock)
	case blockLen > uint64(len(block)):
		return 0, formatErr(l.nth, 0, l.blockLenField, "%d exceeds the %d bytes received", blockLen, len(block))
	case blockLen < uint64(l.nthSize):
		return 0, formatErr(l.nth, 0, l.blockLenField, "%d is shorter than the %d-byte %s", blockLen, l.nthSize, l.nth)
	}
	r.block = block[:blockLen:blockLen]
	first := l.word(block, l.ndpIndexAt)
	if first == 0 {
		return 0, formatErr(l.nth, 0, l.ndpIndexField, "0: the block has no NDP")
	}
	return first, nil
}

// chain walks the NDPs from the one at next on and records each good one;
// it returns what ended the chain early, if anything did.
func (r *Reader) chain(next uint64) error {
	l := r.lay
	from, fromOff, fromField := l.nth, 0, l.ndpIndexField // the pointer to next
	for next != 0 {
		if r.nndp == MaxNDPs {
			return formatErr(from, fromOff, fromField, "a block of more than %d NDPs", MaxNDPs)
		}
		blockLen := uint64(len(r.block))
		if next < uint64(l.nthSize) {
			return formatErr(from, fromOff, fromField, "%d points into the %s", next, l.nth)
		}
		if next+uint64(l.ndpHeader) > blockLen {
			return formatErr(from, fromOff, fromField, "%d: an NDP there runs past the block's %d bytes", next, blockLen)
		}
		start := int(next)
		crc := false
		switch sig := le.Uint32(r.block[start:]); sig {
		case l.ndpSig:
		case l.ndpCRC:
			crc = true
		case l.otherNDPSig[0], l.otherNDPSig[1]:
			return formatErr(l.ndp, start, "dwSignature", "%s signature %q in a block of the negotiated %s", l.otherNDP, signature(sig), l.name)
		default:
			return formatErr(l.ndp, start, "dwSignature", "%#08x (%q), want %q or %q", sig, signature(sig), signature(l.ndpSig), signature(l.ndpCRC))
		}
		length := int(le.Uint16(r.block[start+4:]))
		if length < l.ndpSize(1) {
			return formatErr(l.ndp, start, "wLength", "%d is shorter than the %d bytes of a header, an entry and the null entry", length, l.ndpSize(1))
		}
		if uint64(start+length) > blockLen {
			return formatErr(l.ndp, start, "wLength", "%d runs past the block's %d bytes", length, blockLen)
		}
		for _, s := range r.ndps[:r.nndp] {
			if start == s.start {
				return formatErr(from, fromOff, fromField, "%d points back to an NDP already read: a loop", next)
			}
			if start < s.end && start+length > s.start {
				return formatErr(l.ndp, start, "wLength", "%d bytes from %d overlap the NDP at %d", length, start, s.start)
			}
		}
		r.ndps[r.nndp] = ndpSpan{start: start, end: start + length, crc: crc}
		r.nndp++
		from, fromOff, fromField = l.ndp, start, l.nextField
		next = l.word(r.block, start+l.nextAt)
	}
	return nil
}

// Next returns the next datagram, or false at the end of the block or at
// the first malformed structure. The datagram's capacity ends with it. Of an
// NDP with CRC ("NCM1", "ncm1") the datagrams come without their last four
// bytes, the CRC-32, which is not checked: a host asks for none with
// SET_CRC_MODE, as Linux does, and a device that appends one anyway still
// gets its frames through. Linux's cdc_ncm drops such NDPs; iPXE strips the
// CRC as this does.
func (r *Reader) Next() ([]byte, bool) {
	l := r.lay
	for r.err == nil && r.cur < r.nndp {
		ndp := r.ndps[r.cur]
		if r.entry+l.entrySize > ndp.end {
			r.err = formatErr(l.ndp, ndp.start, "wLength", "%d entries and no null entry to end them", r.n)
			break
		}
		index, length := l.word(r.block, r.entry), l.word(r.block, r.entry+l.entrySize/2)
		if index == 0 || length == 0 { // the null entry, which ends the NDP: CDC NCM §3.7
			r.cur++
			r.n = 0
			if r.cur < r.nndp {
				r.entry = r.ndps[r.cur].start + l.ndpHeader
			}
			continue
		}
		frame, err := r.datagram(ndp, index, length)
		if err != nil {
			r.err = err
			break
		}
		r.entry += l.entrySize
		r.n++
		r.crc = ndp.crc
		return frame, true
	}
	if r.err == nil && r.chainErr != nil {
		r.err, r.chainErr = r.chainErr, nil
	}
	return nil, false
}

// datagram checks the current entry of ndp, pointing to length bytes at
// index.
func (r *Reader) datagram(ndp ndpSpan, index, length uint64) ([]byte, error) {
	l := r.lay
	switch {
	case !ndp.crc && length < ethernetHeaderSize:
		return nil, r.entryErr(ndp, l.lengthField, "%d is shorter than an Ethernet header", length)
	case ndp.crc && length < ethernetHeaderSize+crcSize:
		return nil, r.entryErr(ndp, l.lengthField, "%d is shorter than an Ethernet header and the CRC", length)
	case index < uint64(l.nthSize):
		return nil, r.entryErr(ndp, l.indexField, "%d points into the %s", index, l.nth)
	case index+length > uint64(len(r.block)):
		return nil, r.entryErr(ndp, l.lengthField, "%d bytes at %d run past the block's %d", length, index, len(r.block))
	}
	start, end := int(index), int(index+length)
	for _, s := range r.ndps[:r.nndp] {
		if start < s.end && end > s.start {
			return nil, r.entryErr(ndp, l.indexField, "%d bytes at %d overlap the NDP at %d", length, start, s.start)
		}
	}
	r.frameOff = start
	if ndp.crc {
		end -= crcSize
	}
	return r.block[start:end:end], nil
}

// entryErr reports the current entry's field, numbered as the spec numbers
// them: wDatagramIndex[0] is the first.
func (r *Reader) entryErr(ndp ndpSpan, field, format string, args ...any) error {
	return formatErr(r.lay.ndp, ndp.start, fmt.Sprintf("%s[%d]", field, r.n), format, args...)
}

// Offset returns where in the block the datagram Next returned last begins.
func (r *Reader) Offset() int { return r.frameOff }

// CRC reports whether the datagram Next returned last came from an NDP with
// CRC, whose four bytes it does not include.
func (r *Reader) CRC() bool { return r.crc }

// Sequence returns the block's wSequence.
func (r *Reader) Sequence() uint16 { return r.seq }

// Err returns the error that ended the walk, or nil.
func (r *Reader) Err() error { return r.err }

// signature renders a signature's four bytes, as they are on the wire.
func signature(sig uint32) string {
	return string([]byte{byte(sig), byte(sig >> 8), byte(sig >> 16), byte(sig >> 24)})
}
