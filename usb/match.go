package usb

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Protocol is the protocol a tether's network function speaks.
type Protocol string

// The protocols of USB tethers.
const (
	ProtocolAuto  Protocol = "auto" // the best the device offers: see Preference
	ProtocolRNDIS Protocol = "rndis"
	ProtocolNCM   Protocol = "ncm" // CDC Network Control Model
	ProtocolECM   Protocol = "ecm" // CDC Ethernet Control Model
)

// Preference is the order in which ProtocolAuto picks among the functions a
// device offers. NCM first: it aggregates frames both ways within limits the
// host and device negotiate, and it is the protocol Linux and Android keep
// (Pixel 6 and later tether only over NCM; RNDIS drivers are on their way out
// of Linux). RNDIS next: what most Android phones offer, and it aggregates
// too. ECM last: one frame per transfer each way, the slowest; devices that
// offer it beside another protocol (Linux's g_ether, QEMU's usb-net) do
// better with the other.
var Preference = []Protocol{ProtocolNCM, ProtocolRNDIS, ProtocolECM}

// ParseProtocol reads "auto", "ncm", "rndis" or "ecm"; "" is auto.
func ParseProtocol(s string) (Protocol, error) {
	switch p := Protocol(strings.ToLower(s)); p {
	case "", ProtocolAuto:
		return ProtocolAuto, nil
	case ProtocolRNDIS, ProtocolNCM, ProtocolECM:
		return p, nil
	}
	return "", fmt.Errorf("usb: protocol %q: want auto, ncm, rndis or ecm", s)
}

// RNDISClasses are the class triples of RNDIS control interfaces in the wild.
var RNDISClasses = []Class{
	{0x02, 0x02, 0xFF}, // CDC ACM with vendor protocol: Linux gadget, most Android phones
	{0xE0, 0x01, 0x03}, // wireless controller, RF, RNDIS: stock Android
	{0xEF, 0x04, 0x01}, // misc, RNDIS over Ethernet: newer Qualcomm phones, Windows' rndiscmp.inf
	{0xEF, 0x01, 0x01}, // misc, sync, ActiveSync: Windows Mobile
}

// The class triples of CDC-NCM and CDC-ECM control interfaces.
var (
	NCMClass = Class{0x02, 0x0D, 0x00}
	ECMClass = Class{0x02, 0x06, 0x00}
)

// TetherClasses returns the class triples of every tether's control
// interface: RNDIS's, then NCM's and ECM's.
func TetherClasses() []Class { return append(slices.Clone(RNDISClasses), NCMClass, ECMClass) }

// ProtocolOf returns the protocol whose control interface has class c.
func ProtocolOf(c Class) (Protocol, bool) {
	switch {
	case slices.Contains(RNDISClasses, c):
		return ProtocolRNDIS, true
	case c == NCMClass:
		return ProtocolNCM, true
	case c == ECMClass:
		return ProtocolECM, true
	}
	return "", false
}

// Function locates a network function inside a configuration: the control
// interface with its notification endpoint and the data interface with its
// bulk pair.
type Function struct {
	Protocol     Protocol
	Config       int // bConfigurationValue
	Control      Class
	ControlIface int
	DataIface    int
	DataAlt      int // the alternate setting of the data interface that has the bulk pair

	Notify        Endpoint // interrupt IN of the control interface
	BulkIn        Endpoint
	BulkOut       Endpoint
	UnionFallback bool // the CDC Union was missing or pointed nowhere

	// From the CDC Ethernet Networking functional descriptor (NCM, ECM).
	MACAddressIndex int // iMACAddress: the string descriptor holding the device's MAC; 0 when absent
	MaxSegmentSize  int // wMaxSegmentSize: the largest Ethernet frame; 0 when absent
	// From the NCM functional descriptor.
	NCMCapabilities uint8 // bmNetworkCapabilities
}

func (f Function) String() string {
	return fmt.Sprintf("%s %v (configuration %d, control %d, data %d alt %d)", f.Protocol, f.Control, f.Config, f.ControlIface, f.DataIface, f.DataAlt)
}

// ErrNoFunction is returned by Choose for a device with no network function
// of the protocol asked for.
var ErrNoFunction = errors.New("no USB network function (RNDIS, CDC-NCM or CDC-ECM)")

// FindFunctions returns every network function of the configurations, in
// their order, and why each control interface of a known class that is not
// one could not be used.
func FindFunctions(configs []Configuration) ([]Function, error) {
	var found []Function
	var reasons []error
	for _, c := range configs {
		for _, ctl := range c.Interfaces {
			proto, ok := ProtocolOf(ctl.Class)
			if !ok || ctl.Alternate != 0 {
				continue
			}
			f, err := pairFunction(c, ctl, proto)
			if err != nil {
				reasons = append(reasons, fmt.Errorf("configuration %d interface %d (%v): %w", c.Value, ctl.Number, ctl.Class, err))
				continue
			}
			found = append(found, f)
		}
	}
	return found, errors.Join(reasons...)
}

