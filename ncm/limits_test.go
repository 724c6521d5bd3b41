package ncm

import "testing"

func TestOutLimits(t *testing.T) {
	with := func(change func(*NTBParameters)) NTBParameters { p := fncmParameters; change(&p); return p }
	tests := []struct {
		name    string
		p       NTBParameters
		format  Format
		maxSize int
		want    Limits
	}{
		{"f_ncm: 16 KiB, datagrams at 2 mod 4, at most 40", fncmParameters, NTB16, 0, fncmLimits},
		{"f_ncm, NTB32", fncmParameters, NTB32, 0, fncmLimits},
		{"alignment and divisor 0 become 4", with(func(p *NTBParameters) { p.OutDivisor, p.OutAlignment = 0, 0 }), NTB16, 0, fncmLimits},
		{"not powers of two become 4", with(func(p *NTBParameters) { p.OutDivisor, p.OutAlignment = 6, 12 }), NTB16, 0, fncmLimits},
		{"under 4 becomes 4", with(func(p *NTBParameters) { p.OutDivisor, p.OutAlignment = 2, 1 }), NTB16, 0, fncmLimits},
		{"not less than the block becomes 4", with(func(p *NTBParameters) { p.OutDivisor, p.OutAlignment = 16384, 32768 }), NTB16, 0, fncmLimits},
		{"remainder not less than the divisor becomes 0", with(func(p *NTBParameters) { p.OutPayloadRemainder = 4 }), NTB16, 0, fncmLimits},
		{"payload remainder 2 of 4: the datagram at 0", with(func(p *NTBParameters) { p.OutPayloadRemainder = 2 }), NTB16, 0,
			Limits{MaxSize: 16384, Divisor: 4, Remainder: 0, NDPAlignment: 4, MaxDatagrams: 40}},
		{"divisor 32, payload remainder 0: the datagram at 18", with(func(p *NTBParameters) { p.OutDivisor, p.OutAlignment = 32, 8 }), NTB16, 0,
			Limits{MaxSize: 16384, Divisor: 32, Remainder: 18, NDPAlignment: 8, MaxDatagrams: 40}},
		{"wNtbOutMaxDatagrams 10 stands", with(func(p *NTBParameters) { p.OutMaxDatagrams = 10 }), NTB16, 0,
			Limits{MaxSize: 16384, Divisor: 4, Remainder: 2, NDPAlignment: 4, MaxDatagrams: 10}},
		{"wNtbOutMaxDatagrams 1000 is capped", with(func(p *NTBParameters) { p.OutMaxDatagrams = 1000 }), NTB16, 0, fncmLimits},
		{"a device offering 1 MiB gets 16 KiB by default", with(func(p *NTBParameters) { p.OutMaxSize = 1 << 20 }), NTB16, 0, fncmLimits},
		{"asked for 60000 of 1 MiB", with(func(p *NTBParameters) { p.OutMaxSize = 1 << 20 }), NTB16, 60000,
			Limits{MaxSize: 60000, Divisor: 4, Remainder: 2, NDPAlignment: 4, MaxDatagrams: 40}},
		{"NTB16 stops at 65535", with(func(p *NTBParameters) { p.OutMaxSize = 1 << 20 }), NTB16, 1 << 20,
			Limits{MaxSize: 65535, Divisor: 4, Remainder: 2, NDPAlignment: 4, MaxDatagrams: 40}},
		{"NTB32 at Linux's 65536", with(func(p *NTBParameters) { p.OutMaxSize = 1 << 20 }), NTB32, 1 << 20,
			Limits{MaxSize: 65536, Divisor: 4, Remainder: 2, NDPAlignment: 4, MaxDatagrams: 40}},
		{"asked for more than the device takes", fncmParameters, NTB16, 50000, fncmLimits},
		{"asked for 100: raised to a full frame with a full NDP", fncmParameters, NTB16, 100,
			Limits{MaxSize: 1514 + 172 + 12, Divisor: 4, Remainder: 2, NDPAlignment: 4, MaxDatagrams: 40}},
		{"a device of 1600 bytes", with(func(p *NTBParameters) { p.OutMaxSize = 1600 }), NTB16, 0,
			Limits{MaxSize: 1600, Divisor: 4, Remainder: 2, NDPAlignment: 4, MaxDatagrams: 40}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.p.OutLimits(tt.format, tt.maxSize)
			if err != nil || got != tt.want {
				t.Errorf("OutLimits = %+v, %v; want %+v", got, err, tt.want)
			}
			if got.MaxFrame(tt.format) < maxEthernetFrame {
				t.Errorf("MaxFrame %d", got.MaxFrame(tt.format))
			}
		})
	}
}

