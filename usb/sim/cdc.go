package sim

import (
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/rndis-netd/rndis-netd/internal/framebuf"
	"github.com/rndis-netd/rndis-netd/ncm"
	"github.com/rndis-netd/rndis-netd/usb"
)

// The interfaces and endpoints of the phone's CDC function, numbered as
// Linux's f_ncm and f_ecm number them in a configuration of their own.
const (
	cdcControlIface = 0
	cdcDataIface    = 1
	cdcDataAlt      = 1 // the data interface's setting with the bulk pair
)

// defaultFilter is the packet filter of Linux's u_ether (DEFAULT_FILTER):
// everything. f_ncm and f_ecm restore it whenever the host selects the
// data interface's alternate setting 1.
const defaultFilter = ncm.FilterPromiscuous | ncm.FilterAllMulticast | ncm.FilterDirected | ncm.FilterBroadcast

// cdcFunction is what the phone's NCM and ECM functions share, as Linux's
// f_ncm and f_ecm share it: the data interface's alternate settings, the
// packet filter, and the NETWORK_CONNECTION and CONNECTION_SPEED_CHANGE
// notifications (notify.go).
type cdcFunction struct {
	p      *Phone
	class  usb.Class
	active bool // at alternate setting 1: f_ncm's netdev, f_ecm's enabled endpoints
	// isOpen is what NETWORK_CONNECTION reports: f_ncm's and f_ecm's
	// is_open. It follows the phone's network only while the data interface
	// is active, and is set from it whenever the interface becomes active;
	// neither leaving the setting nor an unplug clears it. So the first
	// plug reports "disconnected" until the host selects setting 1, and a
	// later one "connected" even at setting 0, as the gadgets do.
	isOpen bool
	filter ncm.PacketFilter
	// onDisconnect resets what the host negotiated when the data interface
	// leaves setting 1 for any setting (NCM); nil for ECM.
	onDisconnect func()
	notes        notifier
}

func newCDC(p *Phone, class usb.Class, order [2]ncm.NotificationCode) cdcFunction {
	return cdcFunction{p: p, class: class, filter: defaultFilter, notes: notifier{order: order, next: len(order)}}
}

// descriptor is the function as Linux's f_ncm and f_ecm describe it: the
// interrupt endpoint 0x81 on the control interface, the bulk pair 0x82 and
// 0x01 at the data interface's setting 1, and iMACAddress.
func (c *cdcFunction) descriptor() usb.Function {
	cfg := c.p.cfg
	return usb.Function{
		Protocol: c.protocol(), Config: 1, Control: c.class,
		ControlIface: cdcControlIface, DataIface: cdcDataIface, DataAlt: cdcDataAlt,
		Notify:          usb.Endpoint{Address: 0x81, Attributes: 3, MaxPacketSize: notifyMaxPacket(cfg, 16)},
		BulkIn:          usb.Endpoint{Address: 0x82, Attributes: 2, MaxPacketSize: cfg.BulkMaxPacket},
		BulkOut:         usb.Endpoint{Address: 0x01, Attributes: 2, MaxPacketSize: cfg.BulkMaxPacket},
		MACAddressIndex: stringMACAddress,
		MaxSegmentSize:  maxSegmentSize(cfg),
		NCMCapabilities: uint8(cfg.NCMCapabilities),
	}
}

func (c *cdcFunction) protocol() usb.Protocol {
	if c.class == usb.NCMClass {
		return usb.ProtocolNCM
	}
	return usb.ProtocolECM
}

// maxSegmentSize is wMaxSegmentSize: the configuration's, else the MTU's
// frame.
func maxSegmentSize(cfg Config) int {
	if cfg.MaxSegmentSize > 0 {
		return cfg.MaxSegmentSize
	}
	return cfg.MTU + 14
}

// configure is SET_CONFIGURATION: the gadget resets its notification
// endpoint (what was in flight is gone) and puts the data interface at
// setting 0, which sends the notifications.
func (c *cdcFunction) configure() {
	c.notes.disable()
	c.selectAlt(0)
}

