package ncm

import "fmt"

// Class requests of an NCM function (CDC NCM 1.0 §6.2; USB_CDC_* in Linux's
// include/uapi/linux/usb/cdc.h). They go to the control interface: wIndex is
// its number, bmRequestType 0xA1 for the GET requests and 0x21 for the SET
// ones.
const (
	RequestGetNTBParameters        = 0x80 // 28-byte NTBParameters
	RequestGetNetAddress           = 0x81 // 6-byte MAC address
	RequestSetNetAddress           = 0x82
	RequestGetNTBFormat            = 0x83 // 2 bytes: a Format
	RequestSetNTBFormat            = 0x84 // wValue: a Format; only at data alternate setting 0
	RequestGetNTBInputSize         = 0x85 // NTBInputSize
	RequestSetNTBInputSize         = 0x86 // NTBInputSize
	RequestGetMaxDatagramSize      = 0x87 // 2 bytes
	RequestSetMaxDatagramSize      = 0x88 // 2 bytes
	RequestGetCRCMode              = 0x89 // 2 bytes: CRCNotAppended or CRCAppended
	RequestSetCRCMode              = 0x8A // wValue: CRCNotAppended or CRCAppended
	RequestSetEthernetPacketFilter = 0x43 // wValue: a PacketFilter, no data; CDC-ECM too
)

// CRC modes, the wValue of SET_CRC_MODE.
const (
	CRCNotAppended = 0x0000
	CRCAppended    = 0x0001
)

// PacketFilter is the wValue of SET_ETHERNET_PACKET_FILTER: which frames the
// function passes to the host (CDC ECM 1.2 §6.2.4).
type PacketFilter uint16

// Packet filter bits (USB_CDC_PACKET_TYPE_*).
const (
	FilterPromiscuous  PacketFilter = 1 << 0
	FilterAllMulticast PacketFilter = 1 << 1
	FilterDirected     PacketFilter = 1 << 2
	FilterBroadcast    PacketFilter = 1 << 3
	FilterMulticast    PacketFilter = 1 << 4 // filtered by SET_ETHERNET_MULTICAST_FILTERS
)

// DefaultPacketFilter is what Linux's usbnet_cdc_update_filter sets for an
// interface that is not promiscuous and has multicast addresses (IPv6 always
// does), and what this project's RNDIS session sets.
const DefaultPacketFilter = FilterDirected | FilterBroadcast | FilterAllMulticast

// NetworkCapabilities is bmNetworkCapabilities of the NCM functional
// descriptor: the optional requests the function supports.
type NetworkCapabilities uint8

// Network capability bits (USB_CDC_NCM_NCAP_*).
const (
	CapEthernetFilter     NetworkCapabilities = 1 << 0 // SET_ETHERNET_PACKET_FILTER and the other filter requests
	CapNetAddress         NetworkCapabilities = 1 << 1 // GET/SET_NET_ADDRESS
	CapEncapsulated       NetworkCapabilities = 1 << 2 // SEND_ENCAPSULATED_COMMAND/GET_ENCAPSULATED_RESPONSE
	CapMaxDatagramSize    NetworkCapabilities = 1 << 3 // GET/SET_MAX_DATAGRAM_SIZE
	CapCRCMode            NetworkCapabilities = 1 << 4 // GET/SET_CRC_MODE
	CapNTBInputSize8Bytes NetworkCapabilities = 1 << 5 // GET/SET_NTB_INPUT_SIZE carry 8 bytes, not 4
)

// Format is an NTB format, the wValue of SET_NTB_FORMAT.
type Format uint16

// NTB formats (USB_CDC_NCM_NTB16_FORMAT, USB_CDC_NCM_NTB32_FORMAT).
const (
	NTB16 Format = 0x0000
	NTB32 Format = 0x0001
)

func (f Format) String() string {
	switch f {
	case NTB16:
		return "NTB16"
	case NTB32:
		return "NTB32"
	}
	return fmt.Sprintf("Format(%#04x)", uint16(f))
}

// Bits of NTBParameters.FormatsSupported (USB_CDC_NCM_NTB16_SUPPORTED and
// USB_CDC_NCM_NTB32_SUPPORTED).
const (
	NTB16Supported uint16 = 1 << 0
	NTB32Supported uint16 = 1 << 1
)

// Signatures, as the little-endian uint32 of their four ASCII bytes.
const (
	SignatureNTH16    uint32 = 0x484D434E // "NCMH"
	SignatureNTH32    uint32 = 0x686D636E // "ncmh"
	SignatureNDP16    uint32 = 0x304D434E // "NCM0": datagrams without CRC
	SignatureNDP16CRC uint32 = 0x314D434E // "NCM1": each datagram ends with its CRC-32
	SignatureNDP32    uint32 = 0x306D636E // "ncm0"
	SignatureNDP32CRC uint32 = 0x316D636E // "ncm1"
)

// Sizes of the fixed structures.
const (
	NTH16Size         = 12
	NTH32Size         = 16
	NDP16HeaderSize   = 8  // dwSignature, wLength, wNextNdpIndex
	NDP32HeaderSize   = 16 // dwSignature, wLength, wReserved6, dwNextNdpIndex, dwReserved12
	NDP16EntrySize    = 4  // wDatagramIndex, wDatagramLength
	NDP32EntrySize    = 8  // dwDatagramIndex, dwDatagramLength
	NTBParametersSize = 28
)

// Limits on what this package builds and accepts.
const (
	// MaxNDPs bounds the wNextNdpIndex chain a Reader follows; Linux's
	// cdc_ncm gives up after as many.
	MaxNDPs = 50
	// MaxDatagramsPerNTB caps OutLimits' MaxDatagrams when the device sets
	// no limit (wNtbOutMaxDatagrams 0) or a larger one, as Linux's
	// CDC_NCM_DPT_DATAGRAMS_MAX does.
	MaxDatagramsPerNTB = 40
	// DefaultNTBSize is the NTB size OutLimits and InputSize choose when
	// the caller names none and the device allows it: Linux's
	// CDC_NCM_NTB_DEF_SIZE_TX and _RX.
	DefaultNTBSize = 16384
	// MinNTBInputSize is the least input size a host may set
	// (USB_CDC_NCM_NTB_MIN_IN_SIZE, CDC NCM §6.2.7).
	MinNTBInputSize = 2048
)

const (
	ethernetHeaderSize = 14
	// maxEthernetFrame is the largest frame without FCS at the usual MTU
	// of 1500: NTB sizes that cannot carry one are an error.
	maxEthernetFrame = 1514
	// maxNTBSize caps the sizes OutLimits and InputSize derive, Linux's
	// CDC_NCM_NTB_MAX_SIZE_TX and _RX.
	maxNTBSize = 65536
	crcSize    = 4
)
