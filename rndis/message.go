package rndis

import "encoding/binary"

// Message is one RNDIS message. AppendBinary appends its wire form.
type Message interface {
	Type() MessageType
	AppendBinary(b []byte) ([]byte, error)
}

// Marshal returns the wire form of m.
func Marshal(m Message) []byte {
	b, _ := m.AppendBinary(nil) // appending to a slice cannot fail
	return b
}

// Fixed sizes of the messages, headers included.
const (
	headerSize                 = 8 // MessageType, MessageLength
	InitializeSize             = 24
	InitializeCompleteSize     = 52
	HaltSize                   = 12
	QuerySize                  = 28 // without the information buffer
	QueryCompleteSize          = 24 // without the information buffer
	SetSize                    = 28 // without the information buffer
	SetCompleteSize            = 16
	ResetSize                  = 12
	ResetCompleteSize          = 16
	IndicateStatusSize         = 20 // without the status buffer
	KeepAliveSize              = 12
	KeepAliveCompleteSize      = 16
	PacketHeaderSize           = 44
	bufferOffsetBase           = 8 // buffer offsets count from the field after MessageLength
	packetDataOffset           = PacketHeaderSize - bufferOffsetBase
	queryBufferOffset          = QuerySize - bufferOffsetBase
	queryCompleteBufferOffset  = QueryCompleteSize - bufferOffsetBase
	indicateStatusBufferOffset = IndicateStatusSize - bufferOffsetBase
)

var le = binary.LittleEndian

// appendWords appends the little-endian words of a message whose length is
// 4*len(words)+len(tail), and then tail.
func appendWords(b []byte, t MessageType, tail []byte, words ...uint32) []byte {
	b = le.AppendUint32(b, uint32(t))
	b = le.AppendUint32(b, uint32(headerSize+4*len(words)+len(tail)))
	for _, w := range words {
		b = le.AppendUint32(b, w)
	}
	return append(b, tail...)
}

// Initialize is REMOTE_NDIS_INITIALIZE_MSG (host to device).
type Initialize struct {
	RequestID       uint32
	MajorVersion    uint32
	MinorVersion    uint32
	MaxTransferSize uint32 // the largest bulk-IN transfer the host accepts
}

func (Initialize) Type() MessageType { return TypeInitialize }
func (m Initialize) AppendBinary(b []byte) ([]byte, error) {
	return appendWords(b, TypeInitialize, nil, m.RequestID, m.MajorVersion, m.MinorVersion, m.MaxTransferSize), nil
}

// InitializeComplete is REMOTE_NDIS_INITIALIZE_CMPLT (device to host).
type InitializeComplete struct {
	RequestID             uint32
	Status                Status
	MajorVersion          uint32
	MinorVersion          uint32
	DeviceFlags           uint32
	Medium                uint32
	MaxPacketsPerTransfer uint32
	MaxTransferSize       uint32
	PacketAlignmentFactor uint32 // exponent: messages in a transfer start on 2^n bytes
	AFListOffset          uint32
	AFListSize            uint32
}

func (InitializeComplete) Type() MessageType { return TypeInitializeComplete }
func (m InitializeComplete) AppendBinary(b []byte) ([]byte, error) {
	return appendWords(b, TypeInitializeComplete, nil, m.RequestID, uint32(m.Status), m.MajorVersion,
		m.MinorVersion, m.DeviceFlags, m.Medium, m.MaxPacketsPerTransfer, m.MaxTransferSize,
		m.PacketAlignmentFactor, m.AFListOffset, m.AFListSize), nil
}

// Halt is REMOTE_NDIS_HALT_MSG: 12 bytes, either direction, never answered.
type Halt struct {
	RequestID uint32
}

func (Halt) Type() MessageType { return TypeHalt }
func (m Halt) AppendBinary(b []byte) ([]byte, error) {
	return appendWords(b, TypeHalt, nil, m.RequestID), nil
}

// Query is REMOTE_NDIS_QUERY_MSG (host to device). Buffer is the input
// information buffer; ActiveSync devices want it as long as the reply.
type Query struct {
	RequestID      uint32
	OID            OID
	DeviceVCHandle uint32
	Buffer         []byte
}

func (Query) Type() MessageType { return TypeQuery }
func (m Query) AppendBinary(b []byte) ([]byte, error) {
	return appendWords(b, TypeQuery, m.Buffer, m.RequestID, uint32(m.OID), uint32(len(m.Buffer)),
		bufferOffset(m.Buffer, queryBufferOffset), m.DeviceVCHandle), nil
}

// QueryComplete is REMOTE_NDIS_QUERY_CMPLT (device to host).
type QueryComplete struct {
	RequestID uint32
	Status    Status
	Buffer    []byte
}

