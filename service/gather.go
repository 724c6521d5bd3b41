package service

import (
	"errors"
	"io"
	"net"
	"syscall"
	"time"
)

// A relay from the tether to a socket of this host writes once per read,
// and the netstack wakes a reader for each TCP segment it queues: one
// system call per segment, the dearest part of a relay on a small board
// (or under emulation). So a relay whose source is in-process and whose
// destination is a kernel socket gathers: after a read that brought less
// than gatherTarget bytes, it waits up to gatherWindow for more before it
// writes. An in-process read with a deadline costs no system call; the
// delay it adds is a fraction of a millisecond, below any tether's round
// trip. A kernel socket's read already returns all the kernel holds, so
// reads from one are never gathered.
const (
	gatherTarget = 8 << 10
	gatherWindow = 500 * time.Microsecond
)

// kernelSocket reports whether c, under this package's wrappers, is a
// socket of the operating system (a *net.TCPConn, say) rather than one of
// the netstack's.
func kernelSocket(c net.Conn) bool {
	for {
		switch w := c.(type) {
		case *limitedConn:
			c = w.Conn
		case readerConn:
			c = w.Conn
		case syscall.Conn:
			return true
		default:
			return false
		}
	}
}

// timeout reports whether err is a read deadline passing, however the
// connection says so (gVisor's gonet has an error type of its own).
func timeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// gathers reports whether a relay from src to dst gathers its reads.
func gathers(dst, src net.Conn) bool { return !kernelSocket(src) && kernelSocket(dst) }

// copyGathering copies src to dst through buf until src ends, gathering
// reads as the package doc of gatherTarget says. It returns the bytes
// copied.
func copyGathering(dst io.Writer, src net.Conn, buf []byte) int64 {
	var total int64
	for {
		n, err := src.Read(buf)
		if err == nil && n < gatherTarget && n > 0 {
			n, err = gatherMore(src, buf, n)
		}
		if n > 0 {
			w, werr := dst.Write(buf[:n])
			total += int64(w)
			if werr != nil {
				return total
			}
		}
		if err != nil {
			return total
		}
	}
}

// gatherMore reads on into buf[n:] while data keeps coming within
// gatherWindow and the target is not reached; it clears the deadline it
// set. It returns the bytes in buf and the error that ended src, if any.
func gatherMore(src net.Conn, buf []byte, n int) (int, error) {
	defer src.SetReadDeadline(time.Time{})
	for n < gatherTarget {
		if err := src.SetReadDeadline(time.Now().Add(gatherWindow)); err != nil {
			return n, nil
		}
		m, err := src.Read(buf[n:])
		n += m
		if timeout(err) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
