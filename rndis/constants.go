package rndis

import "fmt"

// MessageType is the first field of every RNDIS message.
type MessageType uint32

// Message types. A completion is its request's type with CompletionBit set.
const (
	TypePacket         MessageType = 0x00000001
	TypeInitialize     MessageType = 0x00000002
	TypeHalt           MessageType = 0x00000003
	TypeQuery          MessageType = 0x00000004
	TypeSet            MessageType = 0x00000005
	TypeReset          MessageType = 0x00000006
	TypeIndicateStatus MessageType = 0x00000007
	TypeKeepAlive      MessageType = 0x00000008

	CompletionBit MessageType = 0x80000000

	TypeInitializeComplete MessageType = TypeInitialize | CompletionBit
	TypeQueryComplete      MessageType = TypeQuery | CompletionBit
	TypeSetComplete        MessageType = TypeSet | CompletionBit
	TypeResetComplete      MessageType = TypeReset | CompletionBit
	TypeKeepAliveComplete  MessageType = TypeKeepAlive | CompletionBit
)

var messageTypeNames = map[MessageType]string{
	TypePacket:             "PACKET_MSG",
	TypeInitialize:         "INITIALIZE_MSG",
	TypeHalt:               "HALT_MSG",
	TypeQuery:              "QUERY_MSG",
	TypeSet:                "SET_MSG",
	TypeReset:              "RESET_MSG",
	TypeIndicateStatus:     "INDICATE_STATUS_MSG",
	TypeKeepAlive:          "KEEPALIVE_MSG",
	TypeInitializeComplete: "INITIALIZE_CMPLT",
	TypeQueryComplete:      "QUERY_CMPLT",
	TypeSetComplete:        "SET_CMPLT",
	TypeResetComplete:      "RESET_CMPLT",
	TypeKeepAliveComplete:  "KEEPALIVE_CMPLT",
}

func (t MessageType) String() string {
	if s, ok := messageTypeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("MessageType(%#08x)", uint32(t))
}

// Status is an NDIS status code, carried by completions and INDICATE_STATUS.
type Status uint32

// Completion status codes.
const (
	StatusSuccess        Status = 0x00000000
	StatusPending        Status = 0x00000103
	StatusBufferOverflow Status = 0x80000005
	StatusFailure        Status = 0xC0000001
	StatusResources      Status = 0xC000009A
	StatusNotSupported   Status = 0xC00000BB
	StatusBadVersion     Status = 0xC0010004
	StatusInvalidLength  Status = 0xC0010014
	StatusInvalidData    Status = 0xC0010015
	StatusInvalidOID     Status = 0xC0010017
)

// Indication status codes of INDICATE_STATUS_MSG.
const (
	StatusMediaConnect            Status = 0x4001000B
	StatusMediaDisconnect         Status = 0x4001000C
	StatusResetStart              Status = 0x40010004
	StatusResetEnd                Status = 0x40010005
	StatusMediaSpecificIndication Status = 0x40010012
	StatusLinkSpeedChange         Status = 0x40010013
	StatusNetworkChange           Status = 0x40010018
)

var statusNames = map[Status]string{
	StatusSuccess:                 "SUCCESS",
	StatusPending:                 "PENDING",
	StatusBufferOverflow:          "BUFFER_OVERFLOW",
	StatusFailure:                 "FAILURE",
	StatusResources:               "RESOURCES",
	StatusNotSupported:            "NOT_SUPPORTED",
	StatusBadVersion:              "BAD_VERSION",
	StatusInvalidLength:           "INVALID_LENGTH",
	StatusInvalidData:             "INVALID_DATA",
	StatusInvalidOID:              "INVALID_OID",
	StatusMediaConnect:            "MEDIA_CONNECT",
	StatusMediaDisconnect:         "MEDIA_DISCONNECT",
	StatusResetStart:              "RESET_START",
	StatusResetEnd:                "RESET_END",
	StatusMediaSpecificIndication: "MEDIA_SPECIFIC_INDICATION",
	StatusLinkSpeedChange:         "LINK_SPEED_CHANGE",
	StatusNetworkChange:           "NETWORK_CHANGE",
}

func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("Status(%#08x)", uint32(s))
}

// OID names an object of the device's NDIS miniport, read with QUERY and
// written with SET.
type OID uint32

// General OIDs.
const (
	OIDGenSupportedList        OID = 0x00010101
	OIDGenHardwareStatus       OID = 0x00010102
	OIDGenMediaSupported       OID = 0x00010103
	OIDGenMediaInUse           OID = 0x00010104
	OIDGenMaximumFrameSize     OID = 0x00010106
	OIDGenLinkSpeed            OID = 0x00010107 // in units of 100 bit/s
	OIDGenVendorID             OID = 0x0001010C
	OIDGenVendorDescription    OID = 0x0001010D
	OIDGenCurrentPacketFilter  OID = 0x0001010E
	OIDGenMaximumTotalSize     OID = 0x00010111
	OIDGenMACOptions           OID = 0x00010113
	OIDGenMediaConnectStatus   OID = 0x00010114 // MediaStateConnected or MediaStateDisconnected
	OIDGenMaximumSendPackets   OID = 0x00010115
	OIDGenPhysicalMedium       OID = 0x00010202
	OIDGenRNDISConfigParameter OID = 0x0001021B
)

