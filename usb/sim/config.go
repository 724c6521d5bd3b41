package sim

import (
	"net"
	"net/netip"
	"time"

	"github.com/rndis-netd/rndis-netd/ncm"
	"github.com/rndis-netd/rndis-netd/usb"
)

// Config describes a simulated phone.
type Config struct {
	Name   string
	Serial string
	Path   string // USB port path reported in usb.Info

	VendorID, ProductID uint16
	BulkMaxPacket       int // wMaxPacketSize of the bulk endpoints: 512 at high speed

	// Protocol is the network function the phone presents: RNDIS (the
	// default, for ""), CDC-NCM or CDC-ECM.
	Protocol usb.Protocol

	// HostMAC is the address the host should use: RNDIS reports it as
	// OID_802_3_PERMANENT_ADDRESS, NCM and ECM in the iMACAddress string.
	// PhoneMAC is the phone's own.
	HostMAC  net.HardwareAddr
	PhoneMAC net.HardwareAddr
	MTU      int // IP MTU; OID_GEN_MAXIMUM_FRAME_SIZE reports it

	// RNDIS: what INITIALIZE_CMPLT reports: the most the phone accepts from
	// the host in one transfer, and the alignment of messages in it (2^n).
	MaxPacketsPerTransfer int
	MaxTransferSize       int
	AlignmentShift        int

	// RNDIS: how the phone packs its own transfers to the host (never more
	// than the host's MaxTransferSize).
	DownlinkMaxPackets int
	DownlinkMaxSize    int

	LinkSpeed int64 // bit/s; NCM and ECM send it as CONNECTION_SPEED_CHANGE, both ways

	// CDC-NCM and CDC-ECM.
	//
	// NTBParameters is what GET_NTB_PARAMETERS answers (NCM): the limits of
	// the blocks the phone sends (In) and accepts (Out).
	NTBParameters ncm.NTBParameters
	// NCMCapabilities is bmNetworkCapabilities (NCM). The phone serves the
	// requests of CapEthernetFilter, CapCRCMode and CapNTBInputSize8Bytes;
	// New refuses the other bits, whose requests it does not implement.
	NCMCapabilities ncm.NetworkCapabilities
	// NTBMaxDatagrams is the most datagrams the phone puts in one NTB to
	// the host; 0 means 31, Linux's f_ncm's limit.
	NTBMaxDatagrams int
	// MaxSegmentSize is wMaxSegmentSize, the largest frame the phone sends
	// or takes; 0 means MTU+14.
	MaxSegmentSize int
	// MACAddress is the iMACAddress string; "" means HostMAC as 12
	// upper-case hex digits, as Linux's gadgets send it.
	MACAddress string
	// NotifyMaxPacket is wMaxPacketSize of the interrupt endpoint: 16 for
	// f_ncm and f_ecm (the default for NCM and ECM), 8 for RNDIS (its
	// default). With 8, a 16-byte CONNECTION_SPEED_CHANGE reaches the
	// host in two transfers, as it does a host that reads in transfers of
	// wMaxPacketSize (Linux).
	NotifyMaxPacket int
	// NoZeroLengthPackets: the phone's USB device controller sends no
	// zero-length packets, so a transfer to the host that fills whole
	// packets gets one more byte (Linux's u_ether without is_zlp_ok); NCM
	// and ECM only: RNDIS always pads so.
	NoZeroLengthPackets bool

	// The tethering network.
	Subnet    netip.Prefix // the phone has the first address of PhoneAddr
	PhoneAddr netip.Addr
	Prefix6   netip.Prefix // the /64 the phone advertises for SLAAC; the phone is ::1 in it
	LeaseTime time.Duration
	NoDHCP    bool                  // serve no DHCP, as some LTE modules do
	DNS       map[string]netip.Addr // names the phone's DNS server answers; PhoneName always
}

// PhoneAddr6 returns the phone's address in its IPv6 prefix.
func (c Config) PhoneAddr6() netip.Addr { return c.Prefix6.Masked().Addr().Next() }

// PhoneName is the name the phone's DNS server gives its own address.
const PhoneName = "phone.test"

// LinuxGadget is Linux's f_rndis (and QEMU's usb-net): one packet per
// transfer each way, MaxTransferSize 1580, no alignment.
func LinuxGadget() Config {
	c := base()
	c.Name = "linux-gadget"
	c.VendorID, c.ProductID = 0x0525, 0xa4a2
	c.MaxPacketsPerTransfer, c.MaxTransferSize, c.AlignmentShift = 1, 1580, 0
	c.DownlinkMaxPackets, c.DownlinkMaxSize = 1, 1580
	return c
}