// release: the host closed the device, whose interfaces usbfs returns to
// setting 0 on the way; or it was unplugged, which only disconnects the
// data path (f_ncm's ncm_disable keeps what was negotiated).
func (c *cdcFunction) release(unplugged bool) {
	if !unplugged {
		c.selectAlt(0)
	}
	if c.active {
		c.disconnect()
	}
	c.p.stats.DataAlt = 0
	c.notes.disable()
}

// setAlternate is SET_INTERFACE for the data interface: settings 0 and 1.
func (c *cdcFunction) setAlternate(alt int) error {
	if c.p.hungLocked() {
		return errNoAnswer
	}
	if alt != 0 && alt != cdcDataAlt {
		return c.p.stall("data interface has no alternate setting %d", alt)
	}
	c.selectAlt(alt)
	return nil
}

// selectAlt selects a setting as Linux's ncm_set_alt and ecm_set_alt do:
// leaving an active setting disconnects the data path (and for NCM resets
// what was negotiated), even for setting 1 again; setting 1 restores the
// default filter and connects; every selection notifies.
func (c *cdcFunction) selectAlt(alt int) {
	if c.active {
		c.disconnect()
		if c.onDisconnect != nil {
			c.onDisconnect()
		}
	}
	if alt == cdcDataAlt {
		c.setFilter(defaultFilter)
		c.connect()
	}
	c.p.stats.DataAlt = alt
	c.notify()
}

// connect is Linux's gether_connect: the data path starts, and the function
// learns whether the phone's network is up (its open or close callback,
// each of which notifies).
func (c *cdcFunction) connect() {
	c.active = true
	c.isOpen = c.p.media
	c.notify()
	if c.isOpen {
		c.p.advertiseSoon()
	}
}

// disconnect is Linux's gether_disconnect: what was queued for the host is
// lost with the requests.
func (c *cdcFunction) disconnect() {
	c.active = false
	c.p.dropQueuedLocked()
}

// setMedia: the phone's network interface went down or came up. Linux's
// u_ether tells the function only while the data path is connected.
func (c *cdcFunction) setMedia(connected bool) {
	if !c.active {
		return
	}
	c.isOpen = connected
	c.notify()
	if connected {
		c.p.advertiseSoon()
	}
}

func (c *cdcFunction) dataReady() bool { return c.active }

// setFilter sets the packet filter.
func (c *cdcFunction) setFilter(f ncm.PacketFilter) {
	c.filter = f
	c.p.stats.PacketFilter = uint32(f)
}

// filterRequest is SET_ETHERNET_PACKET_FILTER: wValue the filter, no data.
func (c *cdcFunction) filterRequest(s usb.Setup, data []byte) (int, error) {
	if len(data) != 0 {
		return 0, c.p.stall("SET_ETHERNET_PACKET_FILTER with %d bytes of data", len(data))
	}
	c.setFilter(ncm.PacketFilter(s.Value))
	if s.Value != 0 {
		c.p.advertiseSoon()
	}
	return 0, nil
}

// classRequest reports whether s is a class request of the control
// interface, the only kind the gadgets serve: Linux's composite layer
// routes an interface request by wIndex, and the function stalls one of
// another interface.
func classRequest(s usb.Setup) bool {
	return s.Index == cdcControlIface && (s == usb.ClassOut(s.Request, s.Value, cdcControlIface) || s == usb.ClassIn(s.Request, s.Value, cdcControlIface))
}

// passes applies the filter as Linux's u_ether does to what it sends:
// unless promiscuous, broadcasts need the broadcast bit and other
// multicasts the all-multicast bit; unicasts always pass.
func (c *cdcFunction) passes(pkt *stack.PacketBuffer) bool {
	if c.filter&ncm.FilterPromiscuous != 0 {
		return true
	}
	dst, ok := destination(pkt)
	if !ok || dst[0]&1 == 0 {
		return true
	}
	if dst == [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff} {
		return c.filter&ncm.FilterBroadcast != 0
	}
	return c.filter&ncm.FilterAllMulticast != 0
}

// destination returns the destination address of the frame pkt holds,
// whether its stack pushed the Ethernet header or it came whole (the
// phone's router advertisements).
func destination(pkt *stack.PacketBuffer) (dst [6]byte, ok bool) {
	return dst, framebuf.CopyTo(dst[:], pkt) == len(dst)
}
