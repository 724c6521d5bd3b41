package ncm

import (
	"bytes"
	"errors"
	"testing"
)

// readAll reads every datagram of block, checking that Offset locates each.
func readAll(t testing.TB, block []byte, f Format) ([][]byte, *Reader) {
	t.Helper()
	r := NewReader(block, f)
	var got [][]byte
	for d, ok := r.Next(); ok; d, ok = r.Next() {
		if !bytes.Equal(block[r.Offset():r.Offset()+len(d)], d) || &block[r.Offset()] != &d[0] {
			t.Fatalf("Offset %d does not locate the datagram in the block", r.Offset())
		}
		got = append(got, d)
	}
	return got, &r
}

// packed returns a block of format f holding frames, as a Writer packs it
// with f_ncm's limits.
func packed(t testing.TB, f Format, frames ...[]byte) []byte {
	t.Helper()
	w, err := NewWriter(nil, fncmLimits, f)
	if err != nil {
		t.Fatal(err)
	}
	for _, fr := range frames {
		if ok, err := w.Add(fr); !ok || err != nil {
			t.Fatalf("Add = %v, %v", ok, err)
		}
	}
	return bytes.Clone(w.Finish())
}

func ethernetFrames(n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = bytes.Repeat([]byte{byte(i + 1)}, size+i)
	}
	return out
}

func TestReaderDatagramDoesNotReachIntoNext(t *testing.T) {
	r := NewReader(packed(t, NTB16, frameA, frameB), NTB16)
	d, _ := r.Next()
	if cap(d) != len(d) {
		t.Errorf("datagram has capacity %d beyond its %d bytes: an append would overwrite what follows", cap(d), len(d))
	}
}

func TestReaderIgnoresBytesAfterTheBlock(t *testing.T) {
	for _, pad := range [][]byte{{0}, {0, 0, 0}, []byte("garbage that is not an NTB")} {
		block := append(packed(t, NTB16, frameA), pad...)
		got, r := readAll(t, block, NTB16)
		if r.Err() != nil || !equalFrames(got, [][]byte{frameA}) {
			t.Errorf("with %d bytes after the block: %x, %v", len(pad), got, r.Err())
		}
	}
}

func TestReaderBlockLengthZeroMeansTheTransfer(t *testing.T) {
	for _, f := range []Format{NTB16, NTB32} {
		block := packed(t, f, frameA, frameB)
		layoutOf(f).putWord(block, layoutOf(f).blockLenAt, 0)
		got, r := readAll(t, block, f)
		if r.Err() != nil || !equalFrames(got, [][]byte{frameA, frameB}) {
			t.Errorf("%v: %x, %v", f, got, r.Err())
		}
	}
}

// handNDP is an NDP16 built by hand: at its offset, pointing to the next
// and to one 20-byte datagram.
type handNDP struct{ at, next, datagram int }

// ndp16Chain returns an NTB16 of size bytes whose NTH points to the NDP at
// first; the datagram of the i-th of ndps is filled with i+1.
func ndp16Chain(size, first int, ndps ...handNDP) []byte {
	block := make([]byte, size)
	le.PutUint32(block, SignatureNTH16)
	le.PutUint16(block[4:], NTH16Size)
	le.PutUint16(block[8:], uint16(size))
	le.PutUint16(block[10:], uint16(first))
	for i, n := range ndps {
		le.PutUint32(block[n.at:], SignatureNDP16)
		le.PutUint16(block[n.at+4:], 16)
		le.PutUint16(block[n.at+6:], uint16(n.next))
		le.PutUint16(block[n.at+8:], uint16(n.datagram))
		le.PutUint16(block[n.at+10:], 20)
		copy(block[n.datagram:n.datagram+20], bytes.Repeat([]byte{byte(i + 1)}, 20))
	}
	return block
}

func TestReaderFollowsTheNDPChain(t *testing.T) {
	// Three NDPs, the chain out of block order: NTH → 200 → 100 → 300.
	block := ndp16Chain(400, 200, handNDP{100, 300, 50}, handNDP{200, 100, 20}, handNDP{300, 0, 350})
	got, r := readAll(t, block, NTB16)
	if r.Err() != nil || len(got) != 3 || got[0][0] != 2 || got[1][0] != 1 || got[2][0] != 3 {
		t.Fatalf("got %x, %v", got, r.Err())
	}
}

func TestReaderAcceptsCRCAndDropsIt(t *testing.T) {
	for _, f := range []Format{NTB16, NTB32} {
		lay := layoutOf(f)
		withCRC := [][]byte{append(bytes.Clone(frameA), 1, 2, 3, 4), append(bytes.Clone(frameB), 5, 6, 7, 8)}
		block := packed(t, f, withCRC...)
		le.PutUint32(block[ndpOffset(block, f):], lay.ndpCRC)
		got, r := readAll(t, block, f)
		if r.Err() != nil || !equalFrames(got, [][]byte{frameA, frameB}) || !r.CRC() {
			t.Errorf("%v: %x, CRC %v, %v", f, got, r.CRC(), r.Err())
		}
	}
}

