package main

import (
	"fmt"
	"net"

	"github.com/rndis-netd/rndis-netd/config"
	"github.com/rndis-netd/rndis-netd/service"
)

// spec is one listener the configuration asks for.
type spec struct {
	kind     string // socks5 | http_proxy | forward | expose
	proto    string // tcp | udp
	listen   string
	connect  string
	username string
	password string
	limits   service.Limits
}

// key identifies a spec across reloads; a changed field is a new listener.
func (s spec) key() string {
	return fmt.Sprintf("%s %s %s %s %q %q %+v", s.kind, s.proto, s.listen, s.connect, s.username, s.password, s.limits)
}

// logAttrs describe the listener without its credentials.
func (s spec) logAttrs() []any {
	attrs := []any{"kind", s.kind, "proto", s.proto, "listen", s.listen}
	if s.connect != "" {
		attrs = append(attrs, "connect", s.connect)
	}
	if s.username != "" {
		attrs = append(attrs, "auth", "username/password")
	}
	return attrs
}

func specs(cfg *config.Config) []spec {
	var out []spec
	if c := cfg.SOCKS5; c.Listen != "" {
		out = append(out, spec{kind: "socks5", proto: "tcp", listen: c.Listen, username: c.Username, password: c.Password,
			limits: limits(c.Limits)})
	}
	if c := cfg.HTTPProxy; c.Listen != "" {
		out = append(out, spec{kind: "http_proxy", proto: "tcp", listen: c.Listen, limits: limits(c.Limits)})
	}
	for _, f := range cfg.Forwards {
		out = append(out, spec{kind: "forward", proto: f.Proto, listen: f.Listen, connect: f.Connect,
			limits: service.Limits{MaxConnections: f.MaxConnections}})
	}
	for _, f := range cfg.Exposes {
		out = append(out, spec{kind: "expose", proto: f.Proto, listen: f.Listen, connect: f.Connect,
			limits: service.Limits{MaxConnections: f.MaxConnections}})
	}
	return out
}

func limits(l config.Limits) service.Limits {
	return service.Limits{MaxConnections: l.MaxConnections, HandshakeTimeout: l.HandshakeTimeout, ConnectTimeout: l.ConnectTimeout}
}

// running is a started service.
type running struct {
	spec spec
	svc  service.Service
	done chan struct{}
}

func (r *running) stop() {
	r.svc.Close()
	<-r.done
}

func (d *daemon) startListener(s spec) (*running, error) {
	var svc service.Service
	switch {
	case s.kind == "socks5" || s.kind == "http_proxy" || s.kind == "forward" && s.proto == "tcp":
		ln, err := net.Listen("tcp", s.listen)
		if err != nil {
			return nil, err
		}
		switch s.kind {
		case "socks5":
			svc = service.NewSOCKS5(ln, d.net, s.username, s.password, s.limits, d.log)
		case "http_proxy":
			svc = service.NewHTTPProxy(ln, d.net, s.limits, d.log)
		default:
			svc = service.NewTCPForward(ln, d.net.DialContext, s.connect, s.limits, d.log)
		}
	case s.kind == "forward":
		pc, err := net.ListenPacket("udp", s.listen)
		if err != nil {
			return nil, err
		}
		svc = service.NewUDPForward(pc, d.net.DialContext, s.connect, s.limits, d.log)
	case s.proto == "tcp": // expose
		ln, err := d.net.Listen("tcp", s.listen)
		if err != nil {
			return nil, fmt.Errorf("listening on the tether: %w", err)
		}
		svc = service.NewTCPForward(ln, hostDial, s.connect, s.limits, d.log)
	default:
		pc, err := d.net.ListenPacket("udp", s.listen)
		if err != nil {
			return nil, fmt.Errorf("listening on the tether: %w", err)
		}
		svc = service.NewUDPForward(pc, hostDial, s.connect, s.limits, d.log)
	}
	r := &running{spec: s, svc: svc, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		if err := svc.Serve(); err != nil {
			d.log.Error("listener", append(s.logAttrs(), "err", err)...)
		}
	}()
	return r, nil
}
