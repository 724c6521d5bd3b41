package ncm

import (
	"bytes"
	"errors"
	"testing"
)

// fncmParameters are what Linux's f_ncm answers GET_NTB_PARAMETERS with
// (its static ntb_parameters): both formats, 16 KiB each way, divisors and
// alignments of 4, remainders 0, wNtbOutMaxDatagrams left 0.
var fncmParameters = NTBParameters{
	Length: 28, FormatsSupported: NTB16Supported | NTB32Supported,
	InMaxSize: 16384, InDivisor: 4, InPayloadRemainder: 0, InAlignment: 4,
	OutMaxSize: 16384, OutDivisor: 4, OutPayloadRemainder: 0, OutAlignment: 4,
}

const fncmParametersHex = "1c00 0300 00400000 0400 0000 0400 0000 00400000 0400 0000 0400 0000"

func TestNTBParametersGolden(t *testing.T) {
	if got, want := fncmParameters.Marshal(), unhex(t, fncmParametersHex); !bytes.Equal(got, want) {
		t.Errorf("Marshal\n got %x\nwant %x", got, want)
	}
	got, err := ParseNTBParameters(unhex(t, fncmParametersHex))
	if err != nil || got != fncmParameters {
		t.Errorf("Parse = %+v, %v", got, err)
	}
	if !got.Supports(NTB16) || !got.Supports(NTB32) || got.Supports(Format(2)) {
		t.Errorf("Supports: NTB16 %v, NTB32 %v, Format(2) %v", got.Supports(NTB16), got.Supports(NTB32), got.Supports(Format(2)))
	}
}

func TestParseNTBParametersHostileInput(t *testing.T) {
	good := unhex(t, fncmParametersHex)
	with := func(at int, v ...byte) []byte { b := bytes.Clone(good); copy(b[at:], v); return b }
	tests := []struct {
		name  string
		b     []byte
		field string // "" when it parses
	}{
		{"short", good[:27], "wLength"},
		{"empty", nil, "wLength"},
		{"wLength 0: not trusted, the fields are where they are", with(0, 0, 0), ""},
		{"wLength 0xffff with 28 bytes", with(0, 0xff, 0xff), ""},
		{"more bytes than the structure", append(bytes.Clone(good), 1, 2, 3, 4), ""},
		{"dwNtbInMaxSize 0", with(4, 0, 0, 0, 0), "dwNtbInMaxSize"},
		{"dwNtbOutMaxSize 1000", with(16, 0xe8, 0x03, 0, 0), "dwNtbOutMaxSize"},
		{"dwNtbOutMaxSize one frame exactly", with(16, oneFrameNTB&0xff, oneFrameNTB>>8, 0, 0), ""},
		{"divisors and alignments 0: OutLimits' business", func() []byte { b := with(8, 0, 0, 0, 0, 0, 0); copy(b[20:], make([]byte, 6)); return b }(), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseNTBParameters(tt.b)
			var fe *FormatError
			switch {
			case tt.field == "" && err != nil:
				t.Errorf("Parse = %v", err)
			case tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field):
				t.Errorf("Parse = %v, want a *FormatError on %s", err, tt.field)
			}
		})
	}
}

func TestNTBInputSize(t *testing.T) {
	s := NTBInputSize{MaxSize: 16384, MaxDatagrams: 40}
	tests := []struct {
		caps NetworkCapabilities
		hex  string
		back NTBInputSize
	}{
		{CapEthernetFilter | CapCRCMode, "00400000", NTBInputSize{MaxSize: 16384}}, // f_ncm's: 4 bytes only
		{CapNTBInputSize8Bytes, "00400000 2800 0000", s},
	}
	for _, tt := range tests {
		b := s.Marshal(tt.caps)
		if want := unhex(t, tt.hex); !bytes.Equal(b, want) {
			t.Errorf("Marshal(%#x) = %x, want %x", tt.caps, b, want)
		}
		if got, err := ParseNTBInputSize(b); err != nil || got != tt.back {
			t.Errorf("Parse(%x) = %+v, %v", b, got, err)
		}
	}
	if _, err := ParseNTBInputSize(make([]byte, 6)); err == nil {
		t.Error("6 bytes parsed")
	}
}
