package main

import (
	"github.com/rndis-netd/rndis-netd/config"
	"github.com/rndis-netd/rndis-netd/usb"
	"github.com/rndis-netd/rndis-netd/usb/sim"
)

// backendSim is the backend /status names for the simulated phone.
const backendSim = "sim"

// device is the tether device.select names: the simulated phone, or a USB
// device reached through the backend device.backend names.
type device struct {
	opener  usb.Opener
	backend string     // usbfs, libusb or sim
	phone   *sim.Phone // with device.select: sim
	host    *usb.Host  // otherwise
}

// openDevice starts the simulated phone or opens the USB backend; the
// device itself is opened later, through opener.
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
		return &device{opener: phone, backend: backendSim, phone: phone}, nil
	}
	host, err := openHost(c)
	if err != nil {
		return nil, err
	}
	return &device{opener: host.Opener(sel), backend: string(host.Backend()), host: host}, nil
}

// openHost opens the USB backend device.backend names.
func openHost(c config.Device) (*usb.Host, error) {
	b, err := usb.ParseBackend(c.Backend)
	if err != nil {
		return nil, err
	}
	return usb.NewHost(b)
}

func (d *device) Close() {
	if d.phone != nil {
		d.phone.Close()
	}
	if d.host != nil {
		d.host.Close()
	}
}
