package ncm

import "encoding/binary"

var le = binary.LittleEndian

// layout is where an NTB format puts its fields: the NTH, the NDP header and
// the NDP entries differ between NTB16 and NTB32 in width and offsets only.
type layout struct {
	name, nth, ndp         string // the format's and structures' names, for errors
	nthSig, ndpSig, ndpCRC uint32
	otherNTH, otherNDP     string // the other format's names, to say a block has the wrong one
	otherNTHSig            uint32
	otherNDPSig            [2]uint32

	nthSize, ndpHeader, entrySize int
	blockLenAt, ndpIndexAt        int // in the NTH
	nextAt                        int // in the NDP
	wide                          bool
	maxBlock                      uint64 // the largest block length the NTH can state

	blockLenField, ndpIndexField, nextField, indexField, lengthField string
}

// layouts is read only: the two formats' layouts, indexed by Format.
var layouts = [...]layout{
	NTB16: {
		name: "NTB16", nth: "NTH16", ndp: "NDP16",
		nthSig: SignatureNTH16, ndpSig: SignatureNDP16, ndpCRC: SignatureNDP16CRC,
		otherNTH: "NTH32", otherNDP: "NDP32",
		otherNTHSig: SignatureNTH32, otherNDPSig: [2]uint32{SignatureNDP32, SignatureNDP32CRC},
		nthSize: NTH16Size, ndpHeader: NDP16HeaderSize, entrySize: NDP16EntrySize,
		blockLenAt: 8, ndpIndexAt: 10, nextAt: 6, maxBlock: 0xFFFF,
		blockLenField: "wBlockLength", ndpIndexField: "wNdpIndex", nextField: "wNextNdpIndex",
		indexField: "wDatagramIndex", lengthField: "wDatagramLength",
	},
	NTB32: {
		name: "NTB32", nth: "NTH32", ndp: "NDP32",
		nthSig: SignatureNTH32, ndpSig: SignatureNDP32, ndpCRC: SignatureNDP32CRC,
		otherNTH: "NTH16", otherNDP: "NDP16",
		otherNTHSig: SignatureNTH16, otherNDPSig: [2]uint32{SignatureNDP16, SignatureNDP16CRC},
		nthSize: NTH32Size, ndpHeader: NDP32HeaderSize, entrySize: NDP32EntrySize,
		blockLenAt: 8, ndpIndexAt: 12, nextAt: 8, wide: true, maxBlock: 0xFFFFFFFF,
		blockLenField: "dwBlockLength", ndpIndexField: "dwNdpIndex", nextField: "dwNextNdpIndex",
		indexField: "dwDatagramIndex", lengthField: "dwDatagramLength",
	},
}

// layoutOf returns f's layout, or nil for a format that does not exist.
func layoutOf(f Format) *layout {
	if int(f) >= len(layouts) {
		return nil
	}
	return &layouts[f]
}

// word reads the 16- or 32-bit field at off; the caller has checked that it
// lies inside b.
func (l *layout) word(b []byte, off int) uint64 {
	if l.wide {
		return uint64(le.Uint32(b[off:]))
	}
	return uint64(le.Uint16(b[off:]))
}

func (l *layout) putWord(b []byte, off int, v int) {
	if l.wide {
		le.PutUint32(b[off:], uint32(v))
	} else {
		le.PutUint16(b[off:], uint16(v))
	}
}

// ndpSize is the wLength of an NDP pointing to n datagrams: its header, n
// entries and the null entry that ends them.
func (l *layout) ndpSize(n int) int { return l.ndpHeader + (n+1)*l.entrySize }
