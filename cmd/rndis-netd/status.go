package main

import (
	"time"
)

// statusDoc is the JSON of /status. Credentials never appear in it.
type statusDoc struct {
	Version   string         `json:"version"`
	Started   time.Time      `json:"started"`
	Device    deviceStatus   `json:"device"`
	Link      linkStatus     `json:"link"`
	Addresses []string       `json:"addresses"`
	Lease     *leaseStatus   `json:"lease,omitempty"`
	DNS       []string       `json:"dns"`
	Listeners []listenStatus `json:"listeners"`
}

type deviceStatus struct {
	ID                    string   `json:"id"`
	Protocol              string   `json:"protocol"`
	Serial                string   `json:"serial,omitempty"`
	Path                  string   `json:"path"`
	Product               string   `json:"product,omitempty"`
	Manufacturer          string   `json:"manufacturer,omitempty"`
	MAC                   string   `json:"mac"`
	DeviceMAC             string   `json:"device_mac"`
	MTU                   int      `json:"mtu"`
	LinkSpeedBPS          int64    `json:"link_speed_bps"`
	RNDISVersion          string   `json:"rndis_version,omitempty"`
	MaxTransferSize       int      `json:"max_transfer_size,omitempty"`
	MaxPacketsPerTransfer int      `json:"max_packets_per_transfer,omitempty"`
	Alignment             int      `json:"alignment,omitempty"`
	SupportedOIDs         []string `json:"supported_oids,omitempty"`
}

type linkStatus struct {
	Up    bool      `json:"up"`
	Cause string    `json:"cause"`
	Since time.Time `json:"since"`
	Error string    `json:"error,omitempty"`
}

type leaseStatus struct {
	Address string    `json:"address"`
	Router  string    `json:"router,omitempty"`
	DNS     []string  `json:"dns,omitempty"`
	Server  string    `json:"server,omitempty"`
	Dynamic bool      `json:"dynamic"`
	Stale   bool      `json:"stale"`
	Expires time.Time `json:"expires,omitzero"`
}

type listenStatus struct {
	Kind    string `json:"kind"`
	Proto   string `json:"proto"`
	Listen  string `json:"listen"`
	Connect string `json:"connect,omitempty"`
	Auth    string `json:"auth,omitempty"`
	Active  int64  `json:"active"`
	Total   uint64 `json:"total"`
	Failed  uint64 `json:"failed"`
}

func (d *daemon) status() statusDoc {
	info := d.net.Link().Info()
	ev := d.net.Link().LastEvent()
	doc := statusDoc{
		Version: versionString(),
		Started: d.started,
		Device: deviceStatus{
			ID: info.USB.ID(), Protocol: string(info.Protocol), Serial: info.USB.Serial, Path: info.USB.Path, Product: info.USB.Product,
			Manufacturer: info.USB.Manufacturer, MAC: info.MAC.String(), DeviceMAC: info.DeviceMAC.String(),
			MTU: info.MTU, LinkSpeedBPS: info.LinkSpeed,
		},
		Link:      linkStatus{Up: d.net.Link().Up(), Cause: string(ev.Cause), Since: ev.Time},
		Addresses: []string{},
		DNS:       []string{},
		Listeners: []listenStatus{},
	}
	if r := info.RNDIS; r != nil {
		doc.Device.RNDISVersion = r.Version
		doc.Device.MaxTransferSize, doc.Device.MaxPacketsPerTransfer, doc.Device.Alignment = r.Limits.MaxTransferSize, r.Limits.MaxPacketsPerTransfer, r.Limits.Alignment
		for _, o := range r.SupportedOIDs {
			doc.Device.SupportedOIDs = append(doc.Device.SupportedOIDs, o.String())
		}
	}
	if ev.Err != nil {
		doc.Link.Error = ev.Err.Error()
	}
	for _, a := range d.net.Addrs() {
		doc.Addresses = append(doc.Addresses, a.String())
	}
	if l, ok := d.net.Lease(); ok {
		ls := &leaseStatus{Address: l.Addr.String(), Dynamic: l.Dynamic, Stale: l.Stale}
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
	defer d.mu.Unlock()
	for _, r := range d.services {
		st := r.svc.Stats()
		ls := listenStatus{Kind: r.spec.kind, Proto: r.spec.proto, Listen: r.spec.listen, Connect: r.spec.connect,
			Active: st.Active.Load(), Total: st.Total.Load(), Failed: st.Failed.Load()}
		if r.spec.username != "" {
			ls.Auth = "username/password"
		}
		doc.Listeners = append(doc.Listeners, ls)
	}
	return doc
}