// Qualcomm is an Android phone on a Qualcomm kernel: it aggregates up to 10
// packets / 11 KiB per transfer to the host, accepts 5 per transfer from
// it, and wants 8-byte alignment.
func Qualcomm() Config {
	c := base()
	c.Name = "qualcomm"
	c.VendorID, c.ProductID = 0x05c6, 0x9024
	c.MaxPacketsPerTransfer, c.MaxTransferSize, c.AlignmentShift = 5, 9216, 3
	c.DownlinkMaxPackets, c.DownlinkMaxSize = 10, 11264
	return c
}

// gadgetBitRate is what Linux's f_ncm and f_ecm report in
// CONNECTION_SPEED_CHANGE at high speed (u_ether's gether_bitrate).
const gadgetBitRate = 425_984_000

// Pixel is a Pixel 6 or later tethering over CDC-NCM, which is Linux's
// f_ncm (18d1:4eeb, the NCM-only configuration of Android's gadget HAL):
// NTB16 and NTB32, 16 KiB blocks both ways with datagrams and NDPs 4-byte
// aligned, no limit on datagrams from the host, bmNetworkCapabilities 0x11
// (packet filter, CRC mode), wMaxSegmentSize 1514, a 16-byte interrupt
// endpoint. It packs up to 31 datagrams into each NTB to the host, NDP at
// the end, and takes the host's NTBs as f_ncm checks them.
func Pixel() Config {
	c := linuxCDC()
	c.Name = "pixel"
	c.Protocol = usb.ProtocolNCM
	c.VendorID, c.ProductID = 0x18d1, 0x4eeb
	c.NTBParameters = ncm.NTBParameters{
		Length:           ncm.NTBParametersSize,
		FormatsSupported: ncm.NTB16Supported | ncm.NTB32Supported,
		InMaxSize:        16384, InDivisor: 4, InPayloadRemainder: 0, InAlignment: 4,
		OutMaxSize: 16384, OutDivisor: 4, OutPayloadRemainder: 0, OutAlignment: 4,
		OutMaxDatagrams: 0,
	}
	c.NCMCapabilities = ncm.CapEthernetFilter | ncm.CapCRCMode
	c.NTBMaxDatagrams = fncmMaxDatagrams
	return c
}

// Dongle is an LTE dongle in CDC-ECM mode as Linux's f_ecm presents one,
// with the identity and network of a Huawei E3372 in HiLink mode
// (12d1:14dc, the dongle at 192.168.8.1): one frame per transfer each way,
// wMaxSegmentSize 1514, a 16-byte interrupt endpoint.
func Dongle() Config {
	c := linuxCDC()
	c.Name = "dongle"
	c.Protocol = usb.ProtocolECM
	c.VendorID, c.ProductID = 0x12d1, 0x14dc
	c.Subnet = netip.MustParsePrefix("192.168.8.0/24")
	c.PhoneAddr = netip.MustParseAddr("192.168.8.1")
	return c
}

// linuxCDC is what Linux's f_ncm and f_ecm share at high speed: their
// speed, wMaxSegmentSize and interrupt endpoint.
func linuxCDC() Config {
	c := base()
	c.LinkSpeed = gadgetBitRate
	c.MaxSegmentSize = 1514
	c.NotifyMaxPacket = 16
	return c
}

// presets are the named configurations, in the order PresetNames lists them.
var presets = []struct {
	name string
	cfg  func() Config
}{
	{"qualcomm", Qualcomm},
	{"linux-gadget", LinuxGadget},
	{"pixel", Pixel},
	{"dongle", Dongle},
}

// Preset returns the configuration of a named preset.
func Preset(name string) (Config, bool) {
	for _, p := range presets {
		if p.name == name {
			return p.cfg(), true
		}
	}
	return Config{}, false
}

// PresetNames returns the names Preset knows.
func PresetNames() []string {
	names := make([]string, len(presets))
	for i, p := range presets {
		names[i] = p.name
	}
	return names
}

func base() Config {
	return Config{
		Serial:        "SIM0001",
		Path:          "1-1",
		BulkMaxPacket: 512,
		Protocol:      usb.ProtocolRNDIS,
		HostMAC:       net.HardwareAddr{0x02, 0x52, 0x4e, 0x44, 0x49, 0x53},
		PhoneMAC:      net.HardwareAddr{0x02, 0x50, 0x48, 0x4f, 0x4e, 0x45},
		MTU:           1500,
		LinkSpeed:     425_000_000,
		Subnet:        netip.MustParsePrefix("192.168.42.0/24"),
		PhoneAddr:     netip.MustParseAddr("192.168.42.129"),
		Prefix6:       netip.MustParsePrefix("fd52:4e44:4953:2a::/64"),
		LeaseTime:     time.Hour,
	}
}
