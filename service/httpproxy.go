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
	"time"
)

// HTTPProxy is an HTTP proxy whose egress is the tether: CONNECT tunnels
// and absolute-URI forwarding ("GET http://host/path").
type HTTPProxy struct {
	ln        net.Listener
	t         Tether
	lim       Limits
	srv       *http.Server
	transport *http.Transport
	forward   *httputil.ReverseProxy
	log       *slog.Logger
	stats     Stats
	conns     *conns
}

// maxHeaderBytes bounds a request's header: no proxy request needs more.
const maxHeaderBytes = 64 << 10

// NewHTTPProxy returns a proxy serving ln.
func NewHTTPProxy(ln net.Listener, t Tether, lim Limits, log *slog.Logger) *HTTPProxy {
	lim = lim.withDefaults()
	p := &HTTPProxy{t: t, lim: lim, log: log, conns: newConns()}
	p.ln = lim.listener(ln, &p.stats)
	p.transport = &http.Transport{
		DialContext:           p.dial,
		MaxIdleConns:          16,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	p.forward = &httputil.ReverseProxy{
		Rewrite:      func(r *httputil.ProxyRequest) { r.Out.URL = r.In.URL; r.Out.Host = r.In.Host },
		Transport:    p.transport,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) { p.failed(w, r.URL.Redacted(), err) },
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

// Close stops the listener, cancels the dials in progress, ends the
// connections and tunnels, and waits for the handlers.
func (p *HTTPProxy) Close() error {
	err := p.srv.Close()
	p.conns.closeAll()
	p.transport.CloseIdleConnections()
	return err
}

func (p *HTTPProxy) Stats() *Stats { return &p.stats }

func (p *HTTPProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !p.conns.enter() {
		http.Error(w, "rndis-netd: shutting down", http.StatusServiceUnavailable)
		return
	}
	defer p.conns.leave()
	switch {
	case r.Method == http.MethodConnect:
		p.connect(w, r)
	case r.URL.IsAbs() && r.URL.Scheme == "http":
		p.forward.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientContext{}, r.Context())))
	default:
		http.Error(w, "rndis-netd: this is a proxy: send CONNECT or an absolute http:// URI", http.StatusBadRequest)
	}
}

// clientContext is the key of a forwarded request's own context among its
// context's values. net/http's Transport dials under a context that keeps
// the request's values but not its cancellation (a later request may use
// the connection); a proxy's client that went away wants nothing any more.
type clientContext struct{}

// dial connects through the tether for a request, whose context net/http
// cancels when the client goes away.
func (p *HTTPProxy) dial(ctx context.Context, network, address string) (net.Conn, error) {
	if client, ok := ctx.Value(clientContext{}).(context.Context); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(client, cancel)
		defer stop()
	}
	return p.conns.dial(ctx, p.t.DialContext, p.lim.ConnectTimeout, network, address)
}

// failed answers a request whose destination could not be reached: 504
// after the connect timeout, 502 otherwise (the link down among them).
func (p *HTTPProxy) failed(w http.ResponseWriter, to string, err error) {
	logErr(p.log, "http proxy", err, "to", to)
	if uncounted(err) {
		return // the client is gone, or the proxy closing
	}
	p.stats.Failed.Add(1)
	status := http.StatusBadGateway
	if errors.Is(err, errConnectTimeout) {
		status = http.StatusGatewayTimeout
	}
	http.Error(w, fmt.Sprintf("rndis-netd: %v", err), status)
}

// connect opens a tunnel to r.Host through the tether.
func (p *HTTPProxy) connect(w http.ResponseWriter, r *http.Request) {
	if _, _, err := net.SplitHostPort(r.Host); err != nil {
		http.Error(w, "rndis-netd: CONNECT needs host:port", http.StatusBadRequest)
		return
	}
	far, err := p.dial(r.Context(), "tcp", r.Host)
	if err != nil {
		p.failed(w, r.Host, err)
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
	if !p.conns.add(client) {
		far.Close()
		return
	}
	defer p.conns.remove(client)
	if !p.conns.add(far) {
		client.Close()
		return
	}
	defer p.conns.remove(far)
	if _, err := io.WriteString(client, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		client.Close()
		far.Close()
		return
	}
	splice(readerConn{Conn: client, r: buf.Reader}, far, &p.stats) // the server may have read ahead
}
