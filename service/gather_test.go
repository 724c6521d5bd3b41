package service

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
)

// segmentSource is an in-process connection that hands out what it was
// given one segment per Read, as the netstack does when it wakes a reader
// per TCP segment, and honours read deadlines.
type segmentSource struct {
	net.Conn // not used: the methods below are all a relay calls
	mu       sync.Mutex
	segments [][]byte
	closed   bool
	deadline time.Time
	more     chan struct{}
}

func newSegmentSource() *segmentSource { return &segmentSource{more: make(chan struct{}, 1)} }

func (s *segmentSource) push(seg []byte, last bool) {
	s.mu.Lock()
	s.segments = append(s.segments, seg)
	s.closed = s.closed || last
	s.mu.Unlock()
	select {
	case s.more <- struct{}{}:
	default:
	}
}

func (s *segmentSource) Read(b []byte) (int, error) {
	for {
		s.mu.Lock()
		if len(s.segments) > 0 {
			n := copy(b, s.segments[0])
			s.segments = s.segments[1:]
			s.mu.Unlock()
			return n, nil
		}
		closed, deadline := s.closed, s.deadline
		s.mu.Unlock()
		if closed {
			return 0, io.EOF
		}
		var timeout <-chan time.Time
		if !deadline.IsZero() {
			timeout = time.After(time.Until(deadline))
		}
		select {
		case <-s.more:
		case <-timeout:
			return 0, &net.OpError{Op: "read", Err: deadlinePassed{}} // as gonet reports it
		}
	}
}

func (s *segmentSource) SetReadDeadline(t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deadline = t
	return nil
}

// deadlinePassed is a timeout that is not os.ErrDeadlineExceeded, as
// gVisor's gonet reports one.
type deadlinePassed struct{}

func (deadlinePassed) Error() string   { return "i/o timeout" }
func (deadlinePassed) Timeout() bool   { return true }
func (deadlinePassed) Temporary() bool { return true }

// countingWriter counts the writes a relay makes.
type countingWriter struct {
	bytes.Buffer
	writes int
}

func (w *countingWriter) Write(b []byte) (int, error) {
	w.writes++
	return w.Buffer.Write(b)
}

// Segments already queued when the relay reads go out in writes of
// gatherTarget bytes, not one write each; what trickles in after a pause
// is written without waiting for more than gatherWindow; nothing is lost
// or reordered.
func TestRelayGathersQueuedSegments(t *testing.T) {
	src := newSegmentSource()
	var want bytes.Buffer
	seg := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 1448) }
	for i := range 60 { // 60 segments queued at once: 87 KB
		src.push(seg(i), false)
		want.Write(seg(i))
	}
	var dst countingWriter
	done := make(chan int64)
	go func() { done <- copyGathering(&dst, src, make([]byte, copyBufferSize)) }()
	time.Sleep(20 * gatherWindow) // a pause: the queue is drained, the relay waits
	src.push(seg(60), true)
	want.Write(seg(60))
	if n := <-done; n != int64(want.Len()) || !bytes.Equal(dst.Bytes(), want.Bytes()) {
		t.Fatalf("copied %d bytes, want %d, intact", n, want.Len())
	}
	// 60 queued segments of 1448 bytes gather into writes of at least 8 KiB:
	// 6 segments each, 10 writes, and the last segment alone.
	if dst.writes != 11 {
		t.Errorf("%d writes for 61 segments, want 11 (6 queued segments a write, then the late one)", dst.writes)
	}
	if !src.deadline.IsZero() {
		t.Error("the relay left a read deadline on its source")
	}
}

// Only reads from the netstack are gathered, and only into a kernel socket.
func TestWhichRelaysGather(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	kernel, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer kernel.Close()
	var tether net.Conn = &gonet.TCPConn{}
	limited := &limitedConn{Conn: kernel}
	tests := []struct {
		name     string
		dst, src net.Conn
		want     bool
	}{
		{"tether to this host", kernel, tether, true},
		{"tether to this host, through the wrappers", readerConn{Conn: limited}, readerConn{Conn: tether}, true},
		{"this host to the tether", tether, kernel, false},
		{"this host to this host", kernel, limited, false},
		{"tether to tether", tether, tether, false},
	}
	for _, tt := range tests {
		if got := gathers(tt.dst, tt.src); got != tt.want {
			t.Errorf("%s: gathers = %v, want %v", tt.name, got, tt.want)
		}
	}
}
