package main

import (
	"cmp"
	"slices"
	"time"

	"github.com/rndis-netd/rndis-netd/link"
)

// statusDoc is the JSON of /status. Credentials never appear in it.
type statusDoc struct {
	Version   string         `json:"version"`
	Started   time.Time      `json:"started"`
	Backend   string         `json:"backend"`          // how the device is reached: usbfs, libusb or sim
	Device    *deviceStatus  `json:"device,omitempty"` // none before the device was first found
	Link      linkStatus     `json:"link"`
	Addresses []string       `json:"addresses"`
	Lease     *leaseStatus   `json:"lease,omitempty"`
	DNS       []string       `json:"dns"`
	Listeners []listenStatus `json:"listeners"`
	Counters  countersStatus `json:"counters"`
}

type deviceStatus struct {
	ID                    string     `json:"id"`
	Protocol              string     `json:"protocol"`
	Serial                string     `json:"serial,omitempty"`
	Path                  string     `json:"path"`
	Product               string     `json:"product,omitempty"`
	Manufacturer          string     `json:"manufacturer,omitempty"`
	MAC                   string     `json:"mac"`
	DeviceMAC             string     `json:"device_mac"`
	MTU                   int        `json:"mtu"`
	LinkSpeedBPS          int64      `json:"link_speed_bps"`
	RNDISVersion          string     `json:"rndis_version,omitempty"`
	MaxTransferSize       int        `json:"max_transfer_size,omitempty"`
	MaxPacketsPerTransfer int        `json:"max_packets_per_transfer,omitempty"`
	Alignment             int        `json:"alignment,omitempty"`
	SupportedOIDs         []string   `json:"supported_oids,omitempty"`
	NCM                   *ncmStatus `json:"ncm,omitempty"`
}

// ncmStatus is what the host negotiated with a CDC-NCM function.
type ncmStatus struct {
	Format          string `json:"format"`                // NTB16 or NTB32
	InMaxSize       int    `json:"in_max_size"`           // the largest block the device sends
	OutMaxSize      int    `json:"out_max_size"`          // the largest block the host sends
	OutDivisor      int    `json:"out_divisor"`           // datagrams start at remainder modulo divisor
	OutRemainder    int    `json:"out_remainder"`         //
	OutNDPAlignment int    `json:"out_ndp_alignment"`     //
	OutMaxDatagrams int    `json:"out_max_datagrams"`     // per block
	DeviceParams    string `json:"device_ntb_parameters"` // GET_NTB_PARAMETERS as the device answered
}

// States of the link in /status.
const (
	stateUp      = "up"
	stateDown    = "down"
	stateWaiting = "waiting for the device" // started without it (device.wait)
)

type linkStatus struct {
	State string    `json:"state"`
	Up    bool      `json:"up"`
	Cause string    `json:"cause"`
	Since time.Time `json:"since"`
	Error string    `json:"error,omitempty"`
	MTU   int       `json:"mtu,omitempty"` // the IP MTU in use
}

type leaseStatus struct {
	Address string    `json:"address"`
	Router  string    `json:"router,omitempty"`
	DNS     []string  `json:"dns,omitempty"`
	MTU     int       `json:"mtu,omitempty"` // DHCP's interface MTU
	Server  string    `json:"server,omitempty"`
	Dynamic bool      `json:"dynamic"`
	Stale   bool      `json:"stale"`
	Expires time.Time `json:"expires,omitzero"`
}

type listenStatus struct {
	Kind      string `json:"kind"`
	Proto     string `json:"proto"`
	Listen    string `json:"listen"`
	Connect   string `json:"connect,omitempty"`
	Auth      string `json:"auth,omitempty"`
	Active    int64  `json:"active"`
	Total     uint64 `json:"total"`
	Failed    uint64 `json:"failed"`
	BytesUp   uint64 `json:"bytes_up"`
	BytesDown uint64 `json:"bytes_down"`
}

// countersStatus are the link's counters since the daemon started.
type countersStatus struct {
	RxBytes   uint64                       `json:"rx_bytes"`
	TxBytes   uint64                       `json:"tx_bytes"`
	RxFrames  uint64                       `json:"rx_frames"`
	TxFrames  uint64                       `json:"tx_frames"`
	Drops     map[string]map[string]uint64 `json:"drops"`  // direction → cause → frames or transfers
	Faults    map[string]uint64            `json:"faults"` // cause → what the device did wrong
	Halts     uint64                       `json:"device_halts"`
	Resets    uint64                       `json:"resets"`
	Reinits   uint64                       `json:"reinits"`
	LinkDowns uint64                       `json:"link_downs"`
}

