package usb

import (
	"errors"
	"fmt"
	"slices"
)

// RNDISClasses are the class triples of RNDIS control interfaces in the wild.
var RNDISClasses = []Class{
	{0x02, 0x02, 0xFF}, // CDC ACM with vendor protocol: Linux gadget, most Android phones
	{0xE0, 0x01, 0x03}, // wireless controller, RF, RNDIS: stock Android
	{0xEF, 0x04, 0x01}, // misc, RNDIS over Ethernet: newer Qualcomm phones, Windows' rndiscmp.inf
	{0xEF, 0x01, 0x01}, // misc, sync, ActiveSync: Windows Mobile
}

// Function locates an RNDIS function inside a configuration: the control
// interface with its notification endpoint and the data interface with its
// bulk pair.
type Function struct {
	Config       int // bConfigurationValue
	Control      Class
	ControlIface int
	DataIface    int
	DataAlt      int

	Notify        Endpoint // interrupt IN of the control interface
	BulkIn        Endpoint
	BulkOut       Endpoint
	UnionFallback bool // the CDC Union was missing or pointed nowhere
}

// ErrNotRNDIS is returned by FindFunction for a device with no RNDIS function.
var ErrNotRNDIS = errors.New("no RNDIS control interface")

// FindFunction returns the first RNDIS function of the configurations, in
// the order given. A device like Linux's g_ether, whose first configuration
// is CDC-ECM and second RNDIS, gets its RNDIS configuration.
func FindFunction(configs []Configuration) (Function, error) {
	var reasons []error
	for _, c := range configs {
		for _, ctl := range c.Interfaces {
			if !slices.Contains(RNDISClasses, ctl.Class) || ctl.Alternate != 0 {
				continue
			}
			f, err := pairFunction(c, ctl)
			if err == nil {
				return f, nil
			}
			reasons = append(reasons, fmt.Errorf("configuration %d interface %d (%v): %w", c.Value, ctl.Number, ctl.Class, err))
		}
	}
	if len(reasons) == 0 {
		return Function{}, ErrNotRNDIS
	}
	return Function{}, errors.Join(reasons...)
}

func pairFunction(c Configuration, ctl InterfaceSetting) (Function, error) {
	// A 02/02/FF interface with ACM capabilities is a modem, not RNDIS (as Linux decides).
	if ctl.Class == (Class{0x02, 0x02, 0xFF}) && ctl.ACMCapabilities > 0 {
		return Function{}, fmt.Errorf("ACM capabilities %#x: a modem, not RNDIS", ctl.ACMCapabilities)
	}
	f := Function{Config: c.Value, Control: ctl.Class, ControlIface: ctl.Number}
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
