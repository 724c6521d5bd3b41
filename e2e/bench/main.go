// Command bench is the e2e guest's cellular-path benchmark tool
// (e2e/guest/cellular.sh): one TCP stream, timed, through the kernel's
// TCP, through rndis-netd's forwards, or through rndis-netd's stack
// embedded in this process (-embedded: stack.Open on the USB device).
//
//	bench sink -listen :9000 -dir /tmp          # the upload sink, in the "internet"
//	bench get -addr 10.99.0.2:80 -path /f.bin -size 16777216 [-embedded -recovery rack -cc reno]
//	bench put -addr 10.99.0.2:9000 -size 16777216 [...]
//	bench get|put ... -stall 10 -down 3s -udc /sys/kernel/config/usb_gadget/g1/UDC -healthz URL
//	bench get|put ... -stall 10 -down 3s -down-cmd 'ip link set usb0 down' -up-cmd 'ip link set usb0 up' -healthz URL
//	bench get|put ... -stall 10 -down 3s -down-cmd ... -up-cmd ... -up-at-end   # through the kernel's rndis_host
//
// get fetches -path from busybox httpd with HTTP/1.0 and counts the body;
// put sends "PUT <size> <id>\n" and -size bytes to the sink, which answers
// the count it read once it has them all, so the time is the receiver's,
// not the time to fill a send buffer. Each prints one line:
//
//	RESULT <bytes> <seconds> <MB/s>
//
// With -stall N the stream runs until N link outages are done: each one
// unbinds the gadget's UDC for -down and binds it again (an unplug), or
// runs -down-cmd and -up-cmd, waits for the link to be up (the daemon's
// /healthz, the embedded stack's link event, or with -up-at-end the up
// command's return) and then for the receiver's byte count to move,
// printing
//
//	STALL <i> up_after_end=<ms> moving_after_up=<ms> [sender_rto_due_after_up=<ms> sender_rto=<ms> sender_timeouts=<n>]
//
// (the sender's fields with -sender-tcp, for a download: when the Linux
// server's next retransmission was due, its backed-off timeout, and the
// timeouts since its data was last acknowledged).
//
// The receiver records when bytes arrived (the sink writes its record to
// -dir/<id>.tl), so "moving" means bytes crossed the path, not that a
// send buffer took them.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rndis-netd/rndis-netd/stack"
	"github.com/rndis-netd/rndis-netd/usb"
	tcpipstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

