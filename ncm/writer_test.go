package ncm

import (
	"bytes"
	"errors"
	"testing"
)

// pack adds frames to w, sending (cloning) each full block, and returns the
// blocks.
func pack(t testing.TB, w *Writer, frames [][]byte) [][]byte {
	t.Helper()
	var blocks [][]byte
	for _, f := range frames {
		ok, err := w.Add(f)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			blocks = append(blocks, bytes.Clone(w.Finish()))
			w.Reset()
			if ok, err := w.Add(f); !ok || err != nil {
				t.Fatalf("Add to an empty block = %v, %v", ok, err)
			}
		}
	}
	if b := w.Finish(); b != nil {
		blocks = append(blocks, bytes.Clone(b))
	}
	return blocks
}

func TestWriterHonoursLimits(t *testing.T) {
	tests := []struct {
		name    string
		limits  Limits
		format  Format
		frames  [][]byte
		wantPer int // datagrams in the first block
	}{
		{"f_ncm: 16 KiB, ten full frames a block", fncmLimits, NTB16, ethernetFrames(25, 1500), 10},
		{"NTB32 alike", fncmLimits, NTB32, ethernetFrames(25, 1500), 10},
		{"datagram-bound: 5 a block", Limits{MaxSize: 16384, Divisor: 4, Remainder: 2, NDPAlignment: 4, MaxDatagrams: 5}, NTB16, ethernetFrames(12, 60), 5},
		{"divisor 64, remainder 50, NDP alignment 32", Limits{MaxSize: 8192, Divisor: 64, Remainder: 50, NDPAlignment: 32, MaxDatagrams: 40}, NTB32, ethernetFrames(30, 100), 30},
		{"one full frame a block", Limits{MaxSize: oneFrameNTB, Divisor: 1, Remainder: 0, NDPAlignment: 1, MaxDatagrams: 40}, NTB16, ethernetFrames(3, 1514)[:1], 1},
		{"2048 bytes: a full frame and seven small ones", Limits{MaxSize: 2048, Divisor: 4, Remainder: 2, NDPAlignment: 4, MaxDatagrams: 40}, NTB16,
			append(ethernetFrames(1, 1514), ethernetFrames(8, 60)...), 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := NewWriter(make([]byte, 0, tt.limits.MaxSize+1), tt.limits, tt.format)
			if err != nil {
				t.Fatal(err)
			}
			blocks := pack(t, w, tt.frames)
			var out [][]byte
			for i, b := range blocks {
				if len(b) > tt.limits.MaxSize {
					t.Errorf("block %d is %d bytes, limit %d", i, len(b), tt.limits.MaxSize)
				}
				if at := ndpOffset(b, tt.format); at%tt.limits.NDPAlignment != 0 {
					t.Errorf("block %d: NDP at %d, not a multiple of %d", i, at, tt.limits.NDPAlignment)
				}
				got, r := readAll(t, b, tt.format)
				if r.Err() != nil {
					t.Fatalf("block %d: %v", i, r.Err())
				}
				if r.Sequence() != uint16(i) {
					t.Errorf("block %d has wSequence %d", i, r.Sequence())
				}
				if len(got) > tt.limits.MaxDatagrams {
					t.Errorf("block %d holds %d datagrams, limit %d", i, len(got), tt.limits.MaxDatagrams)
				}
				if i == 0 && len(got) != tt.wantPer {
					t.Errorf("first block holds %d datagrams, want %d", len(got), tt.wantPer)
				}
				r = &Reader{}
				r.Reset(b, tt.format)
				for _, ok := r.Next(); ok; _, ok = r.Next() {
					if r.Offset()%tt.limits.Divisor != tt.limits.Remainder {
						t.Errorf("block %d: datagram at %d, not %d modulo %d", i, r.Offset(), tt.limits.Remainder, tt.limits.Divisor)
					}
				}
				out = append(out, got...)
			}
			if !equalFrames(out, tt.frames) {
				t.Errorf("read %d frames back, wrote %d, or they differ", len(out), len(tt.frames))
			}
		})
	}
}

