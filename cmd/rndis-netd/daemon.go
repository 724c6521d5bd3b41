package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/rndis-netd/rndis-netd/config"
	"github.com/rndis-netd/rndis-netd/link"
	"github.com/rndis-netd/rndis-netd/stack"
)

// daemon is a running rndis-netd: the tether and the services on it.
type daemon struct {
	path    string // configuration file, "" for none
	cmd     *cobra.Command
	log     *slog.Logger
	device  *device
	net     *stack.Net
	capture *os.File
	admin   *http.Server
	started time.Time

	mu         sync.Mutex
	cfg        *config.Config
	services   map[string]*running
	linkEvents map[eventKey]uint64
}

type eventKey struct{ state, cause string }

func runDaemon(cmd *cobra.Command, path string) error {
	cfg, err := config.Load(path, cmd.Flags())
	if err != nil {
		return err
	}
	return startDaemon(cmd, path, cfg, nil)
}

// startDaemon runs until SIGINT or SIGTERM. ready, if not nil, is called
// once the tether is usable.
func startDaemon(cmd *cobra.Command, path string, cfg *config.Config, ready func(*daemon)) error {
	d := newDaemon(cmd, path, cfg)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := d.start(ctx); err != nil {
		return err
	}
	if ready != nil {
		go func() {
			if d.net.Ready(ctx) == nil {
				ready(d)
			}
		}()
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			d.log.Info("shutting down")
			d.close()
			return nil
		case <-hup:
			d.reload()
		}
	}
}

func newDaemon(cmd *cobra.Command, path string, cfg *config.Config) *daemon {
	return &daemon{path: path, cmd: cmd, cfg: cfg, log: newLogger(cfg.Log, cmd.ErrOrStderr()), started: time.Now(),
		services: map[string]*running{}, linkEvents: map[eventKey]uint64{}}
}

// start brings up the tether (without waiting for a lease, nor, with
// device.wait, for the device), then the listeners, then the admin
// endpoint: once /healthz answers, every listener is up. On failure it
// undoes what it did.
func (d *daemon) start(ctx context.Context) error {
	for _, step := range []func() error{func() error { return d.open(ctx) }, func() error { return d.apply(d.cfg) }, d.startAdmin} {
		if err := step(); err != nil {
			d.close()
			return err
		}
	}
	go d.announce()
	return nil
}

// open starts the tether.
func (d *daemon) open(ctx context.Context) error {
	cfg := d.cfg
	dev, err := openDevice(cfg.Device)
	if err != nil {
		return err
	}
	d.device = dev
	if dev.phone != nil {
		d.log.Info("using the simulated phone", "preset", dev.phone.Config().Name)
	}
	opts := stack.Options{Device: dev.opener, IPv4: cfg.Network.IPv4, NoIPv6: cfg.Network.IPv6 == "off", TCP: cfg.Network.StackTCP(), Logger: d.log}
	opts.Link.MTU = cfg.Network.MTU
	opts.Link.WaitForDevice = cfg.Device.Wait
	if cfg.Network.Gateway != "" {
		opts.Gateway = netip.MustParseAddr(cfg.Network.Gateway)
	}
	for _, s := range cfg.Network.DNS {
		opts.DNS = append(opts.DNS, netip.MustParseAddr(s))
	}
	if cfg.Capture.Pcap != "" {
		f, err := os.Create(cfg.Capture.Pcap)
		if err != nil {
			return fmt.Errorf("capture.pcap: %w", err)
		}
		d.capture = f
		if opts.Link.Capture, err = link.NewPcapWriter(f); err != nil {
			return err
		}
	}
	n, err := stack.New(ctx, opts)
	if err != nil {
		return err
	}
	d.net = n
	n.Subscribe(d.onEvent)
	return nil
}

// announce logs when the tether first becomes usable.
func (d *daemon) announce() {
	if d.net.Ready(context.Background()) != nil {
		return // closed first
	}
	info := d.net.Link().Info()
	lease, _ := d.net.Lease()
	d.log.Info("tether up", "device", info.USB.String(), "mac", info.MAC.String(), "mtu", d.net.MTU(),
		"addr", lease.Addr.String(), "router", lease.Router.String())
}

// onEvent logs network events and counts link events for /metrics.
func (d *daemon) onEvent(ev stack.Event) {
	switch ev.Kind {
	case stack.EventLink:
		state := "down"
		if ev.Link.Up {
			state = "up"
		}
		d.mu.Lock()
		d.linkEvents[eventKey{state, string(ev.Link.Cause)}]++
		d.mu.Unlock()
	case stack.EventLease, stack.EventLeaseStale, stack.EventLeaseLost:
		d.log.Info("lease", "event", string(ev.Kind), "addr", ev.Lease.Addr.String(), "router", ev.Lease.Router.String(),
			"stale", ev.Lease.Stale)
	}
}

// close stops the services, releases the lease, halts the device
// (REMOTE_NDIS_HALT_MSG) and releases it.
func (d *daemon) close() {
	d.mu.Lock()
	for key, r := range d.services {
		r.stop()
		delete(d.services, key)
	}
	d.mu.Unlock()
	if d.admin != nil {
		d.admin.Close()
	}
	if d.net != nil {
		d.net.Close()
	}
	if d.capture != nil {
		d.capture.Close()
	}
	if d.device != nil {
		if p := d.device.phone; p != nil {
			d.log.Info("simulated phone stopped", "halts_from_host", p.Stats().HostHalts)
		}
		d.device.Close()
	}
}

// reload re-reads the configuration on SIGHUP: listeners and forwards are
// added and removed; an invalid file is refused and the old configuration
// stays. Changes to the device, network, log or admin keys need a restart.
func (d *daemon) reload() {
	cfg, err := config.Load(d.path, d.cmd.Flags())
	if err != nil {
		d.log.Error("reload refused, keeping the running configuration", "err", err)
		return
	}
	d.mu.Lock()
	old := d.cfg
	d.cfg = cfg
	d.mu.Unlock()
	if cfg.Device != old.Device || cfg.Log != old.Log || cfg.Admin != old.Admin || cfg.Capture != old.Capture ||
		fmt.Sprint(cfg.Network) != fmt.Sprint(old.Network) {
		d.log.Warn("reload: device, network, log, admin and capture changes take effect at the next start")
	}
	if err := d.apply(cfg); err != nil {
		d.log.Error("reload: some listeners did not start", "err", err)
	}
	d.log.Info("configuration reloaded")
}

// apply starts the services cfg lists that are not running and stops those
// it no longer lists; the ones that stay keep their connections. It
// returns why listeners did not start; the others run.
func (d *daemon) apply(cfg *config.Config) error {
	want := map[string]spec{}
	for _, s := range specs(cfg) {
		want[s.key()] = s
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for key, r := range d.services {
		if _, ok := want[key]; !ok {
			r.stop()
			delete(d.services, key)
			d.log.Info("listener stopped", r.spec.logAttrs()...)
		}
	}
	var errs []error
	for key, s := range want {
		if _, ok := d.services[key]; ok {
			continue
		}
		r, err := d.startListener(s)
		if err != nil {
			d.log.Error("listener failed", append(s.logAttrs(), "err", err)...)
			errs = append(errs, fmt.Errorf("%s listener %s: %w", s.kind, s.listen, err))
			continue
		}
		d.services[key] = r
		d.log.Info("listener started", s.logAttrs()...)
	}
	return errors.Join(errs...)
}

// hostDial connects to services of this host (for exposes).
func hostDial(ctx context.Context, network, address string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, address)
}
