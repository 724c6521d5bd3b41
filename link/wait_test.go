package link

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rndis-netd/rndis-netd/usb"
	"github.com/rndis-netd/rndis-netd/usb/sim"
)

// Without a device, Open fails at once, unless told to wait: then the link
// starts down for want of a device and comes up when the device appears.
func TestOpenWaitsForTheDevice(t *testing.T) {
	phone, err := sim.New(sim.LinuxGadget())
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	phone.Unplug()

	if _, err := Open(context.Background(), phone, fastOptions()); !errors.Is(err, usb.ErrNoDevice) {
		t.Fatalf("Open without a device = %v, want ErrNoDevice", err)
	}

	opts := fastOptions()
	opts.WaitForDevice = true
	l, err := Open(context.Background(), phone, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	events := make(chan Event, 10)
	l.Subscribe(func(ev Event) { events <- ev })
	if ev := l.LastEvent(); l.Up() || ev.Cause != CauseNoDevice || !errors.Is(ev.Err, usb.ErrNoDevice) {
		t.Errorf("up %v, last event %v; want down, no device", l.Up(), ev)
	}
	if info := l.Info(); info.MAC != nil || info.Protocol != "" {
		t.Errorf("Info before the device = %+v, want the zero DeviceInfo", info)
	}
	phone.Replug()
	select {
	case ev := <-events:
		if !ev.Up || ev.Cause != CauseInitialized {
			t.Errorf("event %v, want up: initialized", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no link up after the device appeared")
	}
	if info := l.Info(); info.Protocol != usb.ProtocolRNDIS || info.MAC == nil {
		t.Errorf("Info after the device appeared = %+v", info)
	}
	// Unplugged again, the link waits for this same device.
	phone.Unplug()
	if ev := <-events; ev.Up || ev.Cause != CauseDeviceGone {
		t.Errorf("event %v, want down: device gone", ev)
	}
	phone.Replug()
	select {
	case ev := <-events:
		if !ev.Up || ev.Cause != CauseReinitialized {
			t.Errorf("event %v, want up: reinitialized", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no link up after the re-plug")
	}
}

// Closed while it waits, the link stops at once.
func TestCloseWhileWaitingForTheDevice(t *testing.T) {
	phone, err := sim.New(sim.LinuxGadget())
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	phone.Unplug()
	opts := fastOptions()
	opts.WaitForDevice = true
	l, err := Open(context.Background(), phone, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if n := phone.Stats().Initializes; n != 0 {
		t.Errorf("the phone was initialized %d times", n)
	}
}

// A lower MTU set through the stack (a DHCP lease's interface MTU) holds
// across a re-initialization, and never raises the device's.
func TestSetMTUCapsTheDevicesMTU(t *testing.T) {
	tb := newTestbed(t, sim.LinuxGadget(), fastOptions())
	nicMTU := func() uint32 { return tb.host.NICInfo()[hostNIC].MTU }
	if err := tb.host.SetNICMTU(hostNIC, 1400); err != nil {
		t.Fatal(err)
	}
	if got := nicMTU(); got != 1400 {
		t.Errorf("MTU %d after SetNICMTU(1400)", got)
	}
	tb.phone.Halt()
	tb.nextEvent(t, 5*time.Second)
	tb.nextEvent(t, 10*time.Second)
	if got := nicMTU(); got != 1400 {
		t.Errorf("MTU %d after a re-initialization, want 1400 kept", got)
	}
	if err := tb.host.SetNICMTU(hostNIC, 9000); err != nil {
		t.Fatal(err)
	}
	if got := nicMTU(); got != 1500 {
		t.Errorf("MTU %d after SetNICMTU(9000), want the device's 1500", got)
	}
}