// Statistics OIDs.
const (
	OIDGenXmitOK      OID = 0x00020101
	OIDGenRcvOK       OID = 0x00020102
	OIDGenXmitError   OID = 0x00020103
	OIDGenRcvError    OID = 0x00020104
	OIDGenRcvNoBuffer OID = 0x00020105
)

// 802.3 OIDs.
const (
	OID8023PermanentAddress OID = 0x01010101
	OID8023CurrentAddress   OID = 0x01010102
	OID8023MulticastList    OID = 0x01010103
	OID8023MaximumListSize  OID = 0x01010104
)

var oidNames = map[OID]string{
	OIDGenSupportedList:        "OID_GEN_SUPPORTED_LIST",
	OIDGenHardwareStatus:       "OID_GEN_HARDWARE_STATUS",
	OIDGenMediaSupported:       "OID_GEN_MEDIA_SUPPORTED",
	OIDGenMediaInUse:           "OID_GEN_MEDIA_IN_USE",
	OIDGenMaximumFrameSize:     "OID_GEN_MAXIMUM_FRAME_SIZE",
	OIDGenLinkSpeed:            "OID_GEN_LINK_SPEED",
	OIDGenVendorID:             "OID_GEN_VENDOR_ID",
	OIDGenVendorDescription:    "OID_GEN_VENDOR_DESCRIPTION",
	OIDGenCurrentPacketFilter:  "OID_GEN_CURRENT_PACKET_FILTER",
	OIDGenMaximumTotalSize:     "OID_GEN_MAXIMUM_TOTAL_SIZE",
	OIDGenMACOptions:           "OID_GEN_MAC_OPTIONS",
	OIDGenMediaConnectStatus:   "OID_GEN_MEDIA_CONNECT_STATUS",
	OIDGenMaximumSendPackets:   "OID_GEN_MAXIMUM_SEND_PACKETS",
	OIDGenPhysicalMedium:       "OID_GEN_PHYSICAL_MEDIUM",
	OIDGenRNDISConfigParameter: "OID_GEN_RNDIS_CONFIG_PARAMETER",
	OIDGenXmitOK:               "OID_GEN_XMIT_OK",
	OIDGenRcvOK:                "OID_GEN_RCV_OK",
	OIDGenXmitError:            "OID_GEN_XMIT_ERROR",
	OIDGenRcvError:             "OID_GEN_RCV_ERROR",
	OIDGenRcvNoBuffer:          "OID_GEN_RCV_NO_BUFFER",
	OID8023PermanentAddress:    "OID_802_3_PERMANENT_ADDRESS",
	OID8023CurrentAddress:      "OID_802_3_CURRENT_ADDRESS",
	OID8023MulticastList:       "OID_802_3_MULTICAST_LIST",
	OID8023MaximumListSize:     "OID_802_3_MAXIMUM_LIST_SIZE",
}

func (o OID) String() string {
	if n, ok := oidNames[o]; ok {
		return n
	}
	return fmt.Sprintf("OID(%#08x)", uint32(o))
}

// Values of OID_GEN_MEDIA_CONNECT_STATUS.
const (
	MediaStateConnected    uint32 = 0
	MediaStateDisconnected uint32 = 1
)

// Values of OID_GEN_PHYSICAL_MEDIUM that matter to a host.
const (
	PhysicalMediumUnspecified uint32 = 0
	PhysicalMediumWirelessLAN uint32 = 1
)

// Packet-filter bits of OID_GEN_CURRENT_PACKET_FILTER.
const (
	FilterDirected      uint32 = 0x00000001
	FilterMulticast     uint32 = 0x00000002
	FilterAllMulticast  uint32 = 0x00000004
	FilterBroadcast     uint32 = 0x00000008
	FilterSourceRouting uint32 = 0x00000010
	FilterPromiscuous   uint32 = 0x00000020
	FilterSMT           uint32 = 0x00000040
	FilterAllLocal      uint32 = 0x00000080
	FilterGroup         uint32 = 0x00001000
	FilterAllFunctional uint32 = 0x00002000
	FilterFunctional    uint32 = 0x00004000
	FilterMACFrame      uint32 = 0x00008000
)

// Device flags and medium of INITIALIZE_CMPLT.
const (
	DeviceFlagConnectionless     uint32 = 0x00000001
	DeviceFlagConnectionOriented uint32 = 0x00000002

	Medium8023 uint32 = 0x00000000
)

// Protocol version a host offers in INITIALIZE_MSG.
const (
	MajorVersion uint32 = 1
	MinorVersion uint32 = 0
)

// ResponseAvailable is the notification a device sends on its interrupt
// endpoint when a control response is ready: {0x00000001, 0x00000000}.
const ResponseAvailable uint32 = 0x00000001

// NotificationSize is the length of the RESPONSE_AVAILABLE notification.
const NotificationSize = 8