func main() {
	if len(os.Args) < 2 {
		log.Fatal("usage: bench sink|get|put [flags]")
	}
	log.SetFlags(0)
	log.SetPrefix("bench: ")
	mode := os.Args[1]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	listen := fs.String("listen", ":9000", "sink: address to listen on")
	dir := fs.String("dir", "/tmp", "sink: where the arrival records go")
	addr := fs.String("addr", "", "get/put: the server")
	path := fs.String("path", "/cell.bin", "get: the file")
	size := fs.Int64("size", 16<<20, "get/put: bytes (get: the file's size, checked)")
	embedded := fs.Bool("embedded", false, "use rndis-netd's stack in this process on the USB device")
	recovery := fs.String("recovery", "", "embedded: TCP loss recovery, off or rack (default: stack's)")
	backendName := fs.String("backend", "auto", "embedded: the USB backend, auto, usbfs or libusb")
	cc := fs.String("cc", "", "embedded: congestion control, reno or cubic (default: stack's)")
	stall := fs.Int("stall", 0, "take the link down this many times during the stream")
	down := fs.Duration("down", 3*time.Second, "stall: how long the UDC stays unbound")
	udc := fs.String("udc", "/sys/kernel/config/usb_gadget/g1/UDC", "stall: the gadget's UDC file")
	udcName := fs.String("udc-name", "dummy_udc.0", "stall: the UDC to bind")
	chownUSB := fs.Int("chown-usb", -1, "stall: after each bind, give the new USB device nodes to this uid and gid (what udev does)")
	downCmd := fs.String("down-cmd", "", "stall: a shell command that takes the link down instead of unbinding the UDC")
	upCmd := fs.String("up-cmd", "", "stall, with -down-cmd: the shell command that brings it back")
	healthz := fs.String("healthz", "", "stall, not embedded: the daemon's /healthz, 200 while the link is up")
	upAtEnd := fs.Bool("up-at-end", false, "stall, not embedded: the link is up once the outage's up command returns (rndis_host keeps no link state)")
	window := fs.Duration("window", 6*time.Second, "stall: how long after the link is up the stream has to move")
	senderTable := fs.String("sender-tcp", "", "stall, get: the server's /proc/PID/net/tcp, to report its retransmission timer at each link-up")
	senderPort := fs.Int("sender-port", 80, "stall, get: the server's port in -sender-tcp")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	fs.Parse(os.Args[2:])

	if mode == "sink" {
		log.Fatal(sink(*listen, *dir))
	}
	if mode != "get" && mode != "put" {
		log.Fatalf("unknown mode %q", mode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	dial := func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", *addr)
	}
	var links *linkWatch
	var tetherStack *tcpipstack.Stack
	if *embedded {
		backend, err := usb.ParseBackend(*backendName)
		if err != nil {
			log.Fatal(err)
		}
		host, err := usb.NewHost(backend)
		if err != nil {
			log.Fatal(err)
		}
		defer host.Close()
		opts := stack.Options{Device: host.Opener(usb.Selector{}), NoIPv6: true,
			TCP: stack.TCP{Recovery: stack.Recovery(*recovery), CongestionControl: *cc}}
		openCtx, openCancel := context.WithTimeout(ctx, time.Minute)
		tether, err := stack.Open(openCtx, opts)
		openCancel()
		if err != nil {
			log.Fatal(err)
		}
		defer tether.Close()
		tetherStack = tether.Stack()
		links = &linkWatch{}
		links.up.Store(true)
		tether.Subscribe(func(ev stack.Event) {
			if ev.Kind == stack.EventLink {
				links.set(ev.Link.Up, ev.Time)
			}
		})
		dial = func(ctx context.Context) (net.Conn, error) { return tether.DialContext(ctx, "tcp", *addr) }
	} else if *stall > 0 {
		switch {
		case *upAtEnd:
			links = &linkWatch{}
			links.up.Store(true)
		case *healthz != "":
			links = pollHealthz(ctx, *healthz)
		default:
			log.Fatal("-stall needs -healthz, -up-at-end or -embedded")
		}
	}

	conn, err := dial(ctx)
	if err != nil {
		if tetherStack != nil { // what the route lookup saw
			log.Printf("routes %v", tetherStack.GetRouteTable())
			for id, info := range tetherStack.NICInfo() {
				log.Printf("nic %d enabled=%v up=%v addrs %v", id, tetherStack.CheckNIC(id), info.Flags.Up, info.ProtocolAddresses)
			}
		}
		log.Fatal(err)
	}
	defer conn.Close()
	if *stall > 0 {
		*size = 1 << 40 // the stream outlasts the outages
	}
	run := &stream{conn: conn, size: *size, sinkDir: *dir, id: fmt.Sprintf("put-%d", time.Now().UnixNano())}
	if mode == "get" {
		run.get, run.path = true, *path
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- run.do() }()

	if *stall == 0 {
		if err := <-done; err != nil {
			log.Fatal(err)
		}
		s := time.Since(start).Seconds()
		fmt.Printf("RESULT %d %.2f %.3f\n", *size, s, float64(*size)/s/1e6)
		return
	}

	var sender func() (senderTimer, error)
	if *senderTable != "" && run.get {
		sender = func() (senderTimer, error) { return readSenderTimer(*senderTable, *senderPort) }
	}
	cut := unplug(ctx, *udc, *udcName, *chownUSB)
	if *downCmd != "" {
		cut = commands(*downCmd, *upCmd)
	}
	if *upAtEnd && !*embedded {
		cut = cut.watchedBy(links)
	}
	outs, err := outages(ctx, *stall, *down, *window, cut, links, sender, done)
	conn.Close() // ends the stream; its error is expected
	if err != nil {
		log.Fatal(err)
	}
	arrivals := run.arrivals()
	if !run.get {
		time.Sleep(time.Second) // the sink's next write of its record covers the last window
		if arrivals, err = readArrivals(filepath.Join(*dir, run.id+".tl"), 15*time.Second); err != nil {
			log.Fatal(err)
		}
	}
	report(outs, arrivals, *window)
}

// linkWatch is the link's state and the times it came up.
type linkWatch struct {
	up  atomic.Bool
	mu  sync.Mutex
	ups []time.Time
}

func (l *linkWatch) set(up bool, at time.Time) {
	if up && !l.up.Load() {
		l.mu.Lock()
		l.ups = append(l.ups, at)
		l.mu.Unlock()
	}
	l.up.Store(up)
}

func (l *linkWatch) upsAfter(t time.Time) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, u := range l.ups {
		if u.After(t) {
			return u, true
		}
	}
	return time.Time{}, false
}

