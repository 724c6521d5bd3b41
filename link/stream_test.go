package link

import (
	"crypto/sha256"
	"errors"
	"hash"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// soak reports whether the long variants run (make soak).
func soak() bool { return os.Getenv("RNDIS_NETD_SOAK") != "" }

// echoRun streams pseudo-random bytes to the phone's echo server and reads
// them back, until Stop: the bytes cross the link in both directions.
type echoRun struct {
	c        net.Conn
	stop     chan struct{}
	wg       sync.WaitGroup
	sent     hash.Hash
	got      hash.Hash
	nSent    atomic.Int64
	nGot     atomic.Int64
	writeErr error
	readErr  error
}

func startEcho(c net.Conn, seed uint64) *echoRun {
	r := &echoRun{c: c, stop: make(chan struct{}), sent: sha256.New(), got: sha256.New()}
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		src := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24)})
		buf := make([]byte, 32<<10)
		for {
			select {
			case <-r.stop:
				r.writeErr = c.(interface{ CloseWrite() error }).CloseWrite()
				return
			default:
			}
			src.Read(buf)
			n, err := c.Write(buf)
			r.sent.Write(buf[:n])
			r.nSent.Add(int64(n))
			if err != nil {
				r.writeErr = err
				return
			}
		}
	}()
	go func() {
		defer r.wg.Done()
		n, err := io.Copy(io.MultiWriter(r.got, counter{&r.nGot}), c)
		if err != nil || n != r.nSent.Load() {
			r.readErr = errors.Join(err, errors.New("stream ended early"))
		}
	}()
	return r
}

type counter struct{ n *atomic.Int64 }

func (c counter) Write(p []byte) (int, error) { c.n.Add(int64(len(p))); return len(p), nil }

// waitProgress waits until another n bytes have come back; state, if not
// nil, describes what a failure should show besides the goroutines.
func (r *echoRun) waitProgress(t testing.TB, n int64, within time.Duration, state ...func() string) {
	t.Helper()
	target := r.nGot.Load() + n
	for deadline := time.Now().Add(within); r.nGot.Load() < target; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			var more string
			for _, s := range state {
				more += s() + "\n"
			}
			buf := make([]byte, 1<<20)
			t.Fatalf("the stream moved %d of %d bytes in %v\n%sgoroutines:\n%s", n-(target-r.nGot.Load()), n, within,
				more, buf[:runtime.Stack(buf, true)])
		}
	}
}

// finish stops the writer, waits for the echo of everything sent, and
// fails t unless what came back is byte for byte what was sent; state, as
// for waitProgress, describes what a failure should show.
func (r *echoRun) finish(t testing.TB, within time.Duration, state ...func() string) int64 {
	t.Helper()
	close(r.stop)
	r.c.SetDeadline(time.Now().Add(within))
	r.wg.Wait()
	r.c.Close()
	if r.writeErr != nil || r.readErr != nil {
		var more string
		for _, s := range state {
			more += "\n" + s()
		}
		t.Fatalf("stream: write %v, read %v (%d bytes sent, %d back)%s", r.writeErr, r.readErr, r.nSent.Load(), r.nGot.Load(), more)
	}
	if string(r.sent.Sum(nil)) != string(r.got.Sum(nil)) {
		t.Fatalf("SHA-256 of the %d bytes sent differs from that of the %d echoed", r.nSent.Load(), r.nGot.Load())
	}
	return r.nGot.Load()
}
