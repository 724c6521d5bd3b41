package ncm

import "fmt"

// Limits are the rules a Writer packs one NTB by: those of its receiver.
type Limits struct {
	// MaxSize is the largest block, headers and padding included.
	MaxSize int
	// Divisor and Remainder place datagrams: each starts at an offset
	// that is Remainder modulo Divisor. Divisor is a power of two and
	// Remainder is less than it.
	Divisor, Remainder int
	// NDPAlignment is a power of two the NDP's offset is a multiple of.
	NDPAlignment int
	// MaxDatagrams is how many datagrams one block carries at most.
	MaxDatagrams int
}

// writerMaxNTB32 bounds MaxSize for NTB32, far above any device's
// dwNtbOutMaxSize, so that offsets plus padding stay within int on 32-bit
// platforms.
const writerMaxNTB32 = 1 << 28

// Validate reports limits no block of format f can satisfy or state.
func (l Limits) Validate(f Format) error {
	lay := layoutOf(f)
	switch {
	case lay == nil:
		return fmt.Errorf("ncm: unknown NTB format %v", f)
	case l.MaxSize < 1 || uint64(l.MaxSize) > lay.maxBlock || (lay.wide && l.MaxSize > writerMaxNTB32):
		return fmt.Errorf("ncm: MaxSize %d is out of range for %v", l.MaxSize, f)
	case !powerOfTwo(l.Divisor) || l.Divisor > l.MaxSize:
		return fmt.Errorf("ncm: divisor %d is not a power of two up to MaxSize", l.Divisor)
	case l.Remainder < 0 || l.Remainder >= l.Divisor:
		return fmt.Errorf("ncm: remainder %d is not less than the divisor %d", l.Remainder, l.Divisor)
	case !powerOfTwo(l.NDPAlignment) || l.NDPAlignment > l.MaxSize:
		return fmt.Errorf("ncm: NDP alignment %d is not a power of two up to MaxSize", l.NDPAlignment)
	case l.MaxDatagrams < 1 || lay.ndpSize(l.MaxDatagrams) > 0xFFFF:
		return fmt.Errorf("ncm: MaxDatagrams %d does not fit one NDP", l.MaxDatagrams)
	case l.MaxFrame(f) < 1:
		return fmt.Errorf("ncm: MaxSize %d leaves no room for a datagram", l.MaxSize)
	}
	return nil
}

// MaxFrame returns the largest datagram a block of format f carries: one
// datagram at the first offset the divisor allows after the NTH, then the
// NDP, aligned, with its entry and the null one.
func (l Limits) MaxFrame(f Format) int {
	lay := layoutOf(f)
	if lay == nil || !powerOfTwo(l.Divisor) || !powerOfTwo(l.NDPAlignment) {
		return 0
	}
	latestNDP := alignDown(l.MaxSize-lay.ndpSize(1), l.NDPAlignment)
	return latestNDP - l.datagramStart(lay.nthSize)
}

// datagramStart returns the first offset from off on where a datagram may
// start.
func (l Limits) datagramStart(off int) int {
	return off + (l.Remainder-off)&(l.Divisor-1)
}

// OutLimits derives the limits of the blocks the host sends, as Linux's
// cdc_ncm does (cdc_ncm_init, cdc_ncm_check_tx_max, cdc_ncm_fix_modulus):
//
//   - MaxSize is maxSize (DefaultNTBSize when 0 or less), kept within
//     dwNtbOutMaxSize and 65536 (65535 for NTB16, whose wBlockLength cannot
//     state more), and raised, where the device allows, to the least that
//     carries a 1514-byte frame with a full NDP, as Linux raises tx_max;
//   - wNdpOutAlignment and wNdpOutDivisor under 4, not a power of two, or
//     not less than MaxSize become 4, and a remainder not less than the
//     divisor becomes 0;
//   - the remainder places the datagram's payload, the bytes after its
//     14-byte Ethernet header (CDC NCM errata 1 §3.3.4, which Linux,
//     Windows and iPXE read alike), so Remainder, the datagram's own start,
//     is wNdpOutPayloadRemainder−14 modulo the divisor: 2 for the usual 0
//     of 4, which aligns the IP header;
//   - wNtbOutMaxDatagrams 0 (no limit) or above MaxDatagramsPerNTB becomes
//     MaxDatagramsPerNTB.
//
// Linux also adds a byte to a tx_max it chose below dwNtbOutMaxSize that
// falls on a packet boundary, because it pads large blocks to tx_max; a
// Writer ends each block after its NDP, so the short-packet rule is the
// caller's (see Writer.Finish). The result is an error when it cannot carry
// a 1514-byte frame.
func (p NTBParameters) OutLimits(f Format, maxSize int) (Limits, error) {
	lay := layoutOf(f)
	if lay == nil {
		return Limits{}, fmt.Errorf("ncm: unknown NTB format %v", f)
	}
	maxDatagrams := int(p.OutMaxDatagrams)
	if maxDatagrams == 0 || maxDatagrams > MaxDatagramsPerNTB {
		maxDatagrams = MaxDatagramsPerNTB
	}
	if maxSize <= 0 {
		maxSize = DefaultNTBSize
	}
	ceiling := min(int64(p.OutMaxSize), maxNTBSize, int64(lay.maxBlock))
	floor := min(int64(maxEthernetFrame+lay.ndpSize(maxDatagrams)+lay.nthSize), ceiling)
	size := int(max(floor, min(int64(maxSize), ceiling)))
	l := sanitize(size, p.OutDivisor, p.OutPayloadRemainder, p.OutAlignment, maxDatagrams)
	if l.MaxFrame(f) < maxEthernetFrame {
		return Limits{}, fmt.Errorf("ncm: %v blocks of %d bytes (dwNtbOutMaxSize %d, divisor %d, alignment %d) cannot carry a %d-byte frame",
			f, l.MaxSize, p.OutMaxSize, l.Divisor, l.NDPAlignment, maxEthernetFrame)
	}
	return l, l.Validate(f)
}

