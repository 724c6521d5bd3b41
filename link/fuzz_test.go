package link

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/rndis-netd/rndis-netd/ncm"
	"github.com/rndis-netd/rndis-netd/rndis"
	"github.com/rndis-netd/rndis-netd/usb"
)

// A script is what a device says, in order: records of one byte of kind,
// two bytes of length (little-endian) and the bytes.
const (
	recControl = iota // a control response; answer sets its RequestId to the host's last
	recBulk           // a bulk-IN transfer
	recNotify         // an interrupt notification
	recKinds
	answer = 0x80
)

type record struct {
	kind   int
	answer bool
	data   []byte
}

func parseScript(b []byte) []record {
	var out []record
	for len(b) >= 3 {
		k, n := b[0], int(binary.LittleEndian.Uint16(b[1:]))
		b = b[3:]
		n = min(n, len(b))
		out = append(out, record{kind: int(k&^answer) % recKinds, answer: k&answer != 0, data: b[:n]})
		b = b[n:]
	}
	return out
}

func appendRecord(script []byte, kind int, data []byte) []byte {
	script = append(script, byte(kind))
	script = binary.LittleEndian.AppendUint16(script, uint16(len(data)))
	return append(script, data...)
}

// scriptDevice plays a script to the host, once; then it is gone. Its
// function speaks protocol (RNDIS when empty).
type scriptDevice struct {
	protocol usb.Protocol
	mu       sync.Mutex
	recs     []record
	lastRID  uint32
	opened   bool
	closed   bool
	changed  chan struct{} // a record was consumed
}

func (d *scriptDevice) Open(context.Context) (usb.Transport, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.opened {
		return nil, usb.ErrNoDevice
	}
	d.opened = true
	return d, nil
}

// next waits until the next record is of kind and takes it; errGone when
// the script is over.
func (d *scriptDevice) next(ctx context.Context, kind int, wait bool) (record, bool, error) {
	for {
		d.mu.Lock()
		if len(d.recs) == 0 {
			d.mu.Unlock()
			return record{}, false, usb.ErrDeviceGone
		}
		if r := d.recs[0]; r.kind == kind {
			d.recs = d.recs[1:]
			if r.answer && kind == recControl && len(r.data) >= 12 {
				r.data = append([]byte(nil), r.data...)
				binary.LittleEndian.PutUint32(r.data[8:], d.lastRID)
			}
			d.mu.Unlock()
			select {
			case d.changed <- struct{}{}:
			default:
			}
			return r, true, nil
		}
		d.mu.Unlock()
		if !wait {
			return record{}, false, nil
		}
		select {
		case <-ctx.Done():
			return record{}, false, ctx.Err()
		case <-d.changed:
		case <-time.After(time.Millisecond):
		}
	}
}

// Control takes encapsulated commands and answers GET_ENCAPSULATED_RESPONSE
// with the script's next control record; it stalls anything else.
func (d *scriptDevice) Control(ctx context.Context, s usb.Setup, buf []byte) (int, error) {
	if s.In() {
		r, ok, err := d.next(ctx, recControl, false)
		if !ok {
			return 0, err
		}
		return copy(buf, r.data), nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.recs) == 0 {
		return 0, usb.ErrDeviceGone
	}
	if m, err := rndis.Parse(buf); err == nil {
		if rid, ok := rndis.RequestID(m); ok {
			d.lastRID = rid
		}
	}
	return len(buf), nil
}

func (d *scriptDevice) SetAlternate(ctx context.Context, alt int) error { return nil }

// WaitNotification plays the script's notifications; an RNDIS device also
// announces each control response with RESPONSE_AVAILABLE.
func (d *scriptDevice) WaitNotification(ctx context.Context) ([]byte, error) {
	d.mu.Lock()
	control := len(d.recs) > 0 && d.recs[0].kind == recControl && d.rndis()
	d.mu.Unlock()
	if control {
		return rndis.ResponseAvailableNotification(), nil
	}
	r, _, err := d.next(ctx, recNotify, true)
	return r.data, err
}

func (d *scriptDevice) ReadBulk(ctx context.Context, buf []byte, sizes []int) (int, error) {
	r, _, err := d.next(ctx, recBulk, true)
	if err != nil {
		return 0, err
	}
	sizes[0] = copy(buf, r.data)
	return 1, nil
}

func (d *scriptDevice) WriteBulk(ctx context.Context, p []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.recs) == 0 {
		return usb.ErrDeviceGone
	}
	return nil
}

func (d *scriptDevice) rndis() bool { return d.protocol == "" || d.protocol == usb.ProtocolRNDIS }

func (d *scriptDevice) Info() usb.Info {
	fn := usb.Function{Protocol: usb.ProtocolRNDIS, BulkOut: usb.Endpoint{Address: 0x01, Attributes: 2, MaxPacketSize: 512}}
	if !d.rndis() {
		fn.Protocol, fn.DataAlt, fn.MACAddressIndex, fn.MaxSegmentSize = d.protocol, 1, 4, 1514
		fn.NCMCapabilities = uint8(ncm.CapEthernetFilter | ncm.CapCRCMode)
	}
	return usb.Info{VendorID: 0x1234, ProductID: 0x5678, Function: fn}
}
func (d *scriptDevice) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	return nil
}

