package usb

import (
	"fmt"
	"strconv"
	"strings"
)

// Selector says which device to use, and through which of its network
// functions. The zero Selector matches any tether, through the function
// Preference ranks first.
type Selector struct {
	VendorID, ProductID uint16   // both zero: any
	Serial              string   // "": any
	Path                string   // "bus-port.port", as Linux names it in sysfs; "": any
	Protocol            Protocol // "" or ProtocolAuto: the device's best; else only this protocol
}

// ParseSelector reads "auto", "VID:PID" (hex), "serial=XYZ" or "path=1-2.3";
// the protocol is set apart.
func ParseSelector(s string) (Selector, error) {
	switch {
	case s == "" || s == "auto":
		return Selector{}, nil
	case strings.HasPrefix(s, "serial="):
		if v := strings.TrimPrefix(s, "serial="); v != "" {
			return Selector{Serial: v}, nil
		}
	case strings.HasPrefix(s, "path="):
		if v := strings.TrimPrefix(s, "path="); validPath(v) {
			return Selector{Path: v}, nil
		}
	default:
		vid, pid, ok := strings.Cut(s, ":")
		v, err1 := strconv.ParseUint(vid, 16, 16)
		p, err2 := strconv.ParseUint(pid, 16, 16)
		if ok && err1 == nil && err2 == nil && len(vid) == 4 && len(pid) == 4 {
			return Selector{VendorID: uint16(v), ProductID: uint16(p)}, nil
		}
	}
	return Selector{}, fmt.Errorf("usb: device selector %q: want auto, VID:PID (4 hex digits each), serial=XYZ or path=BUS-PORT[.PORT...]", s)
}

func validPath(p string) bool {
	bus, ports, ok := strings.Cut(p, "-")
	if !ok || ports == "" {
		return false
	}
	for _, n := range append([]string{bus}, strings.Split(ports, ".")...) {
		if _, err := strconv.ParseUint(n, 10, 8); err != nil {
			return false
		}
	}
	return true
}

func (s Selector) String() string {
	switch {
	case s.Serial != "":
		return "serial=" + s.Serial
	case s.Path != "":
		return "path=" + s.Path
	case s.VendorID != 0 || s.ProductID != 0:
		return fmt.Sprintf("%04x:%04x", s.VendorID, s.ProductID)
	}
	return "auto"
}

// Matches reports whether a device fits the selection.
func (s Selector) Matches(i Info) bool {
	return (s.VendorID == 0 && s.ProductID == 0 || s.VendorID == i.VendorID && s.ProductID == i.ProductID) &&
		(s.Serial == "" || s.Serial == i.Serial) &&
		(s.Path == "" || s.Path == i.Path)
}

// Narrow returns a selector for the device described by i after it comes
// back: by serial number when it has one, else by the port it was in,
// through the protocol s asks for (with auto, a phone that comes back
// offering another protocol is opened at its best one).
func (s Selector) Narrow(i Info) Selector {
	n := Selector{VendorID: i.VendorID, ProductID: i.ProductID, Protocol: s.Protocol}
	if i.Serial != "" {
		n.Serial = i.Serial
	} else {
		n.Path = i.Path
	}
	return n
}

// PortPath formats a bus number and port numbers as "1-2.3".
func PortPath(bus int, ports []int) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(p)
	}
	return fmt.Sprintf("%d-%s", bus, strings.Join(s, "."))
}