// InputSize returns the dwNtbInMaxSize for the host to set with
// SET_NTB_INPUT_SIZE, and to size its bulk-IN transfers by: want
// (DefaultNTBSize when 0 or less) kept between MinNTBInputSize and the
// device's dwNtbInMaxSize, at most 65536 (65535 for NTB16), as Linux's
// cdc_ncm_check_rx_max does. Where Linux asks for MinNTBInputSize from a
// device that offers less, this asks for what the device offers.
func (p NTBParameters) InputSize(f Format, want int) int {
	lay := layoutOf(f)
	if lay == nil {
		return 0
	}
	if want <= 0 {
		want = DefaultNTBSize
	}
	ceiling := min(int64(p.InMaxSize), maxNTBSize, int64(lay.maxBlock))
	return int(min(max(int64(want), MinNTBInputSize), ceiling))
}

// InLimits derives the limits of the blocks the device sends, for a
// simulated device: inputSize is what the host set with SET_NTB_INPUT_SIZE
// (kept within dwNtbInMaxSize) and maxDatagrams its wNtbInMaxDatagrams (0
// or above MaxDatagramsPerNTB: MaxDatagramsPerNTB). The In divisor,
// remainder and alignment are sanitized as OutLimits sanitizes the Out ones.
func (p NTBParameters) InLimits(f Format, inputSize, maxDatagrams int) (Limits, error) {
	lay := layoutOf(f)
	if lay == nil {
		return Limits{}, fmt.Errorf("ncm: unknown NTB format %v", f)
	}
	if maxDatagrams <= 0 || maxDatagrams > MaxDatagramsPerNTB {
		maxDatagrams = MaxDatagramsPerNTB
	}
	size := int(min(int64(max(inputSize, 0)), int64(p.InMaxSize), maxNTBSize, int64(lay.maxBlock)))
	l := sanitize(size, p.InDivisor, p.InPayloadRemainder, p.InAlignment, maxDatagrams)
	return l, l.Validate(f)
}

// sanitize replaces divisors, remainders and alignments a device got wrong
// as Linux's cdc_ncm_fix_modulus does, and turns the payload remainder into
// the datagram's.
func sanitize(size int, divisor, payloadRemainder, alignment uint16, maxDatagrams int) Limits {
	const fallback = 4 // USB_CDC_NCM_NDP_ALIGN_MIN_SIZE
	d, r, a := int(divisor), int(payloadRemainder), int(alignment)
	if a < fallback || !powerOfTwo(a) || a >= size {
		a = fallback
	}
	if d < fallback || !powerOfTwo(d) || d >= size {
		d = fallback
	}
	if r >= d {
		r = 0
	}
	return Limits{
		MaxSize:      size,
		Divisor:      d,
		Remainder:    (r - ethernetHeaderSize) & (d - 1),
		NDPAlignment: a,
		MaxDatagrams: maxDatagrams,
	}
}

func powerOfTwo(n int) bool { return n > 0 && n&(n-1) == 0 }

func alignUp(n, align int) int { return (n + align - 1) &^ (align - 1) }

func alignDown(n, align int) int { return n &^ (align - 1) }