// genuineScript is a device initializing, carrying a frame, dropping and
// regaining its medium, halting, and initializing again.
func genuineScript() []byte {
	var s []byte
	ctl := func(m rndis.Message) { s = appendRecord(s, recControl|answer, rndis.Marshal(m)) }
	u32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	initialize := func() {
		ctl(rndis.InitializeComplete{MajorVersion: 1, DeviceFlags: rndis.DeviceFlagConnectionless, Medium: rndis.Medium8023,
			MaxPacketsPerTransfer: 5, MaxTransferSize: 9216, PacketAlignmentFactor: 3})
		ctl(rndis.QueryComplete{Buffer: append(u32(uint32(rndis.OIDGenSupportedList)), u32(uint32(rndis.OIDGenPhysicalMedium))...)})
		ctl(rndis.QueryComplete{Buffer: []byte{0x02, 0x52, 0x4e, 0x44, 0x49, 0x53}})
		ctl(rndis.QueryComplete{Buffer: u32(1500)})
		ctl(rndis.QueryComplete{Buffer: u32(4250000)})
		ctl(rndis.QueryComplete{Buffer: u32(rndis.MediaStateConnected)})
		ctl(rndis.QueryComplete{Buffer: u32(0)})
		ctl(rndis.SetComplete{})
	}
	initialize()
	arp := make([]byte, 42)
	copy(arp, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x50, 0x48, 0x4f, 0x4e, 0x45, 0x08, 0x06})
	s = appendRecord(s, recBulk, append(rndis.Marshal(rndis.Packet{Data: arp}), rndis.Marshal(rndis.Packet{Data: arp})...))
	s = appendRecord(s, recNotify, rndis.ResponseAvailableNotification())
	s = appendRecord(s, recControl, rndis.Marshal(rndis.IndicateStatus{Status: rndis.StatusMediaDisconnect}))
	s = appendRecord(s, recControl, rndis.Marshal(rndis.IndicateStatus{Status: rndis.StatusMediaConnect}))
	s = appendRecord(s, recControl, rndis.Marshal(rndis.KeepAlive{RequestID: 7}))
	s = appendRecord(s, recControl, rndis.Marshal(rndis.Halt{RequestID: 8}))
	initialize()
	return s
}

// FuzzSession drives the host session with arbitrary device replies: it
// must never panic or hang, and a link it brings up has sane limits.
func FuzzSession(f *testing.F) {
	f.Add(genuineScript())
	f.Add(genuineScript()[:200])
	f.Fuzz(fuzzOne)
}

func fuzzOne(t *testing.T, script []byte) {
	playScript(t, usb.ProtocolRNDIS, script, func(info DeviceInfo) {
		if err := info.RNDIS.Limits.Validate(); err != nil {
			t.Fatalf("link up with invalid limits %+v: %v", info.RNDIS.Limits, err)
		}
		if info.MTU+ethernetHeaderBytes > info.RNDIS.Limits.MaxFrame() {
			t.Fatalf("link up with MTU %d, limits %+v", info.MTU, info.RNDIS.Limits)
		}
	})
}

// playScript opens a link on a device of protocol playing script, checks
// what a link that came up learned with check, and carries traffic until the
// script is over. It must never panic or hang.
func playScript(t *testing.T, protocol usb.Protocol, script []byte, check func(DeviceInfo)) {
	// A hang is a failure the fuzzer can record only as a panic.
	watchdog := time.AfterFunc(10*time.Second, func() {
		buf := make([]byte, 1<<20)
		panic(fmt.Sprintf("the session hangs on this script:\n%s", buf[:runtime.Stack(buf, true)]))
	})
	defer watchdog.Stop()
	dev := &scriptDevice{protocol: protocol, recs: parseScript(script), changed: make(chan struct{}, 1)}
	opts := Options{ControlTimeout: 5 * time.Millisecond, PollInterval: time.Millisecond,
		KeepAliveInterval: 50 * time.Millisecond, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := Open(ctx, dev, opts)
	if err != nil {
		return
	}
	defer l.Close()
	info := l.Info()
	if info.MTU < minMTU || len(info.MAC) != 6 || info.Protocol != protocol {
		t.Fatalf("link up with MTU %d, MAC %v, protocol %q", info.MTU, info.MAC, info.Protocol)
	}
	check(info)
	s := newStack()
	defer func() { s.Close(); s.Wait() }()
	if err := s.CreateNIC(hostNIC, l.LinkEndpoint()); err != nil {
		t.Fatal(fmt.Sprint(err))
	}
	l.BindNIC(s, hostNIC)
	// Play the rest of the script, until the device is gone.
	for deadline := time.Now().Add(200 * time.Millisecond); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		dev.mu.Lock()
		over := len(dev.recs) == 0 || dev.closed
		dev.mu.Unlock()
		if over {
			break
		}
	}
}
