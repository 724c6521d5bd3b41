package ncm

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The two frames of the golden blocks: too short to be real, long enough
// to be Ethernet headers, and odd so that padding shows.
var (
	frameA = bytes.Repeat([]byte{0x11}, 15)
	frameB = bytes.Repeat([]byte{0x22}, 14)
)

// fncmLimits are OutLimits of Linux's f_ncm parameters: 16 KiB blocks,
// divisor 4 and payload remainder 0 (so datagrams start at 2 modulo 4),
// NDP alignment 4, no datagram limit (so Linux's cap of 40).
var fncmLimits = Limits{MaxSize: 16384, Divisor: 4, Remainder: 2, NDPAlignment: 4, MaxDatagrams: 40}

// goldenBlocks are NTBs written out by hand from CDC NCM 1.0 §3 and from
// the layouts Linux's code produces, byte for byte.
var goldenBlocks = []struct {
	name   string
	format Format
	hex    string
	frames [][]byte
	seq    uint16
	crc    bool
}{
	{"NTB16 as a Writer packs it: datagrams at 2 mod 4, the NDP after them", NTB16, `
		4e434d48 0c00 0000 4000 2c00                  NTH16: NCMH, 12, seq 0, 64 bytes, NDP at 44
		0000                                          to 14
		111111111111111111111111111111                A at 14
		00                                            to 30
		2222222222222222222222222222                  B at 30
		4e434d30 1400 0000 0e00 0f00 1e00 0e00 0000 0000  NDP16: NCM0, 20 bytes, last, A, B, null`,
		[][]byte{frameA, frameB}, 0, false},
	{"NTB32 as a Writer packs it", NTB32, `
		6e636d68 1000 0000 58000000 30000000          NTH32: ncmh, 16, seq 0, 88 bytes, NDP at 48
		0000                                          to 18
		111111111111111111111111111111                A at 18
		00                                            to 34
		2222222222222222222222222222                  B at 34
		6e636d30 2800 0000 00000000 00000000          NDP32: ncm0, 40 bytes, reserved, last, reserved
		12000000 0f000000 22000000 0e000000 00000000 00000000`,
		[][]byte{frameA, frameB}, 0, false},
	{"NTB16 as Linux's f_ncm sends it: datagrams at 0 mod 4, wSequence left 0", NTB16, `
		4e434d48 0c00 0000 4000 2c00
		111111111111111111111111111111                A at 12 = ALIGN(12, 4) + 0
		00
		2222222222222222222222222222                  B at 28
		0000                                          ndp_pad
		4e434d30 1400 0000 0c00 0f00 1c00 0e00 0000 0000`,
		[][]byte{frameA, frameB}, 0, false},
	{"NTB32 as Linux's f_ncm sends it", NTB32, `
		6e636d68 1000 0000 58000000 30000000
		111111111111111111111111111111                A at 16
		00
		2222222222222222222222222222                  B at 32
		0000
		6e636d30 2800 0000 00000000 00000000
		10000000 0f000000 20000000 0e000000 00000000 00000000`,
		[][]byte{frameA, frameB}, 0, false},
	{"NTB16 of f_ncm in CRC mode: NCM1, each datagram ends with 4 CRC bytes", NTB16, `
		4e434d48 0c00 0000 4800 3400
		111111111111111111111111111111 aaaaaaaa       A and a CRC (not checked) at 12
		00
		2222222222222222222222222222 bbbbbbbb         B at 32
		0000
		4e434d31 1400 0000 0c00 1300 2000 1200 0000 0000`,
		[][]byte{frameA, frameB}, 0, true},
}

