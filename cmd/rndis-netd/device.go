package main

import (
	"github.com/rndis-netd/rndis-netd/config"
	"github.com/rndis-netd/rndis-netd/usb"
	"github.com/rndis-netd/rndis-netd/usb/sim"
)

// device is the tether device.select names: the simulated phone, or a USB
// device reached through libusb.
type device struct {
	opener usb.Opener
	phone  *sim.Phone // with device.select: sim
	host   *usb.Host  // otherwise
}

// openDevice starts the simulated phone or opens libusb; the device itself
// is opened later, through opener.
func openDevice(c config.Device) (*device, error) {
	sel, simPhone, err := c.Parse()
	if err != nil {
		return nil, err
	}
	if simPhone != nil {
		phone, err := sim.New(simPhone.Config)
		if err != nil {
			return nil, err
		}
		if simPhone.Unplugged {
			phone.Unplug()
		}
		return &device{opener: phone, phone: phone}, nil
	}
	host, err := usb.NewHost()
	if err != nil {
		return nil, err
	}
	return &device{opener: host.Opener(sel), host: host}, nil
}

func (d *device) Close() {
	if d.phone != nil {
		d.phone.Close()
	}
	if d.host != nil {
		d.host.Close()
	}
}
