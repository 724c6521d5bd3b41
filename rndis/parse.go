package rndis

import "fmt"

// Parse decodes the one control or packet message at the start of b. Bytes
// after MessageLength are ignored (devices may pad a response). Buffers in
// the result alias b.
func Parse(b []byte) (Message, error) {
	m, err := parse(b)
	if err != nil {
		return nil, err
	}
	return m, nil
}

func parse(b []byte) (Message, error) {
	t, body, err := header(b)
	if err != nil {
		return nil, err
	}
	r := reader{t: t, b: body}
	switch t {
	case TypeInitialize:
		r.need(InitializeSize)
		m := Initialize{RequestID: r.u32(8), MajorVersion: r.u32(12), MinorVersion: r.u32(16), MaxTransferSize: r.u32(20)}
		return m, r.err
	case TypeInitializeComplete:
		r.need(InitializeCompleteSize)
		m := InitializeComplete{
			RequestID: r.u32(8), Status: Status(r.u32(12)), MajorVersion: r.u32(16), MinorVersion: r.u32(20),
			DeviceFlags: r.u32(24), Medium: r.u32(28), MaxPacketsPerTransfer: r.u32(32),
			MaxTransferSize: r.u32(36), PacketAlignmentFactor: r.u32(40), AFListOffset: r.u32(44), AFListSize: r.u32(48),
		}
		return m, r.err
	case TypeHalt:
		r.need(HaltSize)
		return Halt{RequestID: r.u32(8)}, r.err
	case TypeQuery, TypeSet:
		r.need(QuerySize)
		rid, oid, vc := r.u32(8), OID(r.u32(12)), r.u32(24)
		buf := r.buffer(QuerySize, 16, 20, "InformationBuffer")
		if r.err != nil {
			return nil, r.err
		}
		if t == TypeQuery {
			return Query{RequestID: rid, OID: oid, DeviceVCHandle: vc, Buffer: buf}, nil
		}
		return Set{RequestID: rid, OID: oid, DeviceVCHandle: vc, Buffer: buf}, nil
	case TypeQueryComplete:
		r.need(QueryCompleteSize)
		m := QueryComplete{RequestID: r.u32(8), Status: Status(r.u32(12))}
		m.Buffer = r.buffer(QueryCompleteSize, 16, 20, "InformationBuffer")
		return m, r.err
	case TypeSetComplete:
		r.need(SetCompleteSize)
		return SetComplete{RequestID: r.u32(8), Status: Status(r.u32(12))}, r.err
	case TypeReset:
		r.need(ResetSize)
		return Reset{Reserved: r.u32(8)}, r.err
	case TypeResetComplete:
		r.need(ResetCompleteSize)
		return ResetComplete{Status: Status(r.u32(8)), AddressingReset: r.u32(12)}, r.err
	case TypeIndicateStatus:
		r.need(IndicateStatusSize)
		m := IndicateStatus{Status: Status(r.u32(8))}
		m.Buffer = r.buffer(IndicateStatusSize, 12, 16, "StatusBuffer")
		return m, r.err
	case TypeKeepAlive:
		r.need(KeepAliveSize)
		return KeepAlive{RequestID: r.u32(8)}, r.err
	case TypeKeepAliveComplete:
		r.need(KeepAliveCompleteSize)
		return KeepAliveComplete{RequestID: r.u32(8), Status: Status(r.u32(12))}, r.err
	case TypePacket:
		data, err := parsePacket(body)
		if err != nil {
			return nil, err
		}
		return Packet{Data: data}, nil
	}
	return nil, &FormatError{Type: t, Field: "MessageType", Reason: ErrUnknownType.Error()}
}

// header reads MessageType and MessageLength and returns the message's bytes,
// exactly MessageLength long.
func header(b []byte) (MessageType, []byte, error) {
	if len(b) < headerSize {
		return 0, nil, formatErr(0, "MessageLength", "%d bytes, shorter than the 8-byte header", len(b))
	}
	t := MessageType(le.Uint32(b))
	n := le.Uint32(b[4:])
	if n < headerSize {
		return t, nil, formatErr(t, "MessageLength", "%d is shorter than the 8-byte header", n)
	}
	if uint64(n) > uint64(len(b)) {
		return t, nil, formatErr(t, "MessageLength", "%d exceeds the %d bytes received", n, len(b))
	}
	return t, b[:n], nil
}

// reader reads the fields of one message of known length, remembering the
// first error so that decoders read straight through.
type reader struct {
	t   MessageType
	b   []byte
	err error
}

func (r *reader) need(size int) {
	if r.err == nil && len(r.b) < size {
		r.err = formatErr(r.t, "MessageLength", "%d is shorter than the %d bytes of %v", len(r.b), size, r.t)
	}
}

func (r *reader) u32(off int) uint32 {
	if r.err != nil || off+4 > len(r.b) {
		return 0
	}
	return le.Uint32(r.b[off:])
}

// buffer returns the variable part whose length and offset (counted from
// byte 8) are the fields at lenAt and offAt. It must lie after the fixed
// part of the message and within MessageLength.
func (r *reader) buffer(fixed, lenAt, offAt int, name string) []byte {
	length, offset := uint64(r.u32(lenAt)), uint64(r.u32(offAt))
	if r.err != nil || length == 0 {
		return nil
	}
	start := offset + bufferOffsetBase
	if start < uint64(fixed) {
		r.err = formatErr(r.t, name+"Offset", "%d points into the %d-byte header", offset, fixed)
		return nil
	}
	if start+length > uint64(len(r.b)) {
		r.err = formatErr(r.t, name+"Length", "offset %d + length %d runs past MessageLength %d", offset, length, len(r.b))
		return nil
	}
	return r.b[start : start+length : start+length]
}

// parsePacket checks one PACKET_MSG of exactly MessageLength bytes and
// returns its frame.
func parsePacket(msg []byte) ([]byte, error) {
	if len(msg) < PacketHeaderSize {
		return nil, formatErr(TypePacket, "MessageLength", "%d is shorter than the %d-byte header", len(msg), PacketHeaderSize)
	}
	offset, length := uint64(le.Uint32(msg[8:])), uint64(le.Uint32(msg[12:]))
	start := offset + bufferOffsetBase
	if start < PacketHeaderSize {
		return nil, formatErr(TypePacket, "DataOffset", "%d points into the header", offset)
	}
	if length == 0 {
		return nil, formatErr(TypePacket, "DataLength", "0: a packet without a frame")
	}
	if start+length > uint64(len(msg)) {
		return nil, formatErr(TypePacket, "DataLength", "offset %d + length %d runs past MessageLength %d", offset, length, len(msg))
	}
	return msg[start : start+length : start+length], nil
}

// Describe returns a one-line description of m for logs.
func Describe(m Message) string {
	if rid, ok := RequestID(m); ok {
		return fmt.Sprintf("%v(rid=%d)", m.Type(), rid)
	}
	return m.Type().String()
}
