package ncm

// NotificationReader turns successive interrupt-IN transfers into
// notifications. Feed it each transfer, then call Next until it returns
// false, before the transfer's bytes change.
//
// A transfer holds one notification, several back to back, or the rest of
// a CONNECTION_SPEED_CHANGE whose header came in the transfer before: a
// function whose interrupt endpoint has 8-byte packets sends the header and
// the 8 bytes of data as two transfers, and Linux's cdc_ether and cdc_ncm
// read the transfer after a short speed change as its data
// (EVENT_STS_SPLIT). So does this reader, with one exception: a transfer
// that is itself exactly one whole notification (NETWORK_CONNECTION or
// RESPONSE_AVAILABLE of 8 bytes, CONNECTION_SPEED_CHANGE of 16) is taken as
// that, and the speed change waiting for data is dropped as broken. The
// data of a speed change could only look like such a notification if its
// downlink rate began with the bytes A1 00 or A1 01 and its uplink rate
// were under 65536 bit/s.
//
// Garbage (a short header, a bmRequestType other than 0xA1, a speed change
// whose wLength is not 8) ends the transfer: the reader resynchronizes at
// the next one, which starts a notification. Err says what was wrong. Data
// of other notifications is skipped as far as the transfer holds it and not
// kept; a NETWORK_CONNECTION or RESPONSE_AVAILABLE that carries some anyway
// still counts, as it does for Linux. The reader holds at most one pending
// header and 8 bytes, whatever it is fed.
type NotificationReader struct {
	transfer []byte
	pos      int
	err      error
	waiting  bool         // pending is a speed change short of its data
	pending  Notification // the header that waits
	data     [speedChangeDataSize]byte
	got      int // bytes of data so far
}

// Feed hands the reader the next interrupt-IN transfer. What the previous
// one held and Next did not return is dropped.
func (r *NotificationReader) Feed(transfer []byte) {
	r.transfer, r.pos, r.err = transfer, 0, nil
	if r.waiting && wholeNotification(transfer) {
		r.waiting = false
		r.err = formatErr("notification", 0, "wLength", "the data of the %v before never came; this transfer is a notification of its own", r.pending.Code)
	}
}

// wholeNotification reports whether b is exactly one notification that
// needs no data from elsewhere.
func wholeNotification(b []byte) bool {
	if len(b) < NotificationHeaderSize || b[0] != NotificationRequestType {
		return false
	}
	length := int(le.Uint16(b[6:]))
	switch NotificationCode(b[1]) {
	case NotifyNetworkConnection, NotifyResponseAvailable:
		return length == 0 && len(b) == NotificationHeaderSize
	case NotifyConnectionSpeedChange:
		return length == speedChangeDataSize && len(b) == NotificationHeaderSize+speedChangeDataSize
	}
	return false
}

// Next returns the next complete notification of the transfer, or false
// when the transfer holds no more (a speed change may be left waiting for
// its data) or the rest of it is garbage.
func (r *NotificationReader) Next() (Notification, bool) {
	for r.pos < len(r.transfer) {
		rest := r.transfer[r.pos:]
		if r.waiting {
			k := copy(r.data[r.got:], rest)
			r.got += k
			r.pos += k
			if r.got < speedChangeDataSize {
				return Notification{}, false
			}
			r.waiting = false
			n := r.pending
			n.DownlinkBitRate = le.Uint32(r.data[0:])
			n.UplinkBitRate = le.Uint32(r.data[4:])
			return n, true
		}
		if len(rest) < NotificationHeaderSize {
			return r.garbage("bmRequestType", "%d bytes, shorter than the %d-byte header", len(rest), NotificationHeaderSize)
		}
		if rest[0] != NotificationRequestType {
			return r.garbage("bmRequestType", "%#02x, want %#02x", rest[0], NotificationRequestType)
		}
		n := Notification{Code: NotificationCode(rest[1]), Value: le.Uint16(rest[2:]), Interface: le.Uint16(rest[4:])}
		length := int(le.Uint16(rest[6:]))
		if n.Code == NotifyConnectionSpeedChange {
			if length != speedChangeDataSize {
				return r.garbage("wLength", "%d for %v, want %d", length, n.Code, speedChangeDataSize)
			}
			r.pos += NotificationHeaderSize
			r.pending, r.waiting, r.got = n, true, 0
			continue
		}
		r.pos += NotificationHeaderSize + min(length, len(rest)-NotificationHeaderSize)
		return n, true
	}
	return Notification{}, false
}

// garbage ends the transfer with an error about the notification at r.pos.
func (r *NotificationReader) garbage(field, format string, args ...any) (Notification, bool) {
	if r.err == nil {
		r.err = formatErr("notification", r.pos, field, format, args...)
	}
	r.pos = len(r.transfer)
	return Notification{}, false
}

// Err returns the first thing wrong with the last transfer fed, or nil.
func (r *NotificationReader) Err() error { return r.err }

// Reset forgets any notification waiting for its data, as after the
// interrupt endpoint was reset.
func (r *NotificationReader) Reset() { *r = NotificationReader{} }