// Choose picks the function a device is to be used through: the first of
// protocol want, or with ProtocolAuto the first of the most preferred
// protocol. A device like Linux's g_ether (configuration 1 CDC-ECM,
// configuration 2 RNDIS) is thereby put into the configuration that holds
// the chosen function. reasons, from FindFunctions, explain an empty choice.
func Choose(fns []Function, want Protocol, reasons error) (Function, error) {
	order := Preference
	if want != ProtocolAuto && want != "" {
		order = []Protocol{want}
	}
	for _, p := range order {
		if i := slices.IndexFunc(fns, func(f Function) bool { return f.Protocol == p }); i >= 0 {
			return fns[i], nil
		}
	}
	var offered []string
	for _, f := range fns {
		offered = append(offered, string(f.Protocol))
	}
	err := ErrNoFunction
	if want != ProtocolAuto && want != "" {
		err = fmt.Errorf("no %s function", want)
	}
	if len(offered) > 0 {
		err = fmt.Errorf("%w (the device offers %s)", err, strings.Join(offered, ", "))
	}
	if reasons != nil {
		return Function{}, fmt.Errorf("%w: %w", err, reasons)
	}
	return Function{}, err
}

func pairFunction(c Configuration, ctl InterfaceSetting, proto Protocol) (Function, error) {
	// A 02/02/FF interface with ACM capabilities is a modem, not RNDIS (as Linux decides).
	if ctl.Class == (Class{0x02, 0x02, 0xFF}) && ctl.ACMCapabilities > 0 {
		return Function{}, fmt.Errorf("ACM capabilities %#x: a modem, not RNDIS", ctl.ACMCapabilities)
	}
	f := Function{Protocol: proto, Config: c.Value, Control: ctl.Class, ControlIface: ctl.Number,
		MACAddressIndex: ctl.MACAddressIndex, MaxSegmentSize: ctl.MaxSegmentSize, NCMCapabilities: ctl.NCMCapabilities}
	notify := slices.IndexFunc(ctl.Endpoints, func(e Endpoint) bool { return e.Interrupt() && e.In() })
	if notify < 0 {
		return f, errors.New("no interrupt IN endpoint for notifications")
	}
	f.Notify = ctl.Endpoints[notify]

	// The data interface: the CDC Union's first subordinate, else the Call
	// Management descriptor's, else the next interface (Android devices with
	// a Union pointing at interfaces that do not exist).
	var candidates []int
	unionValid := len(ctl.UnionSubordinates) > 0 && ctl.UnionControl == ctl.Number
	if unionValid {
		candidates = append(candidates, ctl.UnionSubordinates[0])
	}
	if ctl.CallMgmtData >= 0 {
		candidates = append(candidates, ctl.CallMgmtData)
	}
	candidates = append(candidates, ctl.Number+1)
	for i, n := range candidates {
		if n == ctl.Number {
			continue
		}
		if data, ok := dataSetting(c, n); ok {
			f.DataIface, f.DataAlt = data.Number, data.Alternate
			f.BulkIn, f.BulkOut = bulkPair(data)
			f.UnionFallback = !unionValid || i > 0
			return f, nil
		}
	}
	return f, fmt.Errorf("no data interface with bulk IN and OUT (tried %v)", candidates)
}

// dataSetting returns the alternate setting of interface n that has a bulk
// IN and a bulk OUT endpoint.
func dataSetting(c Configuration, n int) (InterfaceSetting, bool) {
	for _, s := range c.Interfaces {
		if s.Number != n {
			continue
		}
		in, out := bulkPair(s)
		if in.Address != 0 && out.Address != 0 {
			return s, true
		}
	}
	return InterfaceSetting{}, false
}

func bulkPair(s InterfaceSetting) (in, out Endpoint) {
	for _, e := range s.Endpoints {
		switch {
		case e.Bulk() && e.In() && in.Address == 0:
			in = e
		case e.Bulk() && !e.In() && out.Address == 0:
			out = e
		}
	}
	return in, out
}

// HasTetherClass reports whether any interface of the configurations has the
// class of a tether's control interface: what listing looks for before it
// reads a device's descriptors in full.
func HasTetherClass(classes []Class) bool {
	for _, c := range classes {
		if _, ok := ProtocolOf(c); ok {
			return true
		}
	}
	return false
}
