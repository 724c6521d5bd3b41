package rndis

import "encoding/binary"

// ResponseAvailableNotification returns the RESPONSE_AVAILABLE notification
// a device sends on its interrupt endpoint: {0x00000001, 0x00000000}.
func ResponseAvailableNotification() []byte {
	return binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, ResponseAvailable), 0)
}

// IsResponseAvailable reports whether an interrupt notification is
// RESPONSE_AVAILABLE: the RNDIS form {1, 0}, or the CDC form (bmRequestType
// 0xA1, bNotificationCode 0x01) that some devices send instead.
func IsResponseAvailable(b []byte) bool {
	switch {
	case len(b) == NotificationSize && binary.LittleEndian.Uint32(b) == ResponseAvailable:
		return true
	case len(b) >= NotificationSize && b[0] == 0xA1 && b[1] == 0x01:
		return true
	}
	return false
}
