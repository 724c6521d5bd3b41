package sim

import (
	"encoding/binary"

	"github.com/rndis-netd/rndis-netd/ncm"
)

// ntbLayout is where NTB16 and NTB32 keep the fields that the phone checks
// beyond ncm.Reader (as Linux's f_ncm does) and that the hostile device
// damages. Package ncm reads and writes blocks; this only locates fields.
type ntbLayout struct {
	nthSize, blockLenAt, ndpIndexAt int // in the NTH
	ndpHeader, nextAt, entrySize    int // in the NDP; wLength is at 4 in both
	wide                            bool
	nthSig, ndpSig, ndpCRCSig       uint32
	otherNTHSig, otherNDPSig        uint32 // the other format's, which a block of this one must not have
}

var ntbLayouts = [...]ntbLayout{
	ncm.NTB16: {nthSize: ncm.NTH16Size, blockLenAt: 8, ndpIndexAt: 10, ndpHeader: ncm.NDP16HeaderSize, nextAt: 6, entrySize: ncm.NDP16EntrySize,
		nthSig: ncm.SignatureNTH16, ndpSig: ncm.SignatureNDP16, ndpCRCSig: ncm.SignatureNDP16CRC,
		otherNTHSig: ncm.SignatureNTH32, otherNDPSig: ncm.SignatureNDP32},
	ncm.NTB32: {nthSize: ncm.NTH32Size, blockLenAt: 8, ndpIndexAt: 12, ndpHeader: ncm.NDP32HeaderSize, nextAt: 8, entrySize: ncm.NDP32EntrySize, wide: true,
		nthSig: ncm.SignatureNTH32, ndpSig: ncm.SignatureNDP32, ndpCRCSig: ncm.SignatureNDP32CRC,
		otherNTHSig: ncm.SignatureNTH16, otherNDPSig: ncm.SignatureNDP16},
}

// layoutOf returns the layout of f, NTB16 or NTB32.
func layoutOf(f ncm.Format) *ntbLayout {
	if f == ncm.NTB32 {
		return &ntbLayouts[ncm.NTB32]
	}
	return &ntbLayouts[ncm.NTB16]
}

const ndpLengthAt = 4

var le = binary.LittleEndian

// word reads the 16- or 32-bit field at off of b; 0 past its end.
func (l *ntbLayout) word(b []byte, off int) int {
	size := 2
	if l.wide {
		size = 4
	}
	if off < 0 || off+size > len(b) {
		return 0
	}
	if l.wide {
		return int(le.Uint32(b[off:]))
	}
	return int(le.Uint16(b[off:]))
}

// putWord writes v to the 16- or 32-bit field at off of b, if it is there.
func (l *ntbLayout) putWord(b []byte, off, v int) {
	switch {
	case off < 0:
	case l.wide && off+4 <= len(b):
		le.PutUint32(b[off:], uint32(v))
	case !l.wide && off+2 <= len(b):
		le.PutUint16(b[off:], uint16(v))
	}
}

// maxBlock is the largest block length the NTH can state.
func (l *ntbLayout) maxBlock() int {
	if l.wide {
		return 1<<31 - 1
	}
	return 0xFFFF
}

// ndpAt returns the offset of the first NDP, from the NTH.
func (l *ntbLayout) ndpAt(block []byte) int { return l.word(block, l.ndpIndexAt) }

// entry returns the offsets of datagram entry i of the NDP at ndp: its
// index and its length.
func (l *ntbLayout) entry(ndp, i int) (index, length int) {
	at := ndp + l.ndpHeader + i*l.entrySize
	return at, at + l.entrySize/2
}

// fncmChain reports whether a block that ncm.Reader walked without error
// also passes what Linux's f_ncm checks and the Reader does not: each NDP
// at a multiple of 4, its wLength a multiple of the entry size, and its
// first entry a datagram (f_ncm refuses an NDP with none: "Bad index").
func (l *ntbLayout) fncmChain(block []byte) bool {
	at := l.ndpAt(block)
	for range ncm.MaxNDPs {
		if at == 0 {
			return true
		}
		index, length := l.entry(at, 0)
		if at%4 != 0 || length+l.entrySize/2 > len(block) {
			return false
		}
		if int(le.Uint16(block[at+ndpLengthAt:]))%l.entrySize != 0 || l.word(block, index) == 0 || l.word(block, length) == 0 {
			return false
		}
		at = l.word(block, at+l.nextAt)
	}
	return at == 0
}
