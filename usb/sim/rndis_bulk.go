package sim

import (
	"encoding/binary"

	"github.com/rndis-netd/rndis-netd/rndis"
	"github.com/rndis-netd/rndis-netd/usb"
)

// rndisPacker packs PACKET_MSGs within the phone's limits and the host's.
type rndisPacker struct {
	r   *rndisFunction
	buf []byte
	w   rndis.PacketWriter
}

func (r *rndisFunction) tx() txFramer { return &r.packer }

func (k *rndisPacker) begin(buf []byte) {
	cfg := k.r.p.cfg
	k.buf = buf
	k.w = *rndis.NewPacketWriter(buf[:0], rndis.PacketLimits{
		MaxTransferSize:       min(cfg.DownlinkMaxSize, k.r.hostMaxXfer, len(buf)-1),
		MaxPacketsPerTransfer: cfg.DownlinkMaxPackets,
		Alignment:             1 << cfg.AlignmentShift,
	})
}

func (k *rndisPacker) reserve(n int) ([]byte, bool, error) { return k.w.Reserve(n) }
func (k *rndisPacker) count() int                          { return k.w.Count() }

func (k *rndisPacker) finish(corrupt bool) int {
	n := len(k.w.Bytes())
	if corrupt {
		binary.LittleEndian.PutUint32(k.buf[12:], 0xffffff00) // DataLength of the first message
	}
	if usb.ShortPacketPad(n, k.r.p.cfg.BulkMaxPacket) > 0 {
		k.buf[n] = 0 // the device side of the short-packet rule
		n++
	}
	return n
}

// fromHost collects the frames of a host transfer and reports whether the
// transfer breaks what the phone announced in INITIALIZE_CMPLT: size,
// packet count, alignment, or format.
func (r *rndisFunction) fromHost(data []byte, frames [][]byte) (_ [][]byte, violation bool) {
	cfg := r.p.cfg
	size := len(data) - usb.ShortPacketPad(len(data)-1, cfg.BulkMaxPacket)
	pr := rndis.NewPacketReader(data)
	for frame, ok := pr.Next(); ok; frame, ok = pr.Next() {
		if (pr.Offset()-rndis.PacketHeaderSize)%(1<<cfg.AlignmentShift) != 0 {
			violation = true
		}
		frames = append(frames, frame)
	}
	r.p.stats.MaxPacketsFromHost = max(r.p.stats.MaxPacketsFromHost, len(frames))
	return frames, violation || size > cfg.MaxTransferSize || pr.Err() != nil || len(frames) == 0 ||
		len(frames) > cfg.MaxPacketsPerTransfer
}