func TestWriterLargestFrame(t *testing.T) {
	for _, f := range []Format{NTB16, NTB32} {
		for _, l := range []Limits{fncmLimits, {MaxSize: 2000, Divisor: 8, Remainder: 3, NDPAlignment: 16, MaxDatagrams: 1}} {
			w, err := NewWriter(nil, l, f)
			if err != nil {
				t.Fatal(err)
			}
			largest := l.MaxFrame(f)
			if _, _, err := w.Reserve(largest + 1); !errors.Is(err, ErrFrameTooLarge) {
				t.Errorf("%v %+v: Reserve(%d) = %v, want ErrFrameTooLarge", f, l, largest+1, err)
			}
			if ok, err := w.Add(make([]byte, largest)); !ok || err != nil {
				t.Errorf("%v %+v: Add(largest, %d bytes) = %v, %v", f, l, largest, ok, err)
			}
			if b := w.Finish(); len(b) > l.MaxSize || len(b) < l.MaxSize-l.NDPAlignment-l.Divisor {
				t.Errorf("%v %+v: the largest frame makes a block of %d bytes", f, l, len(b))
			}
		}
	}
}

func TestWriterFinish(t *testing.T) {
	w, err := NewWriter(nil, fncmLimits, NTB16)
	if err != nil {
		t.Fatal(err)
	}
	if b := w.Finish(); b != nil {
		t.Errorf("Finish of an empty block = %x, want nil", b)
	}
	w.Add(frameA)
	first := bytes.Clone(w.Finish())
	if again := w.Finish(); !bytes.Equal(again, first) {
		t.Errorf("a second Finish changed the block:\n%x\n%x", again, first)
	}
	if _, ok, err := w.Reserve(20); ok || !errors.Is(err, ErrFinished) {
		t.Errorf("Reserve after Finish = %v, %v; want ErrFinished", ok, err)
	}
	w.Reset()
	w.Add(frameA)
	if got := NewReader(w.Finish(), NTB16); got.Sequence() != 1 {
		t.Errorf("the second block has wSequence %d, want 1", got.Sequence())
	}
}

func TestWriterRejects(t *testing.T) {
	if _, err := NewWriter(nil, Limits{MaxSize: 100, Divisor: 3, NDPAlignment: 4, MaxDatagrams: 1}, NTB16); err == nil {
		t.Error("NewWriter took a divisor of 3")
	}
	w, _ := NewWriter(nil, fncmLimits, NTB16)
	if _, _, err := w.Reserve(0); err == nil {
		t.Error("Reserve(0) succeeded")
	}
}

func TestWriterShortPacketByteIsFree(t *testing.T) {
	w, _ := NewWriter(make([]byte, 0, fncmLimits.MaxSize+1), fncmLimits, NTB16)
	frame := make([]byte, 1514)
	for ok := true; ok; ok, _ = w.Add(frame) {
	}
	block := w.Finish()
	padded := append(block, 0)
	if &padded[0] != &block[0] {
		t.Error("appending the short-packet byte moved the block")
	}
	if got, r := readAll(t, padded, NTB16); r.Err() != nil || len(got) != w.Count() {
		t.Errorf("read %d datagrams of %d from the padded block: %v", len(got), w.Count(), r.Err())
	}
}

func TestWriterAllocatesNothingPerFrame(t *testing.T) {
	for _, f := range []Format{NTB16, NTB32} {
		w, _ := NewWriter(make([]byte, 0, fncmLimits.MaxSize+1), fncmLimits, f)
		frame := make([]byte, 1514)
		allocs := testing.AllocsPerRun(100, func() {
			w.Reset()
			for ok := true; ok; ok, _ = w.Add(frame) {
			}
			w.Finish()
		})
		if allocs != 0 {
			t.Errorf("%v: %v allocations per block of %d frames, want 0", f, allocs, w.Count())
		}
	}
}

func BenchmarkWriter(b *testing.B) {
	for _, f := range []Format{NTB16, NTB32} {
		b.Run(f.String(), func(b *testing.B) {
			w, _ := NewWriter(make([]byte, 0, fncmLimits.MaxSize+1), fncmLimits, f)
			frame := make([]byte, 1514)
			b.ReportAllocs()
			b.SetBytes(int64(len(frame)))
			for b.Loop() { // one datagram per iteration
				if ok, _ := w.Add(frame); !ok {
					w.Finish()
					w.Reset()
					w.Add(frame)
				}
			}
		})
	}
}
