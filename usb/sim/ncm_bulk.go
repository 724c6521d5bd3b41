package sim

import (
	"hash/crc32"

	"github.com/rndis-netd/rndis-netd/ncm"
	"github.com/rndis-netd/rndis-netd/usb"
)

// fncmMaxDatagrams is the most datagrams Linux's f_ncm puts in one NTB: its
// TX_MAX_NUM_DPE (32) entries, less the null one.
const fncmMaxDatagrams = 31

// ntbPacker packs the phone's frames into one NTB per transfer as f_ncm's
// ncm_wrap_ntb does: the NTH, the datagrams at offsets of wNdpInDivisor and
// wNdpInPayloadRemainder, one NDP at the end, wSequence 0, at most
// NTBMaxDatagrams datagrams (31 for f_ncm) and the host's input size.
type ntbPacker struct {
	n       *ncmFunction
	w       *ncm.Writer
	format  ncm.Format // what w was made for
	limits  ncm.Limits
	out     []byte   // the host's buffer
	dataEnd int      // where the last datagram ends
	crcs    [][]byte // the datagrams, each with room for its CRC, in CRC mode
}

func (n *ncmFunction) tx() txFramer { return &n.packer }

// nextLimits returns the rules of the next block into a host buffer of bufSize
// bytes. f_ncm places the datagram itself, not its payload, at the
// remainder, so the payload conversion of InLimits is undone. A host buffer
// smaller than the negotiated blocks gets smaller ones, where a real
// device's transfer would overflow it.
func (k *ntbPacker) nextLimits(bufSize int) (ncm.Limits, error) {
	n := k.n
	size := n.inputSize
	if bufSize < size {
		size = bufSize - 1
	}
	datagrams := n.p.cfg.NTBMaxDatagrams
	if datagrams == 0 {
		datagrams = fncmMaxDatagrams
	}
	if n.inMaxDatagrams > 0 {
		datagrams = min(datagrams, n.inMaxDatagrams)
	}
	l, err := n.params.InLimits(n.format, size, datagrams)
	if err != nil {
		return l, err
	}
	l.Remainder = int(n.params.InPayloadRemainder)
	if l.Remainder >= l.Divisor {
		l.Remainder = 0
	}
	return l, l.Validate(n.format)
}

func (k *ntbPacker) begin(buf []byte) {
	k.out, k.crcs = buf, k.crcs[:0]
	k.dataEnd = layoutOf(k.n.format).nthSize
	l, err := k.nextLimits(len(buf))
	if err != nil {
		k.w = nil // every frame is dropped: no block fits the host's buffer
		return
	}
	if k.w == nil || l != k.limits || k.n.format != k.format {
		k.w, err = ncm.NewWriter(make([]byte, 0, l.MaxSize+1), l, k.n.format)
		if err != nil {
			k.w = nil
			return
		}
		k.limits, k.format = l, k.n.format
	}
	k.w.Reset()
}

func (k *ntbPacker) count() int {
	if k.w == nil {
		return 0
	}
	return k.w.Count()
}

func (k *ntbPacker) reserve(size int) ([]byte, bool, error) {
	if k.w == nil {
		return nil, false, errNoBlock
	}
	n := size
	if k.n.crc {
		n += crcSize
	}
	// f_ncm closes a block before it must: it counts the worst padding
	// before the datagram and before the NDP, and room for two more
	// entries.
	l, lay := k.limits, layoutOf(k.format)
	if c := k.w.Count(); c > 0 &&
		k.dataEnd+l.Divisor+l.Remainder+n+lay.ndpHeader+c*lay.entrySize+l.NDPAlignment+2*lay.entrySize > l.MaxSize {
		return nil, false, nil
	}
	dst, ok, err := k.w.Reserve(n)
	if !ok || err != nil {
		return nil, ok, err
	}
	start := k.dataEnd + (l.Remainder-k.dataEnd)&(l.Divisor-1)
	k.dataEnd = start + n
	if k.n.crc {
		k.crcs = append(k.crcs, dst)
		return dst[:size], true, nil
	}
	return dst, true, nil
}