func TestReaderCRCDatagramTooShort(t *testing.T) {
	// 17 bytes of an NCM1 NDP: 13 of frame and the CRC.
	block := packed(t, NTB16, make([]byte, 17))
	le.PutUint32(block[ndpOffset(block, NTB16):], SignatureNDP16CRC)
	_, r := readAll(t, block, NTB16)
	var fe *FormatError
	if !errors.As(r.Err(), &fe) || fe.Field != "wDatagramLength[0]" {
		t.Errorf("Err = %v, want wDatagramLength[0] too short", r.Err())
	}
}

func ndpOffset(block []byte, f Format) int {
	lay := layoutOf(f)
	return int(lay.word(block, lay.ndpIndexAt))
}

func TestReaderNamesWhatIsWrong(t *testing.T) {
	// Each case breaks a good block of two datagrams (A at 14, B at 30, the
	// NDP at 44, 64 bytes; NTB32: 18, 34, 48, 88) in one field.
	type patch func(b []byte) []byte
	put16 := func(at int, v uint16) patch { return func(b []byte) []byte { le.PutUint16(b[at:], v); return b } }
	put32 := func(at int, v uint32) patch { return func(b []byte) []byte { le.PutUint32(b[at:], v); return b } }
	tests := []struct {
		name      string
		format    Format
		patch     patch
		structure string
		field     string
		frames    int // datagrams before the error
	}{
		{"shorter than the NTH", NTB16, func(b []byte) []byte { return b[:11] }, "NTH16", "wHeaderLength", 0},
		{"no signature", NTB16, put32(0, 0xdeadbeef), "NTH16", "dwSignature", 0},
		{"NTH32 in an NTB16 stream", NTB16, put32(0, SignatureNTH32), "NTH16", "dwSignature", 0},
		{"NTH16 in an NTB32 stream", NTB32, put32(0, SignatureNTH16), "NTH32", "dwSignature", 0},
		{"header length", NTB16, put16(4, 16), "NTH16", "wHeaderLength", 0},
		{"block longer than the transfer", NTB16, put16(8, 65), "NTH16", "wBlockLength", 0},
		{"block shorter than the NTH", NTB16, put16(8, 11), "NTH16", "wBlockLength", 0},
		{"NTB32 block longer than the transfer", NTB32, put32(8, 0xFFFFFFFF), "NTH32", "dwBlockLength", 0},
		{"no NDP", NTB16, put16(10, 0), "NTH16", "wNdpIndex", 0},
		{"NDP inside the NTH", NTB16, put16(10, 4), "NTH16", "wNdpIndex", 0},
		{"NDP past the block", NTB16, put16(10, 60), "NTH16", "wNdpIndex", 0},
		{"NDP32 index past 32 bits of block", NTB32, put32(12, 0xFFFFFFF8), "NTH32", "dwNdpIndex", 0},
		{"NDP signature", NTB16, put32(44, 0x12345678), "NDP16", "dwSignature", 0},
		{"NDP32 in an NTB16 block", NTB16, put32(44, SignatureNDP32), "NDP16", "dwSignature", 0},
		{"MBIM's IPS0 in an NTB16 block", NTB16, put32(44, 0x00535049), "NDP16", "dwSignature", 0},
		{"NDP shorter than one entry and the null one", NTB16, put16(48, 12), "NDP16", "wLength", 0},
		{"NDP past the block", NTB16, put16(48, 24), "NDP16", "wLength", 0},
		{"NDP points to itself", NTB16, put16(50, 44), "NDP16", "wNextNdpIndex", 2},
		{"next NDP inside the NTH", NTB16, put16(50, 2), "NDP16", "wNextNdpIndex", 2},
		{"NDP32 points to itself", NTB32, put32(56, 48), "NDP32", "dwNextNdpIndex", 2},
		{"datagram shorter than an Ethernet header", NTB16, put16(58, 13), "NDP16", "wDatagramLength[1]", 1},
		{"datagram inside the NTH", NTB16, put16(56, 11), "NDP16", "wDatagramIndex[1]", 1},
		{"datagram past the block", NTB16, put16(58, 35), "NDP16", "wDatagramLength[1]", 1},
		{"datagram over its NDP", NTB16, put16(58, 15), "NDP16", "wDatagramIndex[1]", 1},
		{"datagram at the NDP", NTB16, put16(56, 44), "NDP16", "wDatagramIndex[1]", 1},
		{"no null entry", NTB16, func(b []byte) []byte { le.PutUint16(b[48:], 16); return b }, "NDP16", "wLength", 2},
		{"NTB32 index and length that overflow 32 bits", NTB32,
			func(b []byte) []byte { le.PutUint32(b[72:], 0xFFFFFFF0); le.PutUint32(b[76:], 0x20); return b }, "NDP32", "dwDatagramLength[1]", 1},
		{"NTB32 length of 4 GiB", NTB32, put32(76, 0xFFFFFFFF), "NDP32", "dwDatagramLength[1]", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			block := tt.patch(packed(t, tt.format, frameA, frameB))
			got, r := readAll(t, block, tt.format)
			var fe *FormatError
			if !errors.As(r.Err(), &fe) || fe.Structure != tt.structure || fe.Field != tt.field {
				t.Fatalf("Err = %v, want a *FormatError on %s %s", r.Err(), tt.structure, tt.field)
			}
			if want := [][]byte{frameA, frameB}[:tt.frames]; !equalFrames(got, want) {
				t.Errorf("datagrams before the error = %x, want %x", got, want)
			}
		})
	}
}

