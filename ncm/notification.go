package ncm

import "fmt"

// NotificationCode is bNotification of a CDC notification.
type NotificationCode uint8

// Notifications of CDC Ethernet functions, NCM and ECM alike
// (USB_CDC_NOTIFY_*).
const (
	NotifyNetworkConnection     NotificationCode = 0x00 // wValue 1: connected, 0: disconnected
	NotifyResponseAvailable     NotificationCode = 0x01 // an encapsulated response waits
	NotifyConnectionSpeedChange NotificationCode = 0x2A // 8 bytes of data: DLBitRate, ULBitRate
)

func (c NotificationCode) String() string {
	switch c {
	case NotifyNetworkConnection:
		return "NETWORK_CONNECTION"
	case NotifyResponseAvailable:
		return "RESPONSE_AVAILABLE"
	case NotifyConnectionSpeedChange:
		return "CONNECTION_SPEED_CHANGE"
	}
	return fmt.Sprintf("notification %#02x", uint8(c))
}

// NotificationRequestType is bmRequestType of every CDC notification:
// device to host, class, interface.
const NotificationRequestType = 0xA1

// NotificationHeaderSize is the size of the header every notification
// starts with: bmRequestType, bNotification, wValue, wIndex, wLength.
const NotificationHeaderSize = 8

// speedChangeDataSize is CONNECTION_SPEED_CHANGE's wLength.
const speedChangeDataSize = 8

// Notification is one notification of the interrupt endpoint.
type Notification struct {
	Code      NotificationCode
	Value     uint16 // wValue
	Interface uint16 // wIndex: the control interface
	// DownlinkBitRate and UplinkBitRate are CONNECTION_SPEED_CHANGE's
	// data, in bits per second: DLBitRate (the IN pipe, device to host)
	// then ULBitRate, as Linux's struct usb_cdc_speed_change has them.
	DownlinkBitRate, UplinkBitRate uint32
}

// Connected reports NETWORK_CONNECTION's state. Any non-zero wValue counts,
// as it does for Linux's cdc_ether and cdc_ncm.
func (n Notification) Connected() bool { return n.Value != 0 }

func (n Notification) String() string {
	switch n.Code {
	case NotifyNetworkConnection:
		if n.Connected() {
			return "NETWORK_CONNECTION connected"
		}
		return "NETWORK_CONNECTION disconnected"
	case NotifyConnectionSpeedChange:
		return fmt.Sprintf("CONNECTION_SPEED_CHANGE down %d bit/s, up %d bit/s", n.DownlinkBitRate, n.UplinkBitRate)
	}
	return n.Code.String()
}

// ConnectionNotification returns the NETWORK_CONNECTION notification of the
// control interface iface.
func ConnectionNotification(iface uint16, connected bool) Notification {
	n := Notification{Code: NotifyNetworkConnection, Interface: iface}
	if connected {
		n.Value = 1
	}
	return n
}

// SpeedNotification returns the CONNECTION_SPEED_CHANGE notification of the
// control interface iface.
func SpeedNotification(iface uint16, downlink, uplink uint32) Notification {
	return Notification{Code: NotifyConnectionSpeedChange, Interface: iface, DownlinkBitRate: downlink, UplinkBitRate: uplink}
}

// Append appends n as a device sends it: the header and, for
// CONNECTION_SPEED_CHANGE, its 8 bytes of data. A device whose interrupt
// endpoint has 8-byte packets sends those 16 bytes as two transfers.
func (n Notification) Append(b []byte) []byte {
	length := uint16(0)
	if n.Code == NotifyConnectionSpeedChange {
		length = speedChangeDataSize
	}
	b = append(b, NotificationRequestType, byte(n.Code))
	b = le.AppendUint16(b, n.Value)
	b = le.AppendUint16(b, n.Interface)
	b = le.AppendUint16(b, length)
	if n.Code == NotifyConnectionSpeedChange {
		b = le.AppendUint32(b, n.DownlinkBitRate)
		b = le.AppendUint32(b, n.UplinkBitRate)
	}
	return b
}

// Marshal returns n as a device sends it.
func (n Notification) Marshal() []byte { return n.Append(nil) }
