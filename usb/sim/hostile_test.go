package sim

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/rndis-netd/rndis-netd/ncm"
	"github.com/rndis-netd/rndis-netd/usb"
)

func TestFaultListsArePerProtocol(t *testing.T) {
	if !slices.Equal(AdditiveFaultsFor(usb.ProtocolRNDIS), AdditiveFaults) || !slices.Equal(DestructiveFaultsFor(usb.ProtocolRNDIS), DestructiveFaults) {
		t.Error("the RNDIS lists are not AdditiveFaults and DestructiveFaults")
	}
	for _, p := range []usb.Protocol{usb.ProtocolRNDIS, usb.ProtocolNCM, usb.ProtocolECM} {
		for _, f := range AdditiveFaultsFor(p) {
			if !appliesTo(f, p) || pipeOf(f) == pipeReplace || slices.Contains(DestructiveFaultsFor(p), f) {
				t.Errorf("%s: additive fault %q", p, f)
			}
		}
		for _, f := range DestructiveFaultsFor(p) {
			if !appliesTo(f, p) || pipeOf(f) != pipeReplace {
				t.Errorf("%s: destructive fault %q", p, f)
			}
		}
	}
	AdditiveFaultsFor(usb.ProtocolNCM)[0] = "changed"
	if AdditiveFaultsFor(usb.ProtocolNCM)[0] == "changed" {
		t.Error("AdditiveFaultsFor returns the list itself")
	}
	if AdditiveFaultsFor("token ring") != nil {
		t.Error("faults for a protocol that does not exist")
	}
}

// caughtNTB reports whether a host holding to NCM's rules refuses an NTB
// transfer: longer than the input size it negotiated (and the short-packet
// rule's byte), malformed as ncm.Reader reads it, or carrying no datagram.
func caughtNTB(transfer []byte, format ncm.Format, inputSize int) bool {
	if len(transfer) > inputSize+1 {
		return true
	}
	r := ncm.NewReader(transfer, format)
	n := 0
	for _, ok := r.Next(); ok; _, ok = r.Next() {
		n++
	}
	return r.Err() != nil || n == 0
}

// caughtECM: a transfer shorter than an Ethernet header, or longer than
// wMaxSegmentSize and the short-packet rule's byte.
func caughtECM(transfer []byte, maxSegment int) bool {
	return len(transfer) < 14 || len(transfer) > maxSegment+1
}

func bulkFaults(p usb.Protocol) []Fault {
	var out []Fault
	for _, f := range AdditiveFaultsFor(p) {
		if pipeOf(f) == pipeBulk {
			out = append(out, f)
		}
	}
	return out
}

// Every NCM bulk fault, in either format, is an NTB that ncm.Reader ends
// with an error; the two a Reader cannot see are caught by what a host
// does besides: it refuses a transfer longer than it negotiated, and
// counts an NTB that carries no datagram.
func TestEveryNTBFaultIsCaughtByTheReader(t *testing.T) {
	h := NewHostile(nil, 1)
	for _, format := range []ncm.Format{ncm.NTB16, ncm.NTB32} {
		for _, f := range bulkFaults(usb.ProtocolNCM) {
			for range 500 {
				b, ok := h.ntbFault(f, format, 16384, hostRxBuffer)
				if !ok {
					t.Fatalf("%v %s: not built", format, f)
				}
				r := ncm.NewReader(b, format)
				n := 0
				for _, ok := r.Next(); ok; _, ok = r.Next() {
					n++
				}
				switch f {
				case NTBZeroLengthDatagram:
					if n != 0 || r.Err() != nil {
						t.Fatalf("%v %s %x: %d datagrams, %v; want none and no error", format, f, b, n, r.Err())
					}
				case NTBTooLong:
					if len(b) <= 16384+1 || len(b) > hostRxBuffer || r.Err() != nil {
						t.Fatalf("%v %s: %d bytes, %v; want a well-formed NTB over the input size", format, f, len(b), r.Err())
					}
				case BulkEmpty:
					if len(b) != 0 || r.Err() == nil {
						t.Fatalf("%v %s: %d bytes, %v", format, f, len(b), r.Err())
					}
				default:
					if r.Err() == nil {
						t.Fatalf("%v %s %x: the Reader found nothing wrong (%d datagrams)", format, f, b, n)
					}
				}
			}
		}
	}
}

// hostileOpen opens a phone of cfg through a Hostile device that behaves.
func hostileOpen(t *testing.T, cfg Config) (*Phone, *Hostile, *cdcHost) {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	hostile := NewHostile(p, 7)
	tr, err := hostile.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return p, hostile, newCDCHost(t, tr)
}

// hostileHost is hostileOpen's phone started, with what the start left on
// the interrupt endpoint read.
func hostileHost(t *testing.T, cfg Config) (*Phone, *Hostile, *cdcHost) {
	t.Helper()
	p, hostile, h := hostileOpen(t, cfg)
	h.start()
	drain(h)
	return p, hostile, h
}

