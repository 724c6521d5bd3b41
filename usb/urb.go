package usb

// readTransfer reads one bulk-IN transfer into buf through read, which
// returns the bytes of one URB of urbSize (a multiple of wMaxPacketSize). A
// transfer that fills a URB goes on in the next; a short or empty URB ends
// it, as the device ends every transfer with a short packet. buf holds at
// least one URB; a transfer longer than buf ends with its last whole URB,
// and the rest comes as the next transfer.
func readTransfer(read func([]byte) (int, error), buf []byte, urbSize int) (int, error) {
	n := 0
	for n+urbSize <= len(buf) {
		k, err := read(buf[n : n+urbSize])
		n += k
		if err != nil || k < urbSize {
			return n, err
		}
	}
	return n, nil
}
