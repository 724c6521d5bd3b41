package ncm

import (
	"bytes"
	"testing"
)

func formatOf(wide bool) Format {
	if wide {
		return NTB32
	}
	return NTB16
}

// FuzzReader: every datagram yielded lies inside the block, clear of the NTH
// and of every NDP, and the walk ends.
func FuzzReader(f *testing.F) {
	for _, g := range goldenBlocks {
		f.Add(unhexBlock(f, g.hex), g.format == NTB32)
	}
	f.Add(packed(f, NTB16, ethernetFrames(5, 60)...), false)
	f.Add(packed(f, NTB32, ethernetFrames(5, 60)...), true)
	f.Add(append(packed(f, NTB16, frameA), 0), false)
	f.Fuzz(func(t *testing.T, block []byte, wide bool) {
		format := formatOf(wide)
		lay := layoutOf(format)
		r := NewReader(block, format)
		n := 0
		for d, ok := r.Next(); ok; d, ok = r.Next() {
			start, end := r.Offset(), r.Offset()+len(d)
			if r.CRC() {
				end += crcSize
			}
			if len(d) < ethernetHeaderSize || start < lay.nthSize || end > len(block) || &block[start] != &d[0] {
				t.Fatalf("datagram of %d bytes at %d in a %d-byte block", len(d), start, len(block))
			}
			for _, s := range r.ndps[:r.nndp] {
				if start < s.end && end > s.start {
					t.Fatalf("datagram %d..%d overlaps the NDP %d..%d", start, end, s.start, s.end)
				}
			}
			// Each datagram has an entry of its own in an NDP, and NDPs
			// do not overlap.
			if n++; n > len(block)/lay.entrySize {
				t.Fatalf("%d datagrams from %d bytes", n, len(block))
			}
		}
		if r.nndp > MaxNDPs {
			t.Fatalf("%d NDPs", r.nndp)
		}
	})
}

// FuzzWriter: whatever frames and limits, what the writer packs the reader
// unpacks unchanged, within the limits.
func FuzzWriter(f *testing.F) {
	f.Add(bytes.Repeat([]byte("abcdefghij"), 30), uint16(16384), uint8(2), uint8(2), uint8(2), uint8(39), uint8(50), false)
	f.Add(bytes.Repeat([]byte("abcdefghij"), 30), uint16(200), uint8(6), uint8(50), uint8(5), uint8(3), uint8(7), true)
	f.Add(bytes.Repeat([]byte{0}, 100), uint16(60), uint8(0), uint8(0), uint8(0), uint8(0), uint8(0), false)
	f.Fuzz(func(t *testing.T, data []byte, maxSize uint16, divShift, remainder, alignShift, maxDatagrams, split uint8, wide bool) {
		format := formatOf(wide)
		divisor := 1 << (divShift % 8)
		limits := Limits{
			MaxSize:      int(maxSize),
			Divisor:      divisor,
			Remainder:    int(remainder) % divisor,
			NDPAlignment: 1 << (alignShift % 8),
			MaxDatagrams: int(maxDatagrams%64) + 1,
		}
		if limits.Validate(format) != nil {
			return
		}
		var in [][]byte
		step := int(split%64) + ethernetHeaderSize
		for i := 0; i+ethernetHeaderSize <= len(data); i += step {
			in = append(in, data[i:min(i+step, len(data))])
		}
		w, err := NewWriter(nil, limits, format)
		if err != nil {
			t.Fatal(err)
		}
		var out [][]byte
		flush := func(seq int) {
			block := w.Finish()
			if len(block) > limits.MaxSize || w.Count() > limits.MaxDatagrams {
				t.Fatalf("block of %d bytes, %d datagrams breaks %+v", len(block), w.Count(), limits)
			}
			if at := ndpOffset(block, format); at%limits.NDPAlignment != 0 {
				t.Fatalf("NDP at %d breaks %+v", at, limits)
			}
			r := NewReader(block, format)
			for d, ok := r.Next(); ok; d, ok = r.Next() {
				if r.Offset()%limits.Divisor != limits.Remainder {
					t.Fatalf("datagram at %d breaks %+v", r.Offset(), limits)
				}
				out = append(out, bytes.Clone(d)) // the buffer is reused
			}
			if r.Err() != nil {
				t.Fatal(r.Err())
			}
			if r.Sequence() != uint16(seq) {
				t.Fatalf("block %d has wSequence %d", seq, r.Sequence())
			}
			w.Reset()
		}
		blocks := 0
		for _, fr := range in {
			ok, err := w.Add(fr)
			if err != nil {
				return // a frame larger than these limits allow
			}
			if !ok {
				flush(blocks)
				blocks++
				if ok, _ := w.Add(fr); !ok {
					t.Fatal("frame did not fit an empty block")
				}
			}
		}
		if w.Count() > 0 {
			flush(blocks)
		}
		if !equalFrames(in, out) {
			t.Fatalf("%d frames out, %d in, or they differ", len(out), len(in))
		}
	})
}

