package link

import (
	"context"
	"fmt"
	"time"

	"github.com/rndis-netd/rndis-netd/ncm"
	"github.com/rndis-netd/rndis-netd/usb"
)

// NCMInfo is what the host negotiated with a CDC-NCM function.
type NCMInfo struct {
	Parameters ncm.NTBParameters // the device's GET_NTB_PARAMETERS, as it answered
	Format     ncm.Format        // of the blocks both ways
	InputSize  int               // the largest block the device sends (SET_NTB_INPUT_SIZE, or its own maximum)
	Out        ncm.Limits        // how the host packs the blocks it sends
}

// The host's side of NCM's limits: blocks of 16 KiB each way, as Linux's
// cdc_ncm chooses by default and Linux's f_ncm (Android's NCM) offers, and
// what one bulk-IN read holds (rxBufferSize).
const ncmBlockSize = ncm.DefaultNTBSize

// Some firmwares need a pause between the NTB requests and the switch to
// the data interface's setting with the bulk pair (Linux's cdc_ncm sleeps
// 10-20 ms there, found on a Sierra MC7455).
const ncmSettle = 10 * time.Millisecond

// negotiate runs NCM's requests at alternate setting 0 in Linux's order:
// the reset toggle of the data interface, GET_NTB_PARAMETERS, SET_CRC_MODE
// (none appended) where the device offers CRCs, SET_NTB_FORMAT (NTB16)
// where it offers NTB32, and SET_NTB_INPUT_SIZE where its blocks would be
// larger than the host reads. GET/SET_MAX_DATAGRAM_SIZE are left alone:
// wMaxSegmentSize already bounds the MTU, and Linux's f_ncm stalls them.
func (c *cdcFunction) negotiate(ctx context.Context, info *DeviceInfo) (framing, error) {
	t, fn := c.s.t, c.s.t.Info().Function
	caps := ncm.NetworkCapabilities(fn.NCMCapabilities)
	// Some devices reset their function only when set to the data setting
	// first; its failure does not matter (Linux ignores it too).
	t.SetAlternate(ctx, fn.DataAlt)
	if err := t.SetAlternate(ctx, 0); err != nil {
		return nil, fmt.Errorf("data interface %d to alternate setting 0: %w", fn.DataIface, err)
	}
	buf := make([]byte, ncm.NTBParametersSize)
	n, err := c.control(ctx, usb.ClassIn(ncm.RequestGetNTBParameters, 0, c.iface()), buf)
	if err != nil {
		return nil, fmt.Errorf("GET_NTB_PARAMETERS: %w", err)
	}
	params, err := ncm.ParseNTBParameters(buf[:n])
	if err != nil {
		return nil, fmt.Errorf("GET_NTB_PARAMETERS: %w", err)
	}
	ni := &NCMInfo{Parameters: params, Format: ncm.NTB16}
	if caps&ncm.CapCRCMode != 0 {
		c.optional(ctx, "SET_CRC_MODE", usb.ClassOut(ncm.RequestSetCRCMode, ncm.CRCNotAppended, c.iface()), nil)
	}
	if params.Supports(ncm.NTB32) {
		c.optional(ctx, "SET_NTB_FORMAT", usb.ClassOut(ncm.RequestSetNTBFormat, uint16(ncm.NTB16), c.iface()), nil)
	}
	ni.InputSize = int(params.InMaxSize)
	if want := params.InputSize(ni.Format, ncmBlockSize); want != ni.InputSize {
		data := ncm.NTBInputSize{MaxSize: uint32(want)}.Marshal(caps)
		if _, err := c.control(ctx, usb.ClassOut(ncm.RequestSetNTBInputSize, 0, c.iface()), data); err == nil {
			ni.InputSize = want
		} else if isGone(err) {
			return nil, err
		} else if ni.InputSize > ncmBlockSize {
			return nil, fmt.Errorf("SET_NTB_INPUT_SIZE %d refused (%w): the device's blocks of %d bytes exceed what the host reads", want, err, ni.InputSize)
		}
	}
	if ni.Out, err = params.OutLimits(ni.Format, ncmBlockSize); err != nil {
		return nil, err
	}
	info.MTU = min(info.MTU, ni.Out.MaxFrame(ni.Format)-ethernetHeaderBytes)
	info.NCM = ni
	if !c.l.sleep(ncmSettle) {
		return nil, context.Canceled
	}
	return ncmFraming{format: ni.Format, out: ni.Out, inputSize: ni.InputSize, maxPacket: fn.BulkOut.MaxPacketSize}, nil
}

// optional makes a request whose refusal the host can live with, as Linux
// does; only a device that is gone ends the start.
func (c *cdcFunction) optional(ctx context.Context, name string, s usb.Setup, data []byte) error {
	_, err := c.control(ctx, s, data)
	if err != nil && !isGone(err) {
		c.l.log.Debug(name+" refused", "err", err)
		return nil
	}
	return err
}

// ncmFraming: datagrams in NTBs, many per transfer each way.
type ncmFraming struct {
	format    ncm.Format
	out       ncm.Limits
	inputSize int // the largest block the device may send
	maxPacket int
}

func (f ncmFraming) newWriter() frameWriter {
	w, err := ncm.NewWriter(make([]byte, 0, f.out.MaxSize+1), f.out, f.format) // +1: the short-packet byte
	if err != nil {
		// negotiate took f.out from OutLimits, which validated them.
		panic(fmt.Sprintf("link: NCM limits %+v: %v", f.out, err))
	}
	return &ncmWriter{w: w, f: f}
}

func (f ncmFraming) newReader() frameReader {
	return &ncmReader{format: f.format, max: f.inputSize}
}

type ncmWriter struct {
	w *ncm.Writer
	f ncmFraming
}

func (w *ncmWriter) reserve(n int) ([]byte, bool, error) {
	dst, ok, err := w.w.Reserve(n)
	if err != nil {
		return nil, false, errFrameTooLarge{n, w.f.out.MaxFrame(w.f.format)}
	}
	return dst, ok, nil
}

func (w *ncmWriter) count() int { return w.w.Count() }

// transfer ends the block with one zero byte, outside wBlockLength, when it
// fills whole packets and is shorter than the largest block the device
// reads (whose transfer ends there anyway).
func (w *ncmWriter) transfer() []byte {
	b := w.w.Finish()
	if len(b) < w.f.out.MaxSize {
		b = padShortPacket(b, w.f.maxPacket)
	}
	return b
}

func (w *ncmWriter) reset() { w.w.Reset() }

// ncmReader walks one block per transfer, as Linux's cdc_ncm does, and
// drops a transfer longer than the device may send whole: a device that
// breaks the negotiated size is not trusted with the rest (the
// short-packet rule's byte after the block is allowed).
type ncmReader struct {
	format  ncm.Format
	max     int
	r       ncm.Reader
	tooLong error
}

func (r *ncmReader) reset(transfer []byte) {
	r.tooLong = nil
	if len(transfer) > r.max+1 {
		r.tooLong = fmt.Errorf("a transfer of %d bytes, longer than the %d-byte blocks negotiated", len(transfer), r.max)
		return
	}
	r.r.Reset(transfer, r.format)
}

func (r *ncmReader) next() ([]byte, bool) {
	if r.tooLong != nil {
		return nil, false
	}
	return r.r.Next()
}

func (r *ncmReader) offset() int { return r.r.Offset() }

func (r *ncmReader) err() error {
	if r.tooLong != nil {
		return r.tooLong
	}
	return r.r.Err()
}
