package link

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"time"
)

// PcapWriter writes the link's Ethernet frames, both directions, as a
// classic pcap file (LINKTYPE_ETHERNET) that Wireshark and tcpdump open.
// Unlike gVisor's sniffer, which records IP packets only, it shows ARP and
// the Ethernet headers the device sees.
type PcapWriter struct {
	mu  sync.Mutex
	w   io.Writer
	err error
	rec []byte
}

const (
	pcapMagic        = 0xa1b23c4d // nanosecond timestamps
	linkTypeEthernet = 1
	pcapSnapLen      = 65535
)

// NewPcapWriter writes the file header to w and returns the writer.
func NewPcapWriter(w io.Writer) (*PcapWriter, error) {
	hdr := make([]byte, 24)
	binary.LittleEndian.PutUint32(hdr[0:], pcapMagic)
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], pcapSnapLen)
	binary.LittleEndian.PutUint32(hdr[20:], linkTypeEthernet)
	if _, err := w.Write(hdr); err != nil {
		return nil, fmt.Errorf("link: writing pcap header: %w", err)
	}
	return &PcapWriter{w: w}, nil
}

// WriteFrame records one frame given in pieces. After the first write
// error it records nothing more; Err returns that error.
func (p *PcapWriter) WriteFrame(t time.Time, parts ...[]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return
	}
	n := 0
	for _, b := range parts {
		n += len(b)
	}
	p.rec = p.rec[:0]
	p.rec = binary.LittleEndian.AppendUint32(p.rec, uint32(t.Unix()))
	p.rec = binary.LittleEndian.AppendUint32(p.rec, uint32(t.Nanosecond()))
	p.rec = binary.LittleEndian.AppendUint32(p.rec, uint32(n)) // frames are shorter than the snap length
	p.rec = binary.LittleEndian.AppendUint32(p.rec, uint32(n))
	for _, b := range parts {
		p.rec = append(p.rec, b...)
	}
	_, p.err = p.w.Write(p.rec)
}

// Err returns the first write error.
func (p *PcapWriter) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}