func (QueryComplete) Type() MessageType { return TypeQueryComplete }
func (m QueryComplete) AppendBinary(b []byte) ([]byte, error) {
	return appendWords(b, TypeQueryComplete, m.Buffer, m.RequestID, uint32(m.Status), uint32(len(m.Buffer)),
		bufferOffset(m.Buffer, queryCompleteBufferOffset)), nil
}

// Set is REMOTE_NDIS_SET_MSG (host to device).
type Set struct {
	RequestID      uint32
	OID            OID
	DeviceVCHandle uint32
	Buffer         []byte
}

func (Set) Type() MessageType { return TypeSet }
func (m Set) AppendBinary(b []byte) ([]byte, error) {
	return appendWords(b, TypeSet, m.Buffer, m.RequestID, uint32(m.OID), uint32(len(m.Buffer)),
		bufferOffset(m.Buffer, queryBufferOffset), m.DeviceVCHandle), nil
}

// SetComplete is REMOTE_NDIS_SET_CMPLT (device to host).
type SetComplete struct {
	RequestID uint32
	Status    Status
}

func (SetComplete) Type() MessageType { return TypeSetComplete }
func (m SetComplete) AppendBinary(b []byte) ([]byte, error) {
	return appendWords(b, TypeSetComplete, nil, m.RequestID, uint32(m.Status)), nil
}

// Reset is REMOTE_NDIS_RESET_MSG (host to device). It has no RequestId.
type Reset struct {
	Reserved uint32
}

func (Reset) Type() MessageType { return TypeReset }
func (m Reset) AppendBinary(b []byte) ([]byte, error) {
	return appendWords(b, TypeReset, nil, m.Reserved), nil
}

// ResetComplete is REMOTE_NDIS_RESET_CMPLT (device to host). It has no
// RequestId; AddressingReset non-zero asks the host to set the packet filter
// and multicast list again.
type ResetComplete struct {
	Status          Status
	AddressingReset uint32
}

func (ResetComplete) Type() MessageType { return TypeResetComplete }
func (m ResetComplete) AppendBinary(b []byte) ([]byte, error) {
	return appendWords(b, TypeResetComplete, nil, uint32(m.Status), m.AddressingReset), nil
}

// IndicateStatus is REMOTE_NDIS_INDICATE_STATUS_MSG, sent by the device unasked.
type IndicateStatus struct {
	Status Status
	Buffer []byte
}

func (IndicateStatus) Type() MessageType { return TypeIndicateStatus }
func (m IndicateStatus) AppendBinary(b []byte) ([]byte, error) {
	return appendWords(b, TypeIndicateStatus, m.Buffer, uint32(m.Status), uint32(len(m.Buffer)),
		bufferOffset(m.Buffer, indicateStatusBufferOffset)), nil
}

// KeepAlive is REMOTE_NDIS_KEEPALIVE_MSG; either side may send it.
type KeepAlive struct {
	RequestID uint32
}

func (KeepAlive) Type() MessageType { return TypeKeepAlive }
func (m KeepAlive) AppendBinary(b []byte) ([]byte, error) {
	return appendWords(b, TypeKeepAlive, nil, m.RequestID), nil
}

// KeepAliveComplete is REMOTE_NDIS_KEEPALIVE_CMPLT.
type KeepAliveComplete struct {
	RequestID uint32
	Status    Status
}

func (KeepAliveComplete) Type() MessageType { return TypeKeepAliveComplete }
func (m KeepAliveComplete) AppendBinary(b []byte) ([]byte, error) {
	return appendWords(b, TypeKeepAliveComplete, nil, m.RequestID, uint32(m.Status)), nil
}

// Packet is one REMOTE_NDIS_PACKET_MSG carrying one Ethernet frame. To put
// several into a transfer use PacketWriter; to read them, PacketReader.
type Packet struct {
	Data []byte
}

func (Packet) Type() MessageType { return TypePacket }
func (m Packet) AppendBinary(b []byte) ([]byte, error) {
	return appendPacket(b, m.Data), nil
}

// bufferOffset is the offset field of a buffer that directly follows a
// header: zero when there is no buffer, as devices send it.
func bufferOffset(buf []byte, offset uint32) uint32 {
	if len(buf) == 0 {
		return 0
	}
	return offset
}

// RequestID returns the RequestId of m, and false for the messages that have
// none (RESET, RESET_CMPLT, INDICATE_STATUS, PACKET).
func RequestID(m Message) (uint32, bool) {
	switch m := m.(type) {
	case Initialize:
		return m.RequestID, true
	case InitializeComplete:
		return m.RequestID, true
	case Halt:
		return m.RequestID, true
	case Query:
		return m.RequestID, true
	case QueryComplete:
		return m.RequestID, true
	case Set:
		return m.RequestID, true
	case SetComplete:
		return m.RequestID, true
	case KeepAlive:
		return m.RequestID, true
	case KeepAliveComplete:
		return m.RequestID, true
	}
	return 0, false
}