// cdcNCMBlock lays out an NTB as Linux's cdc_ncm host sends it, from the
// offsets its code arrives at: the NDP right after the NTH with room for 40
// entries and the null one, the datagrams after it at 2 mod 4, each after
// ALIGN(len, 4) - len + 2 bytes of padding, wSequence counting.
func cdcNCMBlock(t *testing.T, f Format) []byte {
	t.Helper()
	lay := layoutOf(f)
	ndpAt := lay.nthSize
	a := ndpAt + lay.ndpSize(MaxDatagramsPerNTB) + 2 // 186 for NTB16, 362 for NTB32
	b := alignUp(a+len(frameA), 4) + 2
	block := make([]byte, b+len(frameB))
	le.PutUint32(block, lay.nthSig)
	le.PutUint16(block[4:], uint16(lay.nthSize))
	le.PutUint16(block[6:], 7)
	lay.putWord(block, lay.blockLenAt, len(block))
	lay.putWord(block, lay.ndpIndexAt, ndpAt)
	le.PutUint32(block[ndpAt:], lay.ndpSig)
	le.PutUint16(block[ndpAt+4:], uint16(lay.ndpSize(2)))
	lay.putWord(block, ndpAt+lay.ndpHeader, a)
	lay.putWord(block, ndpAt+lay.ndpHeader+lay.entrySize/2, len(frameA))
	lay.putWord(block, ndpAt+lay.ndpHeader+lay.entrySize, b)
	lay.putWord(block, ndpAt+lay.ndpHeader+lay.entrySize*3/2, len(frameB))
	copy(block[a:], frameA)
	copy(block[b:], frameB)
	if a != map[Format]int{NTB16: 186, NTB32: 362}[f] || b != a+20 {
		t.Fatalf("cdc_ncm layout: datagrams at %d and %d", a, b)
	}
	return block
}

func TestGoldenDecode(t *testing.T) {
	for _, g := range goldenBlocks {
		t.Run(g.name, func(t *testing.T) {
			block := unhexBlock(t, g.hex)
			got, r := readAll(t, block, g.format)
			if r.Err() != nil {
				t.Fatal(r.Err())
			}
			if !equalFrames(got, g.frames) {
				t.Errorf("frames\n got %x\nwant %x", got, g.frames)
			}
			if r.Sequence() != g.seq || r.CRC() != g.crc {
				t.Errorf("Sequence %d, CRC %v; want %d, %v", r.Sequence(), r.CRC(), g.seq, g.crc)
			}
		})
	}
	for _, f := range []Format{NTB16, NTB32} {
		t.Run(f.String()+" as Linux's cdc_ncm sends it: the NDP first, room for 40 entries", func(t *testing.T) {
			got, r := readAll(t, cdcNCMBlock(t, f), f)
			if r.Err() != nil || !equalFrames(got, [][]byte{frameA, frameB}) || r.Sequence() != 7 {
				t.Errorf("frames %x, sequence %d, err %v", got, r.Sequence(), r.Err())
			}
		})
	}
}

func TestGoldenEncode(t *testing.T) {
	for _, g := range goldenBlocks[:2] {
		t.Run(g.name, func(t *testing.T) {
			w, err := NewWriter(nil, fncmLimits, g.format)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range g.frames {
				if ok, err := w.Add(f); !ok || err != nil {
					t.Fatalf("Add = %v, %v", ok, err)
				}
			}
			if got, want := w.Finish(), unhexBlock(t, g.hex); !bytes.Equal(got, want) {
				t.Errorf("block\n got %x\nwant %x", got, want)
			}
		})
	}
}

// unhexBlock decodes a golden block: hex words, each line's comment after
// two or more spaces.
func unhexBlock(t testing.TB, s string) []byte {
	t.Helper()
	var words []string
	for _, line := range strings.Split(s, "\n") {
		if i := strings.Index(line, "   "); i >= 0 {
			line = line[:i]
		}
		for _, w := range strings.Fields(line) {
			if _, err := hex.DecodeString(w); err != nil {
				break // the comment
			}
			words = append(words, w)
		}
	}
	return unhex(t, strings.Join(words, " "))
}

func equalFrames(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
