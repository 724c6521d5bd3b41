package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
)

// HTTPProxy is an HTTP proxy whose egress is the tether: CONNECT tunnels
// and absolute-URI forwarding ("GET http://host/path").
type HTTPProxy struct {
	ln      net.Listener
	t       Tether
	srv     *http.Server
	forward *httputil.ReverseProxy
	log     *slog.Logger
	stats   Stats
	conns   conns
}

// maxHeaderBytes bounds a request's header: no proxy request needs more.
const maxHeaderBytes = 64 << 10

// NewHTTPProxy returns a proxy serving ln; transport carries forwarded
// requests (its dialing must go over the tether).
func NewHTTPProxy(ln net.Listener, t Tether, transport http.RoundTripper, lim Limits, log *slog.Logger) *HTTPProxy {
	lim = lim.withDefaults()
	p := &HTTPProxy{t: t, log: log}
	p.ln = lim.listener(ln, &p.stats)
	p.forward = &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.Out.URL = r.In.URL; r.Out.Host = r.In.Host },
		Transport: transport,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			p.stats.Failed.Add(1)
			logErr(log, "http proxy: forward", err, "url", r.URL.Redacted())
			http.Error(w, fmt.Sprintf("rndis-netd: %v", err), http.StatusBadGateway)
		},
	}
	p.srv = &http.Server{
		Handler:           p,
		ReadHeaderTimeout: lim.HandshakeTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return p
}

func (p *HTTPProxy) Serve() error {
	if err := p.srv.Serve(p.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (p *HTTPProxy) Close() error {
	err := p.srv.Close()
	p.conns.closeAll()
	return err
}

func (p *HTTPProxy) Stats() *Stats { return &p.stats }

func (p *HTTPProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodConnect:
		p.connect(w, r)
	case r.URL.IsAbs() && r.URL.Scheme == "http":
		p.forward.ServeHTTP(w, r)
	default:
		http.Error(w, "rndis-netd: this is a proxy: send CONNECT or an absolute http:// URI", http.StatusBadRequest)
	}
}

// connect opens a tunnel to r.Host through the tether.
func (p *HTTPProxy) connect(w http.ResponseWriter, r *http.Request) {
	if _, _, err := net.SplitHostPort(r.Host); err != nil {
		http.Error(w, "rndis-netd: CONNECT needs host:port", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), dialTimeout)
	far, err := p.t.DialContext(ctx, "tcp", r.Host)
	cancel()
	if err != nil {
		p.stats.Failed.Add(1)
		logErr(p.log, "http proxy: CONNECT", err, "to", r.Host)
		http.Error(w, fmt.Sprintf("rndis-netd: %v", err), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		far.Close()
		http.Error(w, "rndis-netd: cannot tunnel over this connection", http.StatusInternalServerError)
		return
	}
	client, buf, err := hj.Hijack()
	if err != nil {
		far.Close()
		return
	}
	if !p.conns.add(client) || !p.conns.add(far) {
		client.Close()
		far.Close()
		return
	}
	p.conns.wg.Add(1)
	defer p.conns.wg.Done()
	defer p.conns.remove(client)
	defer p.conns.remove(far)
	if _, err := io.WriteString(client, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		client.Close()
		far.Close()
		return
	}
	splice(readerConn{Conn: client, r: buf.Reader}, far, &p.stats) // the server may have read ahead
}