const crcSize = 4

func (k *ntbPacker) finish(corrupt bool) int {
	block := k.w.Finish()
	lay := layoutOf(k.format)
	le.PutUint16(block[6:], 0) // wSequence: f_ncm never writes it
	if k.n.crc {
		// f_ncm appends each datagram's CRC-32 and signs the NDP "NCM1".
		for _, d := range k.crcs {
			body := d[:len(d)-crcSize]
			le.PutUint32(d[len(body):], crc32.ChecksumIEEE(body))
		}
		le.PutUint32(block[lay.ndpAt(block):], lay.ndpCRCSig)
	}
	n := copy(k.out, block)
	if corrupt {
		lay.putWord(k.out, lay.blockLenAt, lay.maxBlock()) // past the transfer
	}
	// u_ether ends a transfer that fills whole packets with a zero-length
	// packet, or without them with one more byte, except a block of the
	// negotiated size, which ends the host's transfer by itself.
	if k.n.p.cfg.NoZeroLengthPackets && n != k.n.inputSize && n < len(k.out) && usb.ShortPacketPad(n, k.n.p.cfg.BulkMaxPacket) > 0 {
		k.out[n] = 0
		n++
	}
	return n
}

// fromHost takes a host transfer as f_ncm's ncm_unwrap_ntb does: one or
// more NTBs back to back, then perhaps one zero byte (Windows's host pads
// so instead of a zero-length packet). Each NTB must be of the negotiated
// format, no longer than dwNtbOutMaxSize, walk cleanly with ncm.Reader, and
// pass f_ncm's own checks: NDPs at multiples of 4, each with a datagram,
// with the signature the CRC mode asks for, datagrams no longer than
// wMaxSegmentSize (and with CRC mode, their CRCs right). Any failure drops
// the whole transfer, datagrams already parsed included.
func (n *ncmFunction) fromHost(data []byte, frames [][]byte) (_ [][]byte, violation bool) {
	limit := int(n.params.OutMaxSize)
	// f_ncm's OUT request is dwNtbOutMaxSize bytes: a longer transfer
	// spills into the next request, and one shorter that fills whole
	// packets (a zero-length one too) does not end it.
	if len(data) > limit || (len(data) < limit && len(data)%n.p.cfg.BulkMaxPacket == 0) {
		return frames, true
	}
	for rest := data; len(rest) > 0; {
		if len(rest) == 1 && rest[0] == 0 {
			break
		}
		blockLen, ok := n.parseNTB(rest, &frames)
		if !ok {
			return frames, true
		}
		rest = rest[blockLen:]
	}
	return frames, false
}

// parseNTB appends the datagrams of the NTB that begins block and returns
// its length, or false when f_ncm would refuse it.
func (n *ncmFunction) parseNTB(block []byte, frames *[][]byte) (int, bool) {
	lay := layoutOf(n.format)
	blockLen := lay.word(block, lay.blockLenAt)
	if blockLen == 0 {
		blockLen = len(block) // the rest of the transfer
	}
	if len(block) < lay.nthSize || blockLen > len(block) || blockLen > int(n.params.OutMaxSize) {
		return 0, false
	}
	block = block[:blockLen]
	r := &n.reader
	r.Reset(block, n.format)
	count := 0
	for d, ok := r.Next(); ok; d, ok = r.Next() {
		size := len(d)
		if n.crc {
			size += crcSize
		}
		if r.CRC() != n.crc || size > maxSegmentSize(n.p.cfg) {
			return 0, false
		}
		if n.crc && le.Uint32(block[r.Offset()+len(d):]) != crc32.ChecksumIEEE(d) {
			return 0, false
		}
		*frames = append(*frames, d)
		count++
	}
	if r.Err() != nil || !lay.fncmChain(block) {
		return 0, false
	}
	s := &n.p.stats
	s.NTBsFromHost++
	s.MaxPacketsFromHost = max(s.MaxPacketsFromHost, count)
	return blockLen, true
}
