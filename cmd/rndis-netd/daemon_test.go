package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/proxy"

	"github.com/rndis-netd/rndis-netd/usb/sim"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds rndis-netd once for all tests.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rndis-netd-test")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "rndis-netd")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freePort(t *testing.T, network string) string {
	t.Helper()
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		return pc.LocalAddr().String()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncBuffer collects a process's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type daemonProc struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	admin  string
	config string
	done   chan error
}

// runBinary starts `rndis-netd run --config` with the YAML text and waits
// until /healthz says the tether is up.
func runBinary(t *testing.T, yaml string) *daemonProc {
	t.Helper()
	p := startBinary(t, yaml)
	p.waitFor(t, "healthy", func() bool { return p.healthz() == http.StatusOK })
	return p
}

// startBinary starts `rndis-netd run --config` with the YAML text and an
// admin endpoint of its own, and returns at once.
func startBinary(t *testing.T, yaml string) *daemonProc {
	t.Helper()
	admin := freePort(t, "tcp")
	path := filepath.Join(t.TempDir(), "rndis-netd.yaml")
	if err := os.WriteFile(path, []byte(yaml+fmt.Sprintf("admin: {listen: %q}\n", admin)), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &daemonProc{cmd: exec.Command(binary(t), "run", "--config", path), out: &syncBuffer{}, admin: admin, config: path, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("daemon output:\n%s", p.out)
		}
	})
	return p
}

// healthz returns the status code of /healthz, 0 while nothing answers.
func (p *daemonProc) healthz() int {
	resp, err := http.Get("http://" + p.admin + "/healthz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (p *daemonProc) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("daemon exited (%v) while waiting for %s:\n%s", err, what, p.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not %s within 20s", what)
		}
	}
}