func TestReaderChainLoops(t *testing.T) {
	// Two NDPs pointing at each other, each with one datagram: both are
	// read once, then the loop is the error.
	block := ndp16Chain(200, 100, handNDP{100, 140, 20}, handNDP{140, 100, 50})
	got, r := readAll(t, block, NTB16)
	var fe *FormatError
	if len(got) != 2 || !errors.As(r.Err(), &fe) || fe.Offset != 140 || fe.Field != "wNextNdpIndex" {
		t.Fatalf("%d datagrams, Err = %v; want 2 and the loop at the NDP at 140", len(got), r.Err())
	}
}

func TestReaderStopsAfterMaxNDPs(t *testing.T) {
	// A chain of MaxNDPs+1 NDPs, each with one datagram.
	const stride = 48
	ndps := make([]handNDP, MaxNDPs+1)
	for i := range ndps {
		at := NTH16Size + i*stride
		ndps[i] = handNDP{at, at + stride, at + 16}
	}
	ndps[MaxNDPs].next = 0
	got, r := readAll(t, ndp16Chain(NTH16Size+len(ndps)*stride, NTH16Size, ndps...), NTB16)
	var fe *FormatError
	if len(got) != MaxNDPs || !errors.As(r.Err(), &fe) || fe.Field != "wNextNdpIndex" {
		t.Fatalf("%d datagrams, Err = %v; want %d and the chain cut", len(got), r.Err(), MaxNDPs)
	}
}

func TestReaderOverlappingNDPs(t *testing.T) {
	// The NDP at 44 points to a second one at 36, whose 16 bytes run into
	// the first.
	block := packed(t, NTB16, frameA, frameB)
	le.PutUint16(block[50:], 36)
	le.PutUint32(block[36:], SignatureNDP16)
	le.PutUint16(block[40:], 16)
	le.PutUint16(block[42:], 0)
	got, r := readAll(t, block, NTB16)
	var fe *FormatError
	if len(got) != 2 || !errors.As(r.Err(), &fe) || fe.Offset != 36 || fe.Field != "wLength" {
		t.Fatalf("%d datagrams, Err = %v; want 2 and the NDP at 36 rejected", len(got), r.Err())
	}
}

func TestReaderUnknownFormat(t *testing.T) {
	r := NewReader(packed(t, NTB16, frameA), Format(7))
	if _, ok := r.Next(); ok || r.Err() == nil {
		t.Errorf("Next = %v, Err = %v; want nothing and an error", ok, r.Err())
	}
}

func TestReaderEmptyNDP(t *testing.T) {
	// An NDP whose first entry is the null one carries nothing, and is no
	// error.
	block := packed(t, NTB16, frameA, frameB)
	clear(block[52:56])
	got, r := readAll(t, block, NTB16)
	if len(got) != 0 || r.Err() != nil {
		t.Errorf("%d datagrams, Err %v", len(got), r.Err())
	}
}

func TestReaderAllocatesNothingPerDatagram(t *testing.T) {
	block := packed(t, NTB16, ethernetFrames(10, 1000)...)
	var r Reader
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(block, NTB16)
		for _, ok := r.Next(); ok; _, ok = r.Next() {
		}
	})
	if allocs != 0 || r.Err() != nil {
		t.Errorf("%v allocations per block of 10 datagrams, want 0 (err %v)", allocs, r.Err())
	}
}

func BenchmarkReader(b *testing.B) {
	for _, f := range []Format{NTB16, NTB32} {
		b.Run(f.String(), func(b *testing.B) {
			limits, err := fncmParameters.OutLimits(f, 0)
			if err != nil {
				b.Fatal(err)
			}
			w, _ := NewWriter(nil, limits, f)
			frame := make([]byte, 1514)
			for ok := true; ok; ok, _ = w.Add(frame) {
			}
			block := w.Finish()
			var r Reader
			r.Reset(block, f)
			b.ReportAllocs()
			b.SetBytes(int64(len(frame)))
			for b.Loop() { // one datagram per iteration
				if _, ok := r.Next(); !ok {
					r.Reset(block, f)
					r.Next()
				}
			}
		})
	}
}