func (d *daemon) status() statusDoc {
	l := d.net.Link()
	info, ev := l.Info(), l.LastEvent()
	doc := statusDoc{
		Version:   versionString(),
		Started:   d.started,
		Link:      linkStatus{State: stateDown, Up: l.Up(), Cause: string(ev.Cause), Since: ev.Time, MTU: d.net.MTU()},
		Addresses: []string{},
		DNS:       []string{},
		Listeners: []listenStatus{},
		Counters:  counters(l.Stats()),
	}
	switch {
	case doc.Link.Up:
		doc.Link.State = stateUp
	case ev.Cause == link.CauseNoDevice:
		doc.Link.State = stateWaiting
	}
	if d.device != nil {
		doc.Backend = d.device.backend
	}
	if info.MAC != nil { // the device's function has started once
		doc.Device = deviceOf(info)
	}
	if ev.Err != nil {
		doc.Link.Error = ev.Err.Error()
	}
	for _, a := range d.net.Addrs() {
		doc.Addresses = append(doc.Addresses, a.String())
	}
	if l, ok := d.net.Lease(); ok {
		ls := &leaseStatus{Address: l.Addr.String(), MTU: l.MTU, Dynamic: l.Dynamic, Stale: l.Stale}
		if l.Router.IsValid() {
			ls.Router = l.Router.String()
		}
		if l.Server.IsValid() {
			ls.Server = l.Server.String()
		}
		for _, s := range l.DNS {
			ls.DNS = append(ls.DNS, s.String())
		}
		if l.Dynamic {
			ls.Expires = l.Expires()
		}
		doc.Lease = ls
	}
	for _, s := range d.net.DNSServers() {
		doc.DNS = append(doc.DNS, s.String())
	}
	d.mu.Lock()
	for _, r := range d.services {
		st := r.svc.Stats()
		ls := listenStatus{Kind: r.spec.kind, Proto: r.spec.proto, Listen: r.spec.listen, Connect: r.spec.connect,
			Active: st.Active.Load(), Total: st.Total.Load(), Failed: st.Failed.Load(),
			BytesUp: st.BytesUp.Load(), BytesDown: st.BytesDown.Load()}
		if r.spec.username != "" {
			ls.Auth = "username/password"
		}
		doc.Listeners = append(doc.Listeners, ls)
	}
	d.mu.Unlock()
	slices.SortFunc(doc.Listeners, func(a, b listenStatus) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.Listen, b.Listen))
	})
	return doc
}

func deviceOf(info link.DeviceInfo) *deviceStatus {
	dev := &deviceStatus{
		ID: info.USB.ID(), Protocol: string(info.Protocol), Serial: info.USB.Serial, Path: info.USB.Path, Product: info.USB.Product,
		Manufacturer: info.USB.Manufacturer, MAC: info.MAC.String(), DeviceMAC: info.DeviceMAC.String(),
		MTU: info.MTU, LinkSpeedBPS: info.LinkSpeed,
	}
	if r := info.RNDIS; r != nil {
		dev.RNDISVersion = r.Version
		dev.MaxTransferSize, dev.MaxPacketsPerTransfer, dev.Alignment = r.Limits.MaxTransferSize, r.Limits.MaxPacketsPerTransfer, r.Limits.Alignment
		for _, o := range r.SupportedOIDs {
			dev.SupportedOIDs = append(dev.SupportedOIDs, o.String())
		}
	}
	if n := info.NCM; n != nil {
		dev.NCM = &ncmStatus{Format: n.Format.String(), InMaxSize: n.InputSize, OutMaxSize: n.Out.MaxSize, OutDivisor: n.Out.Divisor,
			OutRemainder: n.Out.Remainder, OutNDPAlignment: n.Out.NDPAlignment, OutMaxDatagrams: n.Out.MaxDatagrams,
			DeviceParams: n.Parameters.String()}
	}
	return dev
}

func counters(s link.Stats) countersStatus {
	c := countersStatus{RxBytes: s.RxBytes, TxBytes: s.TxBytes, RxFrames: s.RxFrames, TxFrames: s.TxFrames,
		Drops: map[string]map[string]uint64{"rx": {}, "tx": {}}, Faults: s.Faults(),
		Halts: s.Halts, Resets: s.Resets, Reinits: s.Reinits, LinkDowns: s.LinkDowns}
	for _, dr := range drops(s) {
		c.Drops[dr.direction][dr.cause] = dr.n
	}
	return c
}
