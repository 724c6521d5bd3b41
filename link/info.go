package link

import (
	"crypto/rand"
	"net"

	"github.com/rndis-netd/rndis-netd/rndis"
	"github.com/rndis-netd/rndis-netd/usb"
)

// DeviceInfo is what the host learned from the device at the last start of
// its function.
type DeviceInfo struct {
	USB            usb.Info
	Protocol       usb.Protocol
	DeviceMAC      net.HardwareAddr // the address the device gives the host (RNDIS OID_802_3_PERMANENT_ADDRESS, CDC iMACAddress)
	MAC            net.HardwareAddr // the address the host uses
	MTU            int              // IP MTU
	LinkSpeed      int64            // bit/s, 0 when unknown
	MediaConnected bool

	RNDIS *RNDISInfo // RNDIS devices only
	NCM   *NCMInfo   // CDC-NCM devices only
}

// RNDISInfo is what an RNDIS device reported in INITIALIZE_CMPLT and its OIDs.
type RNDISInfo struct {
	Version        string             // of INITIALIZE_CMPLT
	Limits         rndis.PacketLimits // what the device accepts per bulk-OUT transfer
	PhysicalMedium uint32
	SupportedOIDs  []rndis.OID
}

func (i DeviceInfo) supports(oid rndis.OID) bool {
	if i.RNDIS == nil {
		return false
	}
	for _, o := range i.RNDIS.SupportedOIDs {
		if o == oid {
			return true
		}
	}
	return false
}

// Sane bounds on what a device reports.
const (
	minMTU              = 576
	defaultMTU          = 1500
	ethernetHeaderBytes = 14
)

// hostMAC returns the device's address for the host to use, or a random
// locally-administered one when the device's is locally administered or
// zero (as Linux does for ZTE-style devices that ignore the address).
func hostMAC(dev net.HardwareAddr) net.HardwareAddr {
	zero := true
	for _, b := range dev {
		zero = zero && b == 0
	}
	if !zero && dev[0]&0x02 == 0 && dev[0]&0x01 == 0 {
		return dev
	}
	mac := make(net.HardwareAddr, 6)
	rand.Read(mac)
	mac[0] = mac[0]&^0x01 | 0x02 // unicast, locally administered
	return mac
}
