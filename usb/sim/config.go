package sim

import (
	"net"
	"net/netip"
	"time"
)

// Config describes a simulated phone.
type Config struct {
	Name   string
	Serial string
	Path   string // USB port path reported in usb.Info

	VendorID, ProductID uint16
	BulkMaxPacket       int // wMaxPacketSize of the bulk endpoints: 512 at high speed

	// HostMAC is what the phone reports as OID_802_3_PERMANENT_ADDRESS: the
	// address the host should use. PhoneMAC is the phone's own.
	HostMAC  net.HardwareAddr
	PhoneMAC net.HardwareAddr
	MTU      int // IP MTU; OID_GEN_MAXIMUM_FRAME_SIZE reports it

	// What INITIALIZE_CMPLT reports: the most the phone accepts from the host
	// in one transfer, and the alignment of messages in it (2^n).
	MaxPacketsPerTransfer int
	MaxTransferSize       int
	AlignmentShift        int

	// How the phone packs its own transfers to the host (never more than the
	// host's MaxTransferSize).
	DownlinkMaxPackets int
	DownlinkMaxSize    int

	LinkSpeed int64 // bit/s

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

// Preset returns the configuration of a named preset.
func Preset(name string) (Config, bool) {
	switch name {
	case "linux-gadget":
		return LinuxGadget(), true
	case "qualcomm":
		return Qualcomm(), true
	}
	return Config{}, false
}

func base() Config {
	return Config{
		Serial:        "SIM0001",
		Path:          "1-1",
		BulkMaxPacket: 512,
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
