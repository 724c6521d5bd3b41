package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rndis-netd/rndis-netd/link"
	"github.com/rndis-netd/rndis-netd/usb"
)

// startAdmin serves /metrics, /healthz and /status on admin.listen (this
// host only: never on the tether). With the simulated phone it also serves
// /sim/*, to drive the phone from outside the process.
func (d *daemon) startAdmin() error {
	if d.cfg.Admin.Listen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", d.cfg.Admin.Listen)
	if err != nil {
		return fmt.Errorf("admin.listen: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), (*metrics)(d))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", d.healthz)
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(d.status())
	})
	if d.device.phone != nil {
		d.simRoutes(mux)
	}
	d.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go d.admin.Serve(ln)
	d.log.Info("admin endpoint", "listen", ln.Addr().String())
	return nil
}

// healthz is 200 when the link is up and has an IPv4 address (and so the
// listeners, started before this endpoint, are up too).
func (d *daemon) healthz(w http.ResponseWriter, r *http.Request) {
	l := d.net.Link()
	_, leased := d.net.Lease()
	switch ev := l.LastEvent(); {
	case !l.Up() && ev.Cause == link.CauseNoDevice:
		http.Error(w, stateWaiting, http.StatusServiceUnavailable)
	case !l.Up():
		http.Error(w, "link down: "+string(ev.Cause), http.StatusServiceUnavailable)
	case !leased:
		http.Error(w, "no IPv4 address", http.StatusServiceUnavailable)
	default:
		io.WriteString(w, "ok\n")
	}
}

// simRoutes drive the simulated phone: POST /sim/halt (RNDIS phones only:
// NCM and ECM have no device-sent halt), /sim/unplug, /sim/replug,
// /sim/media-disconnect, /sim/media-connect; GET /sim/fetch?url= makes an
// HTTP request from the phone's side (to reach an expose).
func (d *daemon) simRoutes(mux *http.ServeMux) {
	p := d.device.phone
	actions := map[string]func(){
		"unplug":           p.Unplug,
		"replug":           p.Replug,
		"media-disconnect": func() { p.SetMedia(false) },
		"media-connect":    func() { p.SetMedia(true) },
	}
	if proto := p.Config().Protocol; proto != usb.ProtocolNCM && proto != usb.ProtocolECM {
		actions["halt"] = p.Halt
	}
	for name, act := range actions {
		mux.HandleFunc("POST /sim/"+name, func(w http.ResponseWriter, r *http.Request) {
			act()
			d.log.Info("simulated phone", "action", name)
			io.WriteString(w, "ok\n")
		})
	}
	mux.HandleFunc("GET /sim/stats", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(p.Stats())
	})
	mux.HandleFunc("GET /sim/fetch", func(w http.ResponseWriter, r *http.Request) {
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				ap, err := netip.ParseAddrPort(addr)
				if err != nil {
					return nil, fmt.Errorf("the phone dials IP addresses only: %w", err)
				}
				return p.DialTCP(ctx, ap)
			},
		}}
		resp, err := client.Get(r.URL.Query().Get("url"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	})
}
