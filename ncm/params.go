package ncm

import "fmt"

// NTBParameters is the answer to GET_NTB_PARAMETERS (CDC NCM §6.2.1): the
// NTB sizes and alignment rules of the function, for the IN pipe (blocks the
// device sends) and the OUT pipe (blocks the host sends). The values are the
// device's, unsanitized; OutLimits, InputSize and InLimits derive what to use
// from them.
type NTBParameters struct {
	Length              uint16 // wLength; recorded, never trusted (see ParseNTBParameters)
	FormatsSupported    uint16 // bmNtbFormatsSupported: NTB16Supported, NTB32Supported
	InMaxSize           uint32 // dwNtbInMaxSize
	InDivisor           uint16 // wNdpInDivisor
	InPayloadRemainder  uint16 // wNdpInPayloadRemainder
	InAlignment         uint16 // wNdpInAlignment
	OutMaxSize          uint32 // dwNtbOutMaxSize
	OutDivisor          uint16 // wNdpOutDivisor
	OutPayloadRemainder uint16 // wNdpOutPayloadRemainder
	OutAlignment        uint16 // wNdpOutAlignment
	OutMaxDatagrams     uint16 // wNtbOutMaxDatagrams; 0: no limit
}

// oneFrameNTB is the smallest NTB that carries a full Ethernet frame: an
// NTH16, the frame and an NDP16 pointing to it.
const oneFrameNTB = NTH16Size + maxEthernetFrame + NDP16HeaderSize + 2*NDP16EntrySize

// ParseNTBParameters decodes the data of GET_NTB_PARAMETERS.
//
// The fields lie at fixed offsets, so the bytes received bound what is read:
// fewer than 28 are an error, more are ignored. wLength bounds nothing; it is
// kept in Length but not trusted, as Linux's cdc_ncm does not trust it
// either. Divisors and alignments are not checked here: OutLimits replaces
// bad ones as Linux does. Maximum sizes that cannot carry one 1514-byte frame
// are an error: no NTB of this device could hold a full frame.
func ParseNTBParameters(b []byte) (NTBParameters, error) {
	const structure = "NTB parameters"
	if len(b) < NTBParametersSize {
		return NTBParameters{}, formatErr(structure, 0, "wLength", "%d bytes received, shorter than the %d-byte structure", len(b), NTBParametersSize)
	}
	p := NTBParameters{
		Length:              le.Uint16(b[0:]),
		FormatsSupported:    le.Uint16(b[2:]),
		InMaxSize:           le.Uint32(b[4:]),
		InDivisor:           le.Uint16(b[8:]),
		InPayloadRemainder:  le.Uint16(b[10:]),
		InAlignment:         le.Uint16(b[12:]),
		OutMaxSize:          le.Uint32(b[16:]),
		OutDivisor:          le.Uint16(b[20:]),
		OutPayloadRemainder: le.Uint16(b[22:]),
		OutAlignment:        le.Uint16(b[24:]),
		OutMaxDatagrams:     le.Uint16(b[26:]),
	}
	if p.InMaxSize < oneFrameNTB {
		return NTBParameters{}, formatErr(structure, 0, "dwNtbInMaxSize", "%d cannot carry one %d-byte frame (%d bytes at least)", p.InMaxSize, maxEthernetFrame, oneFrameNTB)
	}
	if p.OutMaxSize < oneFrameNTB {
		return NTBParameters{}, formatErr(structure, 0, "dwNtbOutMaxSize", "%d cannot carry one %d-byte frame (%d bytes at least)", p.OutMaxSize, maxEthernetFrame, oneFrameNTB)
	}
	return p, nil
}

// Marshal encodes p as the 28 bytes a device answers GET_NTB_PARAMETERS
// with. Length is written as it is: set it to NTBParametersSize.
func (p NTBParameters) Marshal() []byte {
	b := make([]byte, NTBParametersSize)
	le.PutUint16(b[0:], p.Length)
	le.PutUint16(b[2:], p.FormatsSupported)
	le.PutUint32(b[4:], p.InMaxSize)
	le.PutUint16(b[8:], p.InDivisor)
	le.PutUint16(b[10:], p.InPayloadRemainder)
	le.PutUint16(b[12:], p.InAlignment)
	// b[14:16] is wPadding1, reserved
	le.PutUint32(b[16:], p.OutMaxSize)
	le.PutUint16(b[20:], p.OutDivisor)
	le.PutUint16(b[22:], p.OutPayloadRemainder)
	le.PutUint16(b[24:], p.OutAlignment)
	le.PutUint16(b[26:], p.OutMaxDatagrams)
	return b
}

// Supports reports whether bmNtbFormatsSupported offers f. Every function
// must support NTB16 (CDC NCM §3.2); Linux's host assumes it without looking.
func (p NTBParameters) Supports(f Format) bool {
	switch f {
	case NTB16:
		return p.FormatsSupported&NTB16Supported != 0
	case NTB32:
		return p.FormatsSupported&NTB32Supported != 0
	}
	return false
}

func (p NTBParameters) String() string {
	return fmt.Sprintf("formats %#x, in %d bytes (divisor %d, remainder %d, alignment %d), out %d bytes (divisor %d, remainder %d, alignment %d, %d datagrams)",
		p.FormatsSupported, p.InMaxSize, p.InDivisor, p.InPayloadRemainder, p.InAlignment,
		p.OutMaxSize, p.OutDivisor, p.OutPayloadRemainder, p.OutAlignment, p.OutMaxDatagrams)
}

// NTBInputSize is the data of SET_NTB_INPUT_SIZE and GET_NTB_INPUT_SIZE:
// the largest NTB the host accepts on the IN pipe and, in the 8-byte form,
// how many datagrams it takes in one (0: no limit).
type NTBInputSize struct {
	MaxSize      uint32 // dwNtbInMaxSize
	MaxDatagrams uint16 // wNtbInMaxDatagrams, sent only in the 8-byte form
}

// Marshal encodes s in the form the function's capabilities ask for: 8 bytes
// when they include CapNTBInputSize8Bytes, else 4. Linux's f_ncm does not
// offer the bit and stalls any SET_NTB_INPUT_SIZE that is not 4 bytes.
func (s NTBInputSize) Marshal(caps NetworkCapabilities) []byte {
	if caps&CapNTBInputSize8Bytes == 0 {
		return le.AppendUint32(nil, s.MaxSize)
	}
	b := le.AppendUint32(nil, s.MaxSize)
	b = le.AppendUint16(b, s.MaxDatagrams)
	return le.AppendUint16(b, 0) // wReserved
}

// ParseNTBInputSize decodes the 4- or 8-byte data of SET_NTB_INPUT_SIZE.
func ParseNTBInputSize(b []byte) (NTBInputSize, error) {
	switch len(b) {
	case 4:
		return NTBInputSize{MaxSize: le.Uint32(b)}, nil
	case 8:
		return NTBInputSize{MaxSize: le.Uint32(b), MaxDatagrams: le.Uint16(b[4:])}, nil
	}
	return NTBInputSize{}, formatErr("NTB input size", 0, "wLength", "%d bytes, want 4 or 8", len(b))
}
