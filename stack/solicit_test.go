package stack

import (
	"testing"
	"time"

	"github.com/rndis-netd/rndis-netd/usb/sim"
)

// When the link comes back, the host solicits routers, so that the phone's
// advertisement (with a prefix that may have changed meanwhile) comes at
// once: the NIC stays enabled through a link-down, and gVisor solicits only
// when it enables one.
func TestLinkUpSolicitsRouters(t *testing.T) {
	f := open(t, sim.LinuxGadget(), nil)
	solicits := func() uint64 { return f.phone.Stack().Stats().ICMP.V6.PacketsReceived.RouterSolicit.Value() }
	before := solicits()
	f.phone.Unplug()
	f.phone.Replug()
	for deadline := time.Now().Add(10 * time.Second); solicits() == before; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no router solicitation reached the phone after the link came back (%d before)", before)
		}
	}
}