// Through a Hostile device each bulk fault of the phone's protocol reaches
// the host, which tells every one from the genuine transfers: as many
// caught as injected, no genuine transfer refused.
func TestHostileBulkFaultsAreEachCaught(t *testing.T) {
	for _, cfg := range cdcPresets() {
		for _, f := range bulkFaults(cfg.Protocol) {
			t.Run(cfg.Name+"/"+string(f), func(t *testing.T) {
				_, hostile, h := hostileHost(t, cfg)
				hostile.Inject(f)
				caught, genuine := 0, 0
				buf := make([]byte, hostRxBuffer)
				for caught < 10 || genuine < 2 {
					h.send(arpRequest(cfg)) // so that a genuine transfer is there to read
					n, err := readBulk(h.tr, h.ctx, buf)
					if err != nil {
						t.Fatal(err)
					}
					var bad bool
					if cfg.Protocol == usb.ProtocolNCM {
						bad = caughtNTB(buf[:n], ncm.NTB16, h.inputSize)
					} else {
						bad = caughtECM(buf[:n], h.fn.MaxSegmentSize)
					}
					if bad {
						caught++
					} else {
						genuine++
					}
				}
				if got := hostile.Injected()[f]; got != uint64(caught) {
					t.Errorf("injected %d, the host caught %d", got, caught)
				}
			})
		}
	}
}

// Each notification fault is one error of the host's
// ncm.NotificationReader, and the genuine notifications around them (the
// media going down and up, on an 8-byte endpoint split in two) still read
// right.
func TestHostileNotificationFaultsAreEachCaught(t *testing.T) {
	eight := Pixel()
	eight.Name, eight.NotifyMaxPacket = "pixel-8-byte-interrupt", 8
	for _, cfg := range append(cdcPresets(), eight) {
		for _, f := range []Fault{NotifyGarbage, SpeedWithoutData} {
			t.Run(cfg.Name+"/"+string(f), func(t *testing.T) {
				p, hostile, h := hostileHost(t, cfg)
				hostile.Inject(f)
				errs, media := 0, true
				for i := 0; errs < 20; i++ {
					if i%8 == 0 {
						media = !media
						p.SetMedia(media)
					}
					b, err := h.tr.WaitNotification(h.ctx)
					if err != nil {
						t.Fatal(err)
					}
					h.notes.Feed(b)
					for n, ok := h.notes.Next(); ok; n, ok = h.notes.Next() {
						switch n.Code {
						case ncm.NotifyNetworkConnection:
						case ncm.NotifyConnectionSpeedChange:
							if n.DownlinkBitRate != gadgetBitRate {
								t.Fatalf("a speed change of %d bit/s: garbage taken for its data", n.DownlinkBitRate)
							}
						default:
							t.Fatalf("garbage passed for %v", n)
						}
					}
					if h.notes.Err() != nil {
						errs++
					}
				}
				if got := hostile.Injected()[f]; got != uint64(errs) {
					t.Errorf("injected %d, the host's reader caught %d", got, errs)
				}
				// The genuine stream is intact: the medium's state comes through.
				hostile.Inject()
				p.SetMedia(media)
				for n := h.notification(); n.Code != ncm.NotifyNetworkConnection || n.Connected() != media; n = h.notification() {
				}
			})
		}
	}
}

// Each destructive fault stops the host's start; once the device behaves,
// the start succeeds and frames flow.
func TestHostileDestructiveFaultsStopTheStart(t *testing.T) {
	for _, cfg := range cdcPresets() {
		for _, f := range DestructiveFaultsFor(cfg.Protocol) {
			t.Run(cfg.Name+"/"+string(f), func(t *testing.T) {
				_, hostile, h := hostileOpen(t, cfg)
				hostile.Inject(f)
				if err := h.begin(); err == nil {
					t.Fatal("the start succeeded")
				}
				if hostile.Injected()[f] == 0 {
					t.Error("not counted")
				}
				hostile.Inject()
				if err := h.begin(); err != nil {
					t.Fatalf("behaving again: %v", err)
				}
				h.send(arpRequest(cfg))
				h.receiveFrame(isARPReply(cfg, hostAddr(cfg)))
			})
		}
	}
}

// A hostile device injects only the faults of its transport's protocol: an
// RNDIS fault on an NCM phone does nothing.
func TestHostileLeavesOtherProtocolsFaultsAlone(t *testing.T) {
	_, hostile, h := hostileHost(t, Pixel())
	hostile.Inject(BulkOverlap, ControlGarbage, AbsurdLimits)
	h.send(arpRequest(Pixel()))
	h.receiveFrame(isARPReply(Pixel(), hostAddr(Pixel())))
	ctx, cancel := context.WithTimeout(h.ctx, 10*time.Millisecond)
	defer cancel()
	if b, err := h.tr.WaitNotification(ctx); err == nil {
		t.Errorf("notified %x", b)
	}
	if n := hostile.Total(); n != 0 {
		t.Errorf("%d faults injected", n)
	}
}

// An NCM or ECM device may stay quiet for good: faults enabled while the
// host already waits on the interrupt endpoint still reach it.
func TestHostileNotifyFaultsReachAHostAlreadyWaiting(t *testing.T) {
	for _, cfg := range cdcPresets() {
		t.Run(cfg.Name, func(t *testing.T) {
			_, hostile, h := hostileHost(t, cfg)
			got := make(chan []byte)
			go func() {
				b, err := h.tr.WaitNotification(h.ctx)
				if err != nil {
					t.Error(err)
				}
				got <- b
			}()
			hostile.Inject(NotifyGarbage)
			b := <-got
			var r ncm.NotificationReader
			r.Feed(b)
			if _, ok := r.Next(); ok || r.Err() == nil {
				t.Errorf("%x: not garbage", b)
			}
			if hostile.Injected()[NotifyGarbage] != 1 {
				t.Errorf("injected %v", hostile.Injected())
			}
		})
	}
}