func (p *daemonProc) get(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get("http://" + p.admin + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func (p *daemonProc) post(t *testing.T, path string) {
	t.Helper()
	resp, err := http.Post("http://"+p.admin+path, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST %s: %s", path, resp.Status)
	}
}

// metric returns the value of one sample line of /metrics, "" if absent.
func (p *daemonProc) metric(t *testing.T, sample string) string {
	t.Helper()
	for _, line := range strings.Split(p.get(t, "/metrics"), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			return v
		}
	}
	return ""
}

func httpGet(t *testing.T, client *http.Client, url string) string {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func socksClient(t *testing.T, addr string, auth *proxy.Auth) *http.Client {
	t.Helper()
	d, err := proxy.SOCKS5("tcp", addr, auth, proxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{DialContext: d.(proxy.ContextDialer).DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Timeout: 10 * time.Second, Transport: tr}
}

func TestDaemonEndToEnd(t *testing.T) {
	socks, httpProxy, fwdTCP, fwdUDP := freePort(t, "tcp"), freePort(t, "tcp"), freePort(t, "tcp"), freePort(t, "udp")
	// A service of this host, exposed on the tether's port 8080.
	local, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	go http.Serve(local, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "exposed service") }))

	phone := sim.Qualcomm().PhoneAddr
	base := fmt.Sprintf(`device: {select: sim}
socks5: {listen: %q}
http_proxy: {listen: %q}
exposes:
  - {proto: tcp, listen: ":8080", connect: %q}
forwards:
  - {proto: tcp, listen: %q, connect: "%v:80"}
  - {proto: udp, listen: %q, connect: "%v:7"}
`, socks, httpProxy, local.Addr(), fwdTCP, phone, fwdUDP, phone)
	d := runBinary(t, base)

	t.Run("socks5", func(t *testing.T) {
		if got := httpGet(t, socksClient(t, socks, nil), "http://"+sim.PhoneName+"/"); got != sim.HomePage {
			t.Errorf("through SOCKS5: %q", got)
		}
	})
	t.Run("http proxy", func(t *testing.T) {
		u, _ := url.Parse("http://" + httpProxy)
		tr := &http.Transport{Proxy: http.ProxyURL(u)}
		defer tr.CloseIdleConnections()
		c := &http.Client{Timeout: 10 * time.Second, Transport: tr}
		if got := httpGet(t, c, "http://"+sim.PhoneName+"/"); got != sim.HomePage {
			t.Errorf("through the HTTP proxy: %q", got)
		}
		// CONNECT to the phone's echo port.
		conn, err := net.Dial("tcp", httpProxy)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, "CONNECT %v:7 HTTP/1.1\r\nHost: %v:7\r\n\r\n", phone, phone)
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("CONNECT: %v %v", resp, err)
		}
		io.WriteString(conn, "tunnel")
		buf := make([]byte, 6)
		if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "tunnel" {
			t.Errorf("echo through CONNECT: %q %v", buf, err)
		}
	})
	t.Run("tcp forward", func(t *testing.T) {
		if got := httpGet(t, http.DefaultClient, "http://"+fwdTCP+"/"); got != sim.HomePage {
			t.Errorf("through the forward: %q", got)
		}
	})
	t.Run("udp forward", func(t *testing.T) {
		c, err := net.Dial("udp", fwdUDP)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write([]byte("datagram"))
		buf := make([]byte, 100)
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != "datagram" {
			t.Errorf("UDP echo through the forward: %q %v", buf[:n], err)
		}
	})
	var status statusDoc
	t.Run("status", func(t *testing.T) {
		if err := json.Unmarshal([]byte(d.get(t, "/status")), &status); err != nil {
			t.Fatal(err)
		}
		if status.Device == nil || status.Device.ID != "05c6:9024" || status.Device.MTU != 1500 || status.Device.MAC == "" || !status.Link.Up || status.Link.State != "up" ||
			status.Lease == nil || !strings.HasPrefix(status.Lease.Address, "192.168.42.") || len(status.Listeners) != 5 ||
			status.Backend != backendSim {
			t.Errorf("status %+v", status)
		}
	})
	t.Run("expose", func(t *testing.T) {
		addr := strings.Split(status.Lease.Address, "/")[0]
		if got := d.get(t, "/sim/fetch?url="+url.QueryEscape("http://"+addr+":8080/")); got != "exposed service" {
			t.Errorf("from the phone's side: %q", got)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		if v := d.metric(t, "rndis_netd_link_up"); v != "1" {
			t.Errorf("link_up %q", v)
		}
		if v := d.metric(t, `rndis_netd_device_info{id="05c6:9024",protocol="rndis"}`); v != "1" {
			t.Errorf("device_info %q", v)
		}
		if v := d.metric(t, fmt.Sprintf(`rndis_netd_proxy_connections_total{kind="socks5",listen=%q}`, socks)); v != "1" {
			t.Errorf("socks5 connections %q", v)
		}
		if v := d.metric(t, `rndis_netd_device_faults_total{cause="malformed transfer"}`); v != "0" {
			t.Errorf("malformed transfers from a well-behaved phone: %q", v)
		}
		for _, name := range []string{"rndis_netd_bytes_total", "rndis_netd_packets_per_transfer_bucket", "rndis_netd_tcp_stat"} {
			if !strings.Contains(d.get(t, "/metrics"), name) {
				t.Errorf("no %s", name)
			}
		}
	})
	t.Run("link down and up", func(t *testing.T) {
		d.post(t, "/sim/unplug")
		d.waitFor(t, "link_up 0", func() bool { return d.metric(t, "rndis_netd_link_up") == "0" })
		if code := d.healthz(); code != 503 {
			t.Errorf("healthz while unplugged: %d", code)
		}
		d.post(t, "/sim/replug")
		d.waitFor(t, "link_up 1", func() bool { return d.metric(t, "rndis_netd_link_up") == "1" })
		d.post(t, "/sim/halt")
		d.waitFor(t, "the halt counted", func() bool {
			return d.metric(t, `rndis_netd_link_events_total{cause="device halt",state="down"}`) == "1"
		})
		d.waitFor(t, "link_up 1 after the halt", func() bool { return d.metric(t, "rndis_netd_link_up") == "1" })
		if v := d.metric(t, `rndis_netd_link_events_total{cause="device gone",state="down"}`); v != "1" {
			t.Errorf("device gone events %q", v)
		}
		if got := httpGet(t, http.DefaultClient, "http://"+fwdTCP+"/"); got != sim.HomePage {
			t.Errorf("after recovery: %q", got)
		}
	})
	t.Run("reload", func(t *testing.T) {
		extra := freePort(t, "tcp")
		admin := fmt.Sprintf("admin: {listen: %q}\n", d.admin)
		os.WriteFile(d.config, []byte("log: [broken\n"), 0o600)
		d.cmd.Process.Signal(syscall.SIGHUP)
		d.waitFor(t, "the broken reload refused", func() bool { return strings.Contains(d.out.String(), "reload refused") })
		if got := httpGet(t, http.DefaultClient, "http://"+fwdTCP+"/"); got != sim.HomePage {
			t.Errorf("old forward after a refused reload: %q", got)
		}
		yaml := base + fmt.Sprintf("  - {proto: tcp, listen: %q, connect: \"%v:80\"}\n", extra, phone) + admin
		os.WriteFile(d.config, []byte(yaml), 0o600)
		d.cmd.Process.Signal(syscall.SIGHUP)
		d.waitFor(t, "the new forward", func() bool {
			c, err := net.Dial("tcp", extra)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
		if got := httpGet(t, http.DefaultClient, "http://"+extra+"/"); got != sim.HomePage {
			t.Errorf("through the added forward: %q", got)
		}
	})
	t.Run("sigterm", func(t *testing.T) {
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-d.done:
			d.done <- err
			if err != nil {
				t.Errorf("exit: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("no exit after SIGTERM")
		}
		if !strings.Contains(d.out.String(), "halts_from_host=1") {
			t.Errorf("the phone did not record one HALT:\n%s", d.out)
		}
	})
}

// SOCKS5 with username and password: the right ones pass, others do not,
// and the password appears neither in the log (at debug level, across a
// reload) nor in /status.
func TestDaemonSOCKS5Authentication(t *testing.T) {
	socks := freePort(t, "tcp")
	const password = "pw-Zq8-s3cret"
	d := runBinary(t, fmt.Sprintf("device: {select: sim}\nlog: {level: debug}\nsocks5: {listen: %q, username: alice, password: %s}\n", socks, password))
	if got := httpGet(t, socksClient(t, socks, &proxy.Auth{User: "alice", Password: password}), "http://"+sim.PhoneName+"/"); got != sim.HomePage {
		t.Errorf("with credentials: %q", got)
	}
	for _, auth := range []*proxy.Auth{nil, {User: "alice", Password: "wrong"}, {User: "alice", Password: password + "x"}} {
		if _, err := socksClient(t, socks, auth).Get("http://" + sim.PhoneName + "/"); err == nil {
			t.Errorf("auth %+v accepted", auth)
		}
	}
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitFor(t, "the reload", func() bool { return strings.Contains(d.out.String(), "configuration reloaded") })
	status := d.get(t, "/status")
	if !strings.Contains(status, "username/password") {
		t.Errorf("/status does not say the proxy has authentication:\n%s", status)
	}
	for where, text := range map[string]string{"the log": d.out.String(), "/status": status, "/metrics": d.get(t, "/metrics")} {
		if strings.Contains(text, password) {
			t.Errorf("the password appears in %s", where)
		}
	}
}

// Every file of the broken-configuration corpus (config/testdata/broken,
// whose first lines name the key) stops the daemon with exit status 2 and
// a message naming the key; so do a missing and an unreadable file.
func TestBrokenConfigExitsWithStatus2(t *testing.T) {
	files, _ := filepath.Glob("../../config/testdata/broken/*")
	cases := map[string]string{filepath.Join(t.TempDir(), "missing.yaml"): "(file)", t.TempDir(): "(file)"}
	for _, f := range files {
		text, _ := os.ReadFile(f)
		first, _, _ := strings.Cut(string(text), "\n")
		cases[f] = strings.TrimPrefix(first, "# key: ")
	}
	if len(cases) < 32 {
		t.Fatalf("%d broken configurations, want at least 32", len(cases))
	}
	for path, key := range cases {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := exec.CommandContext(ctx, binary(t), "run", "--config", path).CombinedOutput()
		cancel()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 {
			t.Errorf("%s: exit %v, want status 2\n%s", path, err, out)
		}
		if !strings.Contains(string(out), key) {
			t.Errorf("%s: message does not name %s:\n%s", path, key, out)
		}
	}
}

func TestProbeAndVersion(t *testing.T) {
	out, err := exec.Command(binary(t), "probe", "--device.select", "sim:linux-gadget").CombinedOutput()
	if err != nil {
		t.Fatalf("probe: %v\n%s", err, out)
	}
	for _, want := range []string{"backend:                  sim", "max transfer size:        1580", "max packets per transfer: 1", "mtu:                      1500", "OID_802_3_PERMANENT_ADDRESS"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("probe output lacks %q:\n%s", want, out)
		}
	}
	if out, err := exec.Command(binary(t), "version").CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "rndis-netd ") {
		t.Errorf("version: %q %v", out, err)
	}
}

// `rndis-netd list` prints the rule of examples/70-rndis-netd.rules.
func TestListHintMatchesTheExampleRule(t *testing.T) {
	rules, err := os.ReadFile("../../examples/70-rndis-netd.rules")
	if err != nil {
		t.Fatal(err)
	}
	rule := udevRule()[strings.LastIndex(udevRule(), "\n")+1:]
	if !strings.Contains(string(rules), rule) {
		t.Errorf("examples/70-rndis-netd.rules lacks the rule list prints:\n%s", rule)
	}
}

// list takes device.backend from the configuration, the environment or
// its flag, and says which it used; an unknown one is a configuration error.
func TestListNamesItsBackend(t *testing.T) {
	out, err := exec.Command(binary(t), "list", "--device.backend", "usbfs").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "backend: usbfs\n") {
		t.Errorf("list with usbfs: %v\n%s", err, out)
	}
	cmd := exec.Command(binary(t), "list")
	cmd.Env = append(os.Environ(), "RNDIS_NETD_DEVICE_BACKEND=winusb")
	out, err = cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitConfig || !strings.Contains(string(out), "device.backend") {
		t.Errorf("list with backend winusb: %v, want exit %d naming device.backend\n%s", err, exitConfig, out)
	}
}
