package link

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/rndis-netd/rndis-netd/usb/sim"
)

// readPcap returns the frames of a pcap file written by PcapWriter.
func readPcap(t *testing.T, b []byte) [][]byte {
	t.Helper()
	if len(b) < 24 || binary.LittleEndian.Uint32(b) != pcapMagic || binary.LittleEndian.Uint32(b[20:]) != linkTypeEthernet {
		t.Fatalf("pcap header %x", b[:min(len(b), 24)])
	}
	var frames [][]byte
	for b = b[24:]; len(b) > 0; {
		if len(b) < 16 {
			t.Fatalf("truncated record header")
		}
		n := int(binary.LittleEndian.Uint32(b[8:]))
		if n != int(binary.LittleEndian.Uint32(b[12:])) || len(b) < 16+n {
			t.Fatalf("bad record lengths")
		}
		frames = append(frames, b[16:16+n])
		b = b[16+n:]
	}
	return frames
}

func TestCaptureRecordsEthernetFramesBothWays(t *testing.T) {
	var file bytes.Buffer
	capture, err := NewPcapWriter(&file)
	if err != nil {
		t.Fatal(err)
	}
	opts := fastOptions()
	opts.Capture = capture
	tb := newTestbed(t, sim.LinuxGadget(), opts)
	c := tb.dial(t, sim.EchoPort)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if sent, got := echoStream(t, c, 64<<10, nil); sent != got {
		t.Fatal("echo corrupted")
	}
	c.Close()
	tb.link.Close()
	frames := readPcap(t, file.Bytes())
	var arp, fromPhone, toPhone int
	mac, phoneMAC := tb.link.MAC(), tb.phone.Config().PhoneMAC
	for _, f := range frames {
		if len(f) < 14 {
			t.Fatalf("frame of %d bytes", len(f))
		}
		if binary.BigEndian.Uint16(f[12:]) == 0x0806 {
			arp++
		}
		switch {
		case bytes.Equal(f[6:12], phoneMAC):
			fromPhone++
		case bytes.Equal(f[6:12], mac):
			toPhone++
		}
	}
	if arp < 2 || fromPhone == 0 || toPhone == 0 {
		t.Errorf("%d frames: %d ARP, %d from the phone, %d to it", len(frames), arp, fromPhone, toPhone)
	}
	if capture.Err() != nil {
		t.Error(capture.Err())
	}
}