// FuzzNTBParameters: parameters that parse re-encode to the same, and the
// limits derived from them hold one full frame, within what the device
// offered.
func FuzzNTBParameters(f *testing.F) {
	f.Add(fncmParameters.Marshal(), int32(0))
	f.Add(fncmParameters.Marshal(), int32(100))
	odd := fncmParameters
	odd.OutMaxSize, odd.OutDivisor, odd.OutPayloadRemainder, odd.OutAlignment, odd.OutMaxDatagrams = 1600, 6, 9, 0, 3
	f.Add(odd.Marshal(), int32(70000))
	f.Fuzz(func(t *testing.T, b []byte, want int32) {
		p, err := ParseNTBParameters(b)
		if err != nil {
			return
		}
		if again, err := ParseNTBParameters(p.Marshal()); err != nil || again != p {
			t.Fatalf("re-encoded %+v parses as %+v, %v", p, again, err)
		}
		for _, format := range []Format{NTB16, NTB32} {
			if in := p.InputSize(format, int(want)); in < 1 || uint64(in) > uint64(p.InMaxSize) || in > maxNTBSize {
				t.Fatalf("%v: input size %d of %+v", format, in, p)
			}
			if l, err := p.InLimits(format, p.InputSize(format, int(want)), 0); err == nil && l.Validate(format) != nil {
				t.Fatalf("%v: InLimits %+v do not validate", format, l)
			}
			l, err := p.OutLimits(format, int(want))
			if err != nil {
				continue
			}
			if l.Validate(format) != nil || uint64(l.MaxSize) > uint64(p.OutMaxSize) || l.MaxFrame(format) < maxEthernetFrame || l.MaxDatagrams > MaxDatagramsPerNTB {
				t.Fatalf("%v: OutLimits %+v of %+v", format, l, p)
			}
			w, err := NewWriter(nil, l, format)
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := w.Add(make([]byte, maxEthernetFrame)); !ok || err != nil {
				t.Fatalf("%v: a full frame does not fit %+v: %v", format, l, err)
			}
			if got, r := readAll(t, w.Finish(), format); r.Err() != nil || len(got) != 1 {
				t.Fatalf("%v: %d datagrams back, %v", format, len(got), r.Err())
			}
		}
	})
}

// FuzzNotifications: whatever the transfers, the reader never panics, each
// notification it yields re-encodes to one read the same, and a speed change
// split anywhere comes out whole.
func FuzzNotifications(f *testing.F) {
	for _, g := range goldenNotifications {
		f.Add(unhex(f, g.hex), []byte{}, []byte{}, uint32(1), uint32(2), uint8(8))
	}
	speed := SpeedNotification(0, 1000, 2000).Marshal()
	f.Add(speed[:8], speed[8:], ConnectionNotification(1, true).Marshal(), uint32(480000000), uint32(0), uint8(12))
	f.Add([]byte{0xa1, 0x2a, 0, 0, 0, 0, 8}, []byte{0x21}, speed, uint32(0xa1), uint32(0), uint8(8))
	f.Fuzz(func(t *testing.T, a, b, c []byte, down, up uint32, cut uint8) {
		var r NotificationReader
		for _, tr := range [][]byte{a, b, c} {
			r.Feed(tr)
			n := 0
			for got, ok := r.Next(); ok; got, ok = r.Next() {
				if n++; n > len(tr)/NotificationHeaderSize+1 {
					t.Fatalf("%d notifications from %d bytes", n, len(tr))
				}
				again, errs := readNotifications(got.Marshal())
				if len(again) != 1 || again[0] != got || errs != nil {
					t.Fatalf("%+v re-encoded reads as %+v, %v", got, again, errs)
				}
			}
		}
		// The header comes whole (8 bytes fit the smallest interrupt
		// packet); the data may follow in the same transfer or the next,
		// in pieces.
		whole := SpeedNotification(3, down, up)
		m := whole.Marshal()
		k := NotificationHeaderSize + int(cut)%(speedChangeDataSize+1)
		got, errs := readNotifications(m[:k], m[k:])
		if wholeNotification(m[k:]) {
			return // the documented exception: the data looks like a notification of its own
		}
		if len(got) != 1 || got[0] != whole || errs != nil {
			t.Fatalf("%+v split at %d reads as %+v, %v", whole, k, got, errs)
		}
	})
}