func TestOutLimitsTooSmallForAFrame(t *testing.T) {
	// One frame's NTB16 fits; the NTB32 headers and the datagram's
	// alignment do not.
	p := fncmParameters
	p.OutMaxSize = oneFrameNTB
	if _, err := p.OutLimits(NTB16, 0); err == nil {
		t.Error("NTB16 blocks of one frame with datagrams at 2 mod 4 accepted") // 14 + 1514 + 16 > 1542
	}
	p.OutMaxSize = oneFrameNTB + 2
	if l, err := p.OutLimits(NTB16, 0); err != nil || l.MaxFrame(NTB16) != maxEthernetFrame {
		t.Errorf("NTB16 of %d bytes: %+v, %v", p.OutMaxSize, l, err)
	}
	if _, err := p.OutLimits(NTB32, 0); err == nil {
		t.Error("NTB32 blocks too small for a frame accepted")
	}
	if _, err := p.OutLimits(Format(5), 0); err == nil {
		t.Error("unknown format accepted")
	}
}

func TestInputSize(t *testing.T) {
	big := fncmParameters
	big.InMaxSize = 1 << 20
	small := fncmParameters
	small.InMaxSize = 1600
	tests := []struct {
		p      NTBParameters
		format Format
		want   int
		got    int
	}{
		{fncmParameters, NTB16, 0, 16384},
		{fncmParameters, NTB16, 8192, 8192},
		{fncmParameters, NTB16, 100, MinNTBInputSize},
		{fncmParameters, NTB16, 1 << 20, 16384},
		{big, NTB16, 0, 16384},
		{big, NTB16, 1 << 20, 65535},
		{big, NTB32, 1 << 20, 65536},
		{small, NTB16, 0, 1600}, // Linux would ask for 2048, more than offered
	}
	for _, tt := range tests {
		if got := tt.p.InputSize(tt.format, tt.want); got != tt.got {
			t.Errorf("InputSize(%v, %d) of dwNtbInMaxSize %d = %d, want %d", tt.format, tt.want, tt.p.InMaxSize, got, tt.got)
		}
	}
}

func TestInLimits(t *testing.T) {
	got, err := fncmParameters.InLimits(NTB16, 8192, 0)
	want := Limits{MaxSize: 8192, Divisor: 4, Remainder: 2, NDPAlignment: 4, MaxDatagrams: 40}
	if err != nil || got != want {
		t.Errorf("InLimits = %+v, %v; want %+v", got, err, want)
	}
	if got, _ := fncmParameters.InLimits(NTB32, 1<<20, 32); got.MaxSize != 16384 || got.MaxDatagrams != 32 {
		t.Errorf("InLimits beyond dwNtbInMaxSize = %+v", got)
	}
	if _, err := fncmParameters.InLimits(NTB16, 0, 0); err == nil {
		t.Error("an input size of 0 gave limits")
	}
}

func TestLimitsValidate(t *testing.T) {
	bad := []Limits{
		{},
		{MaxSize: 65536, Divisor: 4, Remainder: 2, NDPAlignment: 4, MaxDatagrams: 40},      // NTB16 cannot say it
		{MaxSize: 16384, Divisor: 0, Remainder: 0, NDPAlignment: 4, MaxDatagrams: 40},      // divisor
		{MaxSize: 16384, Divisor: 12, Remainder: 0, NDPAlignment: 4, MaxDatagrams: 40},     // divisor
		{MaxSize: 16384, Divisor: 4, Remainder: 4, NDPAlignment: 4, MaxDatagrams: 40},      // remainder
		{MaxSize: 16384, Divisor: 4, Remainder: -1, NDPAlignment: 4, MaxDatagrams: 40},     // remainder
		{MaxSize: 16384, Divisor: 4, Remainder: 2, NDPAlignment: 3, MaxDatagrams: 40},      // alignment
		{MaxSize: 16384, Divisor: 4, Remainder: 2, NDPAlignment: 4, MaxDatagrams: 0},       // datagrams
		{MaxSize: 65535, Divisor: 4, Remainder: 2, NDPAlignment: 4, MaxDatagrams: 1 << 14}, // wLength
		{MaxSize: 28, Divisor: 4, Remainder: 2, NDPAlignment: 4, MaxDatagrams: 1},          // no room
		{MaxSize: 100, Divisor: 128, Remainder: 2, NDPAlignment: 4, MaxDatagrams: 1},       // divisor beyond the block
	}
	for _, l := range bad {
		if l.Validate(NTB16) == nil {
			t.Errorf("%+v validated", l)
		}
	}
	if err := fncmLimits.Validate(Format(9)); err == nil {
		t.Error("unknown format validated")
	}
	if err := (Limits{MaxSize: 65536, Divisor: 4, Remainder: 2, NDPAlignment: 4, MaxDatagrams: 40}).Validate(NTB32); err != nil {
		t.Error(err)
	}
	if err := (Limits{MaxSize: 29, Divisor: 1, Remainder: 0, NDPAlignment: 1, MaxDatagrams: 1}).Validate(NTB16); err != nil {
		t.Errorf("the smallest block of one byte: %v", err)
	}
}
