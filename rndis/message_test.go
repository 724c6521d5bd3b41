package rndis

import (
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// golden pins the wire form of every message type, byte for byte.
var golden = []struct {
	name string
	msg  Message
	hex  string
}{
	{"HALT is 12 bytes: type 3, length 12, RequestId", Halt{RequestID: 7},
		"03000000 0c000000 07000000"},
	{"INITIALIZE offers version 1.0 and 16 KiB", Initialize{RequestID: 1, MajorVersion: 1, MaxTransferSize: 0x4000},
		"02000000 18000000 01000000 01000000 00000000 00400000"},
	{"INITIALIZE_CMPLT of the Linux gadget",
		InitializeComplete{RequestID: 1, MajorVersion: 1, DeviceFlags: DeviceFlagConnectionless, Medium: Medium8023,
			MaxPacketsPerTransfer: 1, MaxTransferSize: 1580},
		"02000080 34000000 01000000 00000000 01000000 00000000 01000000 00000000 01000000 2c060000 00000000 00000000 00000000"},
	{"QUERY without input buffer has offset 0", Query{RequestID: 3, OID: OIDGenSupportedList},
		"04000000 1c000000 03000000 01010100 00000000 00000000 00000000"},
	{"QUERY with input buffer at offset 20", Query{RequestID: 2, OID: OID8023PermanentAddress, Buffer: make([]byte, 6)},
		"04000000 22000000 02000000 01010101 06000000 14000000 00000000 000000000000"},
	{"QUERY_CMPLT buffer at offset 16", QueryComplete{RequestID: 2, Buffer: []byte{2, 0, 0, 0, 0, 1}},
		"04000080 1e000000 02000000 00000000 06000000 10000000 020000000001"},
	{"SET packet filter", Set{RequestID: 4, OID: OIDGenCurrentPacketFilter, Buffer: []byte{0x2d, 0, 0, 0}},
		"05000000 20000000 04000000 0e010100 04000000 14000000 00000000 2d000000"},
	{"SET_CMPLT", SetComplete{RequestID: 4, Status: StatusNotSupported},
		"05000080 10000000 04000000 bb0000c0"},
	{"RESET has no RequestId", Reset{},
		"06000000 0c000000 00000000"},
	{"RESET_CMPLT has no RequestId", ResetComplete{AddressingReset: 1},
		"06000080 10000000 00000000 01000000"},
	{"INDICATE_STATUS media disconnect", IndicateStatus{Status: StatusMediaDisconnect},
		"07000000 14000000 0c000140 00000000 00000000"},
	{"INDICATE_STATUS with buffer at offset 12", IndicateStatus{Status: StatusLinkSpeedChange, Buffer: []byte{0xa0, 0x86, 1, 0}},
		"07000000 18000000 13000140 04000000 0c000000 a0860100"},
	{"KEEPALIVE", KeepAlive{RequestID: 9},
		"08000000 0c000000 09000000"},
	{"KEEPALIVE_CMPLT", KeepAliveComplete{RequestID: 9},
		"08000080 10000000 09000000 00000000"},
	{"PACKET data at offset 36", Packet{Data: []byte("abcd")},
		"01000000 30000000 24000000 04000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 61626364"},
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGoldenEncode(t *testing.T) {
	for _, g := range golden {
		t.Run(g.name, func(t *testing.T) {
			if got, want := Marshal(g.msg), unhex(t, g.hex); string(got) != string(want) {
				t.Errorf("Marshal(%#v)\n got %x\nwant %x", g.msg, got, want)
			}
		})
	}
}

func TestGoldenDecode(t *testing.T) {
	for _, g := range golden {
		t.Run(g.name, func(t *testing.T) {
			got, err := Parse(unhex(t, g.hex))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, g.msg) {
				t.Errorf("Parse\n got %#v\nwant %#v", got, g.msg)
			}
		})
	}
}

func TestHaltIsTwelveBytes(t *testing.T) {
	b := Marshal(Halt{RequestID: 0xdeadbeef})
	if len(b) != HaltSize || HaltSize != 12 {
		t.Fatalf("HALT is %d bytes, want 12", len(b))
	}
	if got := le.Uint32(b); MessageType(got) != TypeHalt || got != 3 {
		t.Errorf("MessageType = %#x, want 0x00000003", got)
	}
	if le.Uint32(b[4:]) != 12 || le.Uint32(b[8:]) != 0xdeadbeef {
		t.Errorf("HALT = %x", b)
	}
}

// randomMessage returns a message of every type in turn with random fields.
func randomMessage(r *rand.Rand, i int) Message {
	buf := func() []byte {
		if r.IntN(4) == 0 {
			return nil
		}
		b := make([]byte, 1+r.IntN(64))
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		return b
	}
	u := r.Uint32
	switch i % 13 {
	case 0:
		return Initialize{u(), u(), u(), u()}
	case 1:
		return InitializeComplete{u(), Status(u()), u(), u(), u(), u(), u(), u(), u(), u(), u()}
	case 2:
		return Halt{u()}
	case 3:
		return Query{u(), OID(u()), u(), buf()}
	case 4:
		return QueryComplete{u(), Status(u()), buf()}
	case 5:
		return Set{u(), OID(u()), u(), buf()}
	case 6:
		return SetComplete{u(), Status(u())}
	case 7:
		return Reset{u()}
	case 8:
		return ResetComplete{Status(u()), u()}
	case 9:
		return IndicateStatus{Status(u()), buf()}
	case 10:
		return KeepAlive{u()}
	case 11:
		return KeepAliveComplete{u(), Status(u())}
	default:
		b := buf()
		if b == nil {
			b = []byte{1}
		}
		return Packet{b}
	}
}

func TestRoundTripEveryType(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	seen := map[MessageType]int{}
	for i := range 13 * 500 {
		m := randomMessage(r, i)
		got, err := Parse(Marshal(m))
		if err != nil {
			t.Fatalf("Parse(Marshal(%#v)): %v", m, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip\n got %#v\nwant %#v", got, m)
		}
		seen[m.Type()]++
	}
	if len(seen) != 13 {
		t.Errorf("round trip covered %d message types, want 13", len(seen))
	}
}

func TestParseIgnoresBytesAfterMessageLength(t *testing.T) {
	b := append(Marshal(KeepAlive{RequestID: 5}), 0, 0, 0, 0xff)
	m, err := Parse(b)
	if err != nil || m != (KeepAlive{RequestID: 5}) {
		t.Fatalf("Parse = %#v, %v", m, err)
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name, hex, field string
	}{
		{"empty", "", "MessageLength"},
		{"short header", "030000000c00", "MessageLength"},
		{"length below header", "03000000 04000000 00000000", "MessageLength"},
		{"length beyond buffer", "03000000 10000000 00000000", "MessageLength"},
		{"length 4 GiB", "03000000 ffffffff 00000000", "MessageLength"},
		{"HALT of 8 bytes", "03000000 08000000", "MessageLength"},
		{"INIT_CMPLT truncated", "02000080 18000000 01000000 00000000 01000000 00000000", "MessageLength"},
		{"QUERY_CMPLT buffer past end", "04000080 1c000000 02000000 00000000 06000000 10000000 00000000", "InformationBufferLength"},
		{"QUERY_CMPLT offset overflows 32 bits", "04000080 1c000000 02000000 00000000 04000000 fcffffff 00000000", "InformationBufferLength"},
		{"QUERY_CMPLT length overflows 32 bits", "04000080 1c000000 02000000 00000000 ffffffff 10000000 00000000", "InformationBufferLength"},
		{"QUERY_CMPLT offset into header", "04000080 1c000000 02000000 00000000 04000000 04000000 00000000", "InformationBufferOffset"},
		{"INDICATE buffer past end", "07000000 14000000 0c000140 01000000 0c000000", "StatusBufferLength"},
		{"PACKET without frame", "01000000 2c000000 24000000 00000000" + strings.Repeat("00000000", 7), "DataLength"},
		{"PACKET data past end", "01000000 2c000000 24000000 01000000" + strings.Repeat("00000000", 7), "DataLength"},
		{"PACKET offset into header", "01000000 30000000 00000000 04000000" + strings.Repeat("00000000", 7) + "61626364", "DataOffset"},
		{"unknown type", "09000000 0c000000 00000000", "MessageType"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse(unhex(t, tt.hex))
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("Parse = %#v, %v; want a *FormatError", m, err)
			}
			if fe.Field != tt.field {
				t.Errorf("error %q names field %q, want %q", err, fe.Field, tt.field)
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	for _, g := range golden {
		_, has := RequestID(g.msg)
		switch g.msg.Type() {
		case TypeReset, TypeResetComplete, TypeIndicateStatus, TypePacket:
			if has {
				t.Errorf("%v has a RequestId", g.msg.Type())
			}
		default:
			if !has {
				t.Errorf("%v has no RequestId", g.msg.Type())
			}
		}
	}
}