// pollHealthz watches the daemon's /healthz every 20 ms; a poll's time is
// when its request was sent, so an up is never later than it was seen.
func pollHealthz(ctx context.Context, url string) *linkWatch {
	l := &linkWatch{}
	l.up.Store(true)
	c := &http.Client{Timeout: 2 * time.Second}
	go func() {
		for ctx.Err() == nil {
			t := time.Now()
			resp, err := c.Get(url)
			up := err == nil && resp.StatusCode == 200
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			l.set(up, t)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return l
}

// outage is one link outage: when it ended (the UDC bound again, or the
// up command run), when the link was up, and the download sender's
// retransmission timer then.
type outage struct {
	end, up time.Time
	sender  *senderTimer
}

// cutter takes the link down and brings it back.
type cutter struct {
	down, up func() error
}

// watchedBy is c telling links the link is down when c.down has run and
// up when c.up has: for a host whose driver keeps no link state, as
// rndis_host, which only logs RNDIS media indications.
func (c cutter) watchedBy(links *linkWatch) cutter {
	return cutter{
		down: func() error { err := c.down(); links.set(false, time.Now()); return err },
		up:   func() error { err := c.up(); links.set(true, time.Now()); return err },
	}
}

// unplug is the cutter that unbinds the gadget's UDC (the host sees the
// device go) and binds it again, then gives the new device nodes to owner.
func unplug(ctx context.Context, udc, name string, owner int) cutter {
	return cutter{
		down: func() error { return os.WriteFile(udc, []byte("\n"), 0) },
		up: func() error {
			if err := os.WriteFile(udc, []byte(name+"\n"), 0); err != nil {
				return err
			}
			if owner >= 0 {
				go chownUSB(ctx, owner, time.Now().Add(10*time.Second))
			}
			return nil
		},
	}
}

// commands is the cutter that runs two shell commands, such as taking the
// gadget's interface down and up (the gadget then tells the host the
// medium is disconnected, and connected again).
func commands(down, up string) cutter {
	run := func(cmd string) func() error {
		return func() error {
			if out, err := exec.Command("/bin/sh", "-c", cmd).CombinedOutput(); err != nil {
				return fmt.Errorf("%s: %v: %s", cmd, err, out)
			}
			return nil
		}
	}
	return cutter{down: run(down), up: run(up)}
}

// outages takes the link down n times: after 2 s of streaming, cut.down,
// then cut.up after down; it waits for the link to be up, reads the
// sender's timer (sender, if not nil), and then gives the stream window to
// move before the next one.
func outages(ctx context.Context, n int, down, window time.Duration, cut cutter, links *linkWatch, sender func() (senderTimer, error), done <-chan error) (outs []outage, err error) {
	sleep := func(d time.Duration) error {
		select {
		case err := <-done:
			return fmt.Errorf("the stream ended during the outages: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
			return nil
		}
	}
	if err := sleep(2 * time.Second); err != nil {
		return nil, err
	}
	for i := range n {
		if err := cut.down(); err != nil {
			return nil, fmt.Errorf("outage %d: taking the link down: %v", i+1, err)
		}
		if err := sleep(down); err != nil {
			return nil, err
		}
		if links.up.Load() {
			return nil, fmt.Errorf("outage %d: the link was still up after %v down", i+1, down)
		}
		end := time.Now()
		if err := cut.up(); err != nil {
			return nil, fmt.Errorf("outage %d: bringing the link back: %v", i+1, err)
		}
		deadline := end.Add(30 * time.Second)
		var up time.Time
		for {
			var ok bool
			if up, ok = links.upsAfter(end.Add(-time.Millisecond)); ok {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("outage %d: the link did not come up within 30 s of the outage's end", i+1)
			}
			if err := sleep(10 * time.Millisecond); err != nil {
				return nil, err
			}
		}
		o := outage{end: end, up: up}
		if sender != nil {
			if t, err := sender(); err != nil {
				log.Printf("outage %d: the sender's timer: %v", i+1, err)
			} else {
				o.sender = &t
			}
		}
		outs = append(outs, o)
		if err := sleep(time.Until(up.Add(window))); err != nil {
			return nil, err
		}
		fmt.Fprintf(os.Stderr, "bench: outage %d: link up %v after its end\n", i+1, up.Sub(end).Round(time.Millisecond))
	}
	return outs, nil
}

// chownUSB gives every USB device node not owned by uid to uid and gid
// (0660), every 10 ms until deadline, as udev's rule would the device's.
func chownUSB(ctx context.Context, uid int, deadline time.Time) {
	for ctx.Err() == nil && time.Now().Before(deadline) {
		nodes, _ := filepath.Glob("/dev/bus/usb/*/*")
		for _, n := range nodes {
			if fi, err := os.Stat(n); err == nil {
				if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != uid {
					os.Chown(n, uid, uid)
					os.Chmod(n, 0o660)
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// report prints each outage's recovery: from the link's up to the first
// arrival after it that added bytes, and their distribution. Where the
// sender's timer was read, it adds when its next retransmission was due
// after the link was up, its backed-off timeout and how many timeouts had
// passed.
func report(outs []outage, arr []arrival, window time.Duration) {
	var recs []float64
	ok := 0
	for i, o := range outs {
		up := o.up
		senderNote := ""
		if t := o.sender; t != nil {
			senderNote = fmt.Sprintf(" sender_rto_due_after_up=%d sender_rto=%d sender_timeouts=%d",
				t.leftAfter(up).Milliseconds(), t.rto.Milliseconds(), t.timeouts)
		}
		var base int64
		var moved time.Time
		for _, a := range arr {
			if !a.t.After(up) {
				base = a.total
				continue
			}
			if a.total > base {
				moved = a.t
				break
			}
		}
		upMs := up.Sub(o.end).Milliseconds()
		if moved.IsZero() || moved.Sub(up) > window {
			fmt.Printf("STALL %d up_after_end=%d moving_after_up=never%s\n", i+1, upMs, senderNote)
			continue
		}
		ms := float64(moved.Sub(up).Milliseconds())
		recs = append(recs, ms)
		if ms <= 2000 {
			ok++
		}
		fmt.Printf("STALL %d up_after_end=%d moving_after_up=%.0f%s\n", i+1, upMs, ms, senderNote)
	}
	sort.Float64s(recs)
	q := func(p float64) string {
		if len(recs) == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f", recs[int(p*float64(len(recs)-1)+0.5)])
	}
	fmt.Printf("STALLSUM within_2s=%d/%d min=%s median=%s p90=%s max=%s (ms)\n", ok, len(outs), q(0), q(0.5), q(0.9), q(1))
}

// arrival is when the receiver's byte count reached total.
type arrival struct {
	t     time.Time
	total int64
}

// recorder keeps an arrival at most every 5 ms, and always the first
// after a gap, which is what a recovery time is measured to.
type recorder struct {
	mu    sync.Mutex
	total int64
	arr   []arrival
}

func (r *recorder) add(n int) {
	now := time.Now()
	r.mu.Lock()
	r.total += int64(n)
	if len(r.arr) == 0 || now.Sub(r.arr[len(r.arr)-1].t) >= 5*time.Millisecond {
		r.arr = append(r.arr, arrival{now, r.total})
	} else {
		r.arr[len(r.arr)-1].total = r.total
	}
	r.mu.Unlock()
}

func (r *recorder) write(path string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, a := range r.arr {
		fmt.Fprintf(&b, "%d %d\n", a.t.UnixNano(), a.total)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readArrivals(path string, wait time.Duration) ([]arrival, error) {
	deadline := time.Now().Add(wait)
	var data []byte
	var err error
	for {
		if data, err = os.ReadFile(path); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("the sink's record: %v", err)
	}
	var arr []arrival
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var ns, total int64
		if _, err := fmt.Sscanf(line, "%d %d", &ns, &total); err != nil {
			return nil, fmt.Errorf("%s: %q: %v", path, line, err)
		}
		arr = append(arr, arrival{time.Unix(0, ns), total})
	}
	return arr, nil
}

// stream is one download or upload on conn.
type stream struct {
	conn    net.Conn
	get     bool
	path    string
	size    int64
	sinkDir string
	id      string
	rec     recorder
}

func (s *stream) arrivals() []arrival {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	return append([]arrival(nil), s.rec.arr...)
}

func (s *stream) do() error {
	if s.get {
		return s.download()
	}
	return s.upload()
}

func (s *stream) download() error {
	if _, err := fmt.Fprintf(s.conn, "GET %s HTTP/1.0\r\nHost: internet\r\n\r\n", s.path); err != nil {
		return err
	}
	br := bufio.NewReaderSize(s.conn, 64<<10)
	status, err := br.ReadString('\n')
	if err != nil {
		return fmt.Errorf("the response: %v", err)
	}
	if !strings.Contains(status, " 200 ") {
		return fmt.Errorf("the response: %q", strings.TrimSpace(status))
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return fmt.Errorf("the response's header: %v", err)
		}
		if line == "\r\n" || line == "\n" {
			break
		}
	}
	buf := make([]byte, 64<<10)
	var got int64
	for got < s.size {
		n, err := br.Read(buf)
		got += int64(n)
		s.rec.add(n)
		if err != nil {
			if errors.Is(err, io.EOF) && got == s.size {
				break
			}
			return fmt.Errorf("after %d of %d bytes: %v", got, s.size, err)
		}
	}
	if got != s.size {
		return fmt.Errorf("got %d bytes, want %d", got, s.size)
	}
	return nil
}

func (s *stream) upload() error {
	if _, err := fmt.Fprintf(s.conn, "PUT %d %s\n", s.size, s.id); err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	for left := s.size; left > 0; {
		n := int64(len(buf))
		if left < n {
			n = left
		}
		m, err := s.conn.Write(buf[:n])
		left -= int64(m)
		if err != nil {
			return fmt.Errorf("with %d bytes left: %v", left, err)
		}
	}
	reply, err := bufio.NewReader(s.conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("the sink's count: %v", err)
	}
	if strings.TrimSpace(reply) != strconv.FormatInt(s.size, 10) {
		return fmt.Errorf("the sink counted %q bytes, want %d", strings.TrimSpace(reply), s.size)
	}
	return nil
}

// sink serves uploads: a "PUT <size> <id>" line, then size bytes, counted;
// the count is the answer. The arrival record goes to dir/<id>.tl when
// the connection ends, complete or not.
func sink(listen, dir string) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			br := bufio.NewReaderSize(c, 64<<10)
			line, err := br.ReadString('\n')
			var size int64
			var id string
			if err == nil {
				_, err = fmt.Sscanf(line, "PUT %d %s", &size, &id)
			}
			if err != nil || strings.ContainsAny(id, "/.") {
				log.Printf("sink: %v: bad request %q: %v", c.RemoteAddr(), line, err)
				return
			}
			// The record is also written every 500 ms: through a
			// forward, the end of the stream comes only once the relay's
			// send buffer has drained, seconds after the client's close.
			var rec recorder
			path := filepath.Join(dir, id+".tl")
			done := make(chan struct{})
			ticker := make(chan struct{})
			go func() {
				defer close(ticker)
				for {
					select {
					case <-done:
						return
					case <-time.After(500 * time.Millisecond):
						rec.write(path)
					}
				}
			}()
			buf := make([]byte, 64<<10)
			for rec.total < size {
				want := int64(len(buf))
				if size-rec.total < want {
					want = size - rec.total
				}
				n, err := br.Read(buf[:want])
				rec.add(n)
				if err != nil {
					break
				}
			}
			close(done)
			<-ticker // one writer at a time: they share the temporary file
			if err := rec.write(path); err != nil {
				log.Printf("sink: %v", err)
			}
			fmt.Fprintf(c, "%d\n", rec.total)
		}()
	}
}
