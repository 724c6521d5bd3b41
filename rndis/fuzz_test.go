package rndis

import (
	"bytes"
	"reflect"
	"testing"
)

func addSeeds(f *testing.F) {
	for _, g := range golden {
		f.Add(Marshal(g.msg))
	}
	f.Add(append(Marshal(Packet{[]byte("one")}), Marshal(Packet{[]byte("two")})...))
	f.Add(append(Marshal(Packet{[]byte("padded")}), 0))
}

// FuzzParse: every decoder, reached through Parse's dispatch, on arbitrary
// bytes. A message that decodes re-encodes to one that decodes the same.
func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			if m != nil {
				t.Fatalf("Parse returned both %#v and %v", m, err)
			}
			return
		}
		again, err := Parse(Marshal(m))
		if err != nil {
			t.Fatalf("re-encoded %#v does not parse: %v", m, err)
		}
		if !reflect.DeepEqual(again, m) {
			t.Fatalf("re-encode changed the message\n got %#v\nwant %#v", again, m)
		}
	})
}

// FuzzPacketReader: every frame yielded lies inside the transfer, and the
// walk ends.
func FuzzPacketReader(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, transfer []byte) {
		r := NewPacketReader(transfer)
		n := 0
		for frame, ok := r.Next(); ok; frame, ok = r.Next() {
			if len(frame) == 0 || r.Offset() < PacketHeaderSize || r.Offset()+len(frame) > len(transfer) {
				t.Fatalf("frame of %d bytes at %d in a %d-byte transfer", len(frame), r.Offset(), len(transfer))
			}
			if n++; n > len(transfer)/PacketHeaderSize {
				t.Fatalf("%d frames from %d bytes", n, len(transfer))
			}
		}
	})
}

// FuzzPacketWriter: whatever frames and limits, what the writer packs the
// reader unpacks unchanged, within the limits.
func FuzzPacketWriter(f *testing.F) {
	f.Add([]byte("abcdefghij"), uint16(1580), uint8(1), uint8(0), uint8(3))
	f.Add([]byte("abcdefghij"), uint16(11264), uint8(10), uint8(3), uint8(7))
	f.Fuzz(func(t *testing.T, data []byte, maxTransfer uint16, maxPackets, alignShift, split uint8) {
		limits := PacketLimits{int(maxTransfer), int(maxPackets), 1 << (alignShift % 8)}
		if limits.Validate() != nil || len(data) == 0 {
			return
		}
		var in [][]byte
		step := int(split%16) + 1
		for i := 0; i < len(data); i += step {
			in = append(in, data[i:min(i+step, len(data))])
		}
		w := NewPacketWriter(nil, limits)
		var out [][]byte
		flush := func() {
			if len(w.Bytes()) > limits.MaxTransferSize || w.Count() > limits.MaxPacketsPerTransfer {
				t.Fatalf("transfer of %d bytes / %d packets breaks %+v", len(w.Bytes()), w.Count(), limits)
			}
			r := NewPacketReader(w.Bytes())
			for fr, ok := r.Next(); ok; fr, ok = r.Next() {
				out = append(out, bytes.Clone(fr)) // the buffer is reused
			}
			if r.Err() != nil {
				t.Fatal(r.Err())
			}
			w.Reset()
		}
		for _, fr := range in {
			ok, err := w.Add(fr)
			if err != nil {
				return // frame larger than these limits allow
			}
			if !ok {
				flush()
				if ok, _ := w.Add(fr); !ok {
					t.Fatal("frame did not fit an empty transfer")
				}
			}
		}
		flush()
		if len(out) != len(in) {
			t.Fatalf("%d frames out, %d in", len(out), len(in))
		}
		for i := range in {
			if !bytes.Equal(in[i], out[i]) {
				t.Fatalf("frame %d: %x != %x", i, out[i], in[i])
			}
		}
	})
}
