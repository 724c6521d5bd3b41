package sim

import (
	"slices"

	"github.com/rndis-netd/rndis-netd/ncm"
)

const ethernetHeader = 14

// hostileLimits are those of the hostile device's NTBs: Linux's f_ncm's.
var hostileLimits = ncm.Limits{MaxSize: 16384, Divisor: 4, Remainder: 0, NDPAlignment: 4, MaxDatagrams: fncmMaxDatagrams}

// ntbFault builds a transfer with NCM fault f: an NTB of format with one
// datagram, damaged, for a host that negotiated blocks of inputSize bytes
// and reads into bufSize; false when f cannot be built so.
func (h *Hostile) ntbFault(f Fault, format ncm.Format, inputSize, bufSize int) ([]byte, bool) {
	lay := layoutOf(format)
	w, err := ncm.NewWriter(nil, hostileLimits, format)
	if err != nil {
		return nil, false // hostileLimits suit both formats
	}
	w.Add(h.frame(60 + h.rng.IntN(200)))
	b := w.Finish()
	ndp := lay.ndpAt(b)
	index, length := lay.entry(ndp, 0)
	pick := func(choices ...int) int { return choices[h.rng.IntN(len(choices))] }
	between := func(lo, hi int) int { return lo + h.rng.IntN(hi-lo+1) } // lo..hi
	switch f {
	case BulkGarbage:
		for {
			g := h.randomBytes(1 + h.rng.IntN(2048))
			r := ncm.NewReader(g, format)
			if _, ok := r.Next(); !ok && r.Err() != nil {
				return g, true
			}
		}
	case BulkEmpty:
		return nil, true
	case NTBBadNTHSignature:
		le.PutUint32(b, h.otherThan(lay.otherNTHSig, lay.nthSig))
	case NTBBadHeaderLength:
		v := h.rng.IntN(0xFFFF)
		if v >= lay.nthSize {
			v++
		}
		le.PutUint16(b[4:], uint16(v))
	case NTBBadBlockLength:
		lay.putWord(b, lay.blockLenAt, pick(
			between(len(b)+1, min(lay.maxBlock(), 1<<20)),       // past the transfer
			between(1, lay.nthSize-1),                           // inside the NTH
			between(max(lay.nthSize, ndp), ndp+lay.ndpHeader-1), // cutting off the NDP's header
		))
	case NTBBadNDPSignature:
		le.PutUint32(b[ndp:], h.otherThan(lay.otherNDPSig, lay.ndpSig, lay.ndpCRCSig))
	case NTBBadNDPLength:
		le.PutUint16(b[ndp+ndpLengthAt:], uint16(pick(
			between(0, lay.ndpHeader+2*lay.entrySize-1), // no room for an entry and the null one
			between(len(b)-ndp+1, 0xFFFF),               // past the block
		)))
	case NTBNDPOutside:
		lay.putWord(b, lay.ndpIndexAt, pick(0, between(len(b)-lay.ndpHeader+1, min(lay.maxBlock(), 1<<20))))
	case NTBNDPOverlap:
		lay.putWord(b, lay.ndpIndexAt, between(1, lay.nthSize-1))
	case NTBNDPLoop:
		if h.rng.IntN(2) == 0 {
			lay.putWord(b, ndp+lay.nextAt, ndp) // to itself
			break
		}
		// A second NDP after the first, pointing back to it.
		second := (len(b) + 3) &^ 3
		b = append(b, make([]byte, second-len(b))...)
		b = append(b, b[ndp:ndp+int(le.Uint16(b[ndp+ndpLengthAt:]))]...)
		lay.putWord(b, ndp+lay.nextAt, second)
		lay.putWord(b, second+lay.nextAt, ndp)
		lay.putWord(b, lay.blockLenAt, len(b))
	case NTBDatagramOutside:
		if h.rng.IntN(2) == 0 {
			lay.putWord(b, index, between(len(b), len(b)+1000)) // starting past the block
		} else {
			lay.putWord(b, length, between(len(b)-lay.word(b, index)+1, 0xFFFF)) // ending past it
		}
	case NTBDatagramOverlap:
		if h.rng.IntN(2) == 0 {
			lay.putWord(b, index, between(1, lay.nthSize-1)) // in the NTH
		} else {
			start := between(ndp-40, ndp-ethernetHeader) // running into the NDP
			lay.putWord(b, index, start)
			lay.putWord(b, length, ndp+1-start+h.rng.IntN(4))
		}
	case NTBRuntDatagram:
		lay.putWord(b, length, between(1, 13))
	case NTBZeroLengthDatagram:
		lay.putWord(b, length, 0)
	case NTBTooLong:
		hi := min(bufSize, lay.maxBlock(), inputSize+2048)
		if hi < inputSize+2 {
			return nil, false // the host's buffer holds nothing longer
		}
		b = append(b, make([]byte, between(inputSize+2, hi)-len(b))...)
		lay.putWord(b, lay.blockLenAt, len(b))
	default:
		return nil, false
	}
	return b, true
}

// otherThan returns other (another format's signature) or a random
// signature, never one of valid.
func (h *Hostile) otherThan(other uint32, valid ...uint32) uint32 {
	if h.rng.IntN(2) == 0 {
		return other
	}
	for {
		sig := h.rng.Uint32()
		if sig != other && !slices.Contains(valid, sig) {
			return sig
		}
	}
}
