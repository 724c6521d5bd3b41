package link

// ecmFraming: CDC-ECM carries one Ethernet frame per transfer each way.
type ecmFraming struct {
	maxFrame  int // the largest frame the device takes: its wMaxSegmentSize, or the MTU's
	maxPacket int // wMaxPacketSize of bulk OUT
}

func (f ecmFraming) newWriter() frameWriter {
	return &ecmWriter{buf: make([]byte, 0, f.maxFrame+1), f: f} // +1 for the short-packet rule's byte
}

func (f ecmFraming) newReader() frameReader { return &ecmReader{} }

type ecmWriter struct {
	buf []byte
	f   ecmFraming
}

func (w *ecmWriter) reserve(n int) ([]byte, bool, error) {
	switch {
	case n == 0 || n > w.f.maxFrame:
		return nil, false, errFrameTooLarge{n, w.f.maxFrame}
	case len(w.buf) > 0:
		return nil, false, nil // one frame per transfer
	}
	w.buf = w.buf[:n]
	return w.buf, true, nil
}

func (w *ecmWriter) count() int {
	if len(w.buf) > 0 {
		return 1
	}
	return 0
}

// transfer is the frame with Linux's usbnet's short-packet rule: one zero
// byte when it fills whole packets (the device's network stack ignores a
// byte past the IP datagram).
func (w *ecmWriter) transfer() []byte { return padShortPacket(w.buf, w.f.maxPacket) }
func (w *ecmWriter) reset()           { w.buf = w.buf[:0] }

// ecmReader: the transfer is the frame.
type ecmReader struct {
	transfer []byte
	done     bool
}

func (r *ecmReader) reset(transfer []byte) { r.transfer, r.done = transfer, false }

func (r *ecmReader) next() ([]byte, bool) {
	if r.done {
		return nil, false
	}
	r.done = true
	return r.transfer, true
}

func (r *ecmReader) offset() int { return 0 }
func (r *ecmReader) err() error  { return nil }
