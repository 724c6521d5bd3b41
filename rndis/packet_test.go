package rndis

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

func frames(n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = bytes.Repeat([]byte{byte(i + 1)}, size+i)
	}
	return out
}

func readAll(t testing.TB, transfer []byte) ([][]byte, error) {
	t.Helper()
	r := NewPacketReader(transfer)
	var got [][]byte
	for f, ok := r.Next(); ok; f, ok = r.Next() {
		if !bytes.Equal(transfer[r.Offset():r.Offset()+len(f)], f) {
			t.Fatalf("Offset %d does not locate the frame", r.Offset())
		}
		got = append(got, f)
	}
	return got, r.Err()
}

func TestPacketReaderConcatenated(t *testing.T) {
	want := frames(3, 60)
	var transfer []byte
	for _, f := range want {
		transfer = append(transfer, Marshal(Packet{f})...)
	}
	got, err := readAll(t, transfer)
	if err != nil || len(got) != 3 {
		t.Fatalf("got %d frames, err %v", len(got), err)
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("frame %d = %x, want %x", i, got[i], want[i])
		}
	}
}

func TestPacketReaderToleratesPadding(t *testing.T) {
	msg := Marshal(Packet{[]byte("frame")})
	for _, pad := range []int{1, 3, 8, 512} {
		t.Run(fmt.Sprint(pad), func(t *testing.T) {
			got, err := readAll(t, append(append([]byte{}, msg...), make([]byte, pad)...))
			if err != nil || len(got) != 1 || string(got[0]) != "frame" {
				t.Fatalf("got %q, %v", got, err)
			}
		})
	}
}

func TestPacketReaderFrameDoesNotReachIntoNext(t *testing.T) {
	transfer := append(Marshal(Packet{[]byte("one")}), Marshal(Packet{[]byte("two")})...)
	r := NewPacketReader(transfer)
	f, _ := r.Next()
	if cap(f) != len(f) {
		t.Errorf("frame has capacity %d beyond its %d bytes: an append would overwrite the next message", cap(f), len(f))
	}
}

func TestPacketReaderStopsAtFirstBadMessage(t *testing.T) {
	good := Marshal(Packet{[]byte("good")})
	tests := []struct {
		name string
		bad  []byte
	}{
		{"garbage after a message", []byte{1, 2, 3}},
		{"control message in data", Marshal(KeepAlive{RequestID: 1})},
		{"length past transfer", func() []byte { b := Marshal(Packet{[]byte("x")}); le.PutUint32(b[4:], 4000); return b }()},
		{"length overflows", func() []byte { b := Marshal(Packet{[]byte("x")}); le.PutUint32(b[12:], 0xffffffff); return b }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readAll(t, append(append([]byte{}, good...), tt.bad...))
			if len(got) != 1 || string(got[0]) != "good" {
				t.Errorf("frames before the bad message = %q, want [good]", got)
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Errorf("Err = %v, want a *FormatError", err)
			}
		})
	}
}

func TestPacketWriterLimits(t *testing.T) {
	tests := []struct {
		name      string
		limits    PacketLimits
		frames    int
		wantPer   int // frames in the first transfer
		alignment int
	}{
		{"Linux gadget: one packet per transfer", PacketLimits{1580, 1, 1}, 5, 1, 1},
		{"Qualcomm: ten packets, 8-byte alignment", PacketLimits{11264, 10, 8}, 25, 10, 8},
		{"size-bound: 3 frames of ~1 KiB in 3400 bytes", PacketLimits{3400, 100, 4}, 7, 3, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := frames(tt.frames, 1000)
			w := NewPacketWriter(make([]byte, 0, tt.limits.MaxTransferSize+1), tt.limits)
			var transfers [][]byte
			for _, f := range in {
				ok, err := w.Add(f)
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					transfers = append(transfers, bytes.Clone(w.Bytes()))
					w.Reset()
					if ok, err := w.Add(f); !ok || err != nil {
						t.Fatalf("Add to an empty transfer = %v, %v", ok, err)
					}
				}
			}
			transfers = append(transfers, bytes.Clone(w.Bytes()))
			var out [][]byte
			for i, tr := range transfers {
				if len(tr) > tt.limits.MaxTransferSize {
					t.Errorf("transfer %d is %d bytes, limit %d", i, len(tr), tt.limits.MaxTransferSize)
				}
				r := NewPacketReader(tr)
				n := 0
				for f, ok := r.Next(); ok; f, ok = r.Next() {
					if start := r.Offset() - PacketHeaderSize; start%tt.alignment != 0 {
						t.Errorf("message at %d not aligned to %d", start, tt.alignment)
					}
					out = append(out, f)
					n++
				}
				if r.Err() != nil {
					t.Fatal(r.Err())
				}
				if n > tt.limits.MaxPacketsPerTransfer {
					t.Errorf("transfer %d holds %d packets, limit %d", i, n, tt.limits.MaxPacketsPerTransfer)
				}
				if i == 0 && n != tt.wantPer {
					t.Errorf("first transfer holds %d packets, want %d", n, tt.wantPer)
				}
			}
			if len(out) != len(in) {
				t.Fatalf("read %d frames, wrote %d", len(out), len(in))
			}
			for i := range in {
				if !bytes.Equal(in[i], out[i]) {
					t.Fatalf("frame %d differs", i)
				}
			}
		})
	}
}

func TestPacketWriterRejectsOversizedFrame(t *testing.T) {
	w := NewPacketWriter(nil, PacketLimits{1580, 1, 1})
	if _, err := w.Add(make([]byte, 1580-PacketHeaderSize+1)); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("Add(oversized) = %v, want ErrFrameTooLarge", err)
	}
	if _, err := w.Add(make([]byte, 1580-PacketHeaderSize)); err != nil {
		t.Errorf("Add(largest frame) = %v", err)
	}
}

func TestPacketLimitsValidate(t *testing.T) {
	for _, l := range []PacketLimits{{0, 1, 1}, {44, 1, 1}, {1580, 0, 1}, {1580, 1, 0}, {1580, 1, 6}} {
		if l.Validate() == nil {
			t.Errorf("%+v validated", l)
		}
	}
	if err := (PacketLimits{1580, 1, 1}).Validate(); err != nil {
		t.Error(err)
	}
}

func TestPacketPathAllocatesNothingPerFrame(t *testing.T) {
	limits := PacketLimits{16384, 10, 8}
	w := NewPacketWriter(make([]byte, 0, limits.MaxTransferSize+1), limits)
	frame := make([]byte, 1514)
	allocs := testing.AllocsPerRun(100, func() {
		w.Reset()
		for {
			if ok, _ := w.Add(frame); !ok {
				break
			}
		}
		r := NewPacketReader(w.Bytes())
		for _, ok := r.Next(); ok; _, ok = r.Next() {
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per transfer of %d frames, want 0", allocs, w.Count())
	}
}

func BenchmarkPacketWriteRead(b *testing.B) {
	limits := PacketLimits{16384, 10, 8}
	w := NewPacketWriter(make([]byte, 0, limits.MaxTransferSize+1), limits)
	frame := make([]byte, 1514)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if ok, _ := w.Add(frame); !ok {
			r := NewPacketReader(w.Bytes())
			for _, ok := r.Next(); ok; _, ok = r.Next() {
			}
			w.Reset()
		}
	}
}
