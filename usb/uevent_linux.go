package usb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// uevent is one kernel uevent: "ACTION@DEVPATH", then NUL-separated
// KEY=VALUE pairs.
type uevent struct {
	Action, DevPath         string
	Subsystem, DevType      string
	BusNum, DevNum, DevName string
}

// parseUevent parses a message of the kernel's uevent group; false for one
// that is not (udev's own, on another group, begin "libudev").
func parseUevent(b []byte) (uevent, bool) {
	head, rest, _ := bytes.Cut(b, []byte{0})
	action, path, ok := bytes.Cut(head, []byte("@"))
	if !ok || len(action) == 0 {
		return uevent{}, false
	}
	e := uevent{Action: string(action), DevPath: string(path)}
	for len(rest) > 0 {
		var kv []byte
		kv, rest, _ = bytes.Cut(rest, []byte{0})
		k, v, _ := bytes.Cut(kv, []byte("="))
		switch string(k) {
		case "SUBSYSTEM":
			e.Subsystem = string(v)
		case "DEVTYPE":
			e.DevType = string(v)
		case "BUSNUM":
			e.BusNum = string(v)
		case "DEVNUM":
			e.DevNum = string(v)
		case "DEVNAME":
			e.DevName = string(v)
		}
	}
	return e, true
}

// plugged reports whether the event is a USB device that may now be
// opened: added, or bound to the kernel's generic USB driver (which it is
// once its configuration is set).
func (e uevent) plugged() bool {
	return e.Subsystem == "usb" && e.DevType == "usb_device" && (e.Action == "add" || e.Action == "bind")
}

// ueventPoll is how long a wait lasts where netlink is refused (a sandbox
// without NETLINK_KOBJECT_UEVENT): the caller then tries again.
const ueventPoll = time.Second

// ueventWatcher waits for USB devices to appear, on a NETLINK_KOBJECT_UEVENT
// socket, which needs no privileges. The socket is opened at the first wait
// and kept until Close, so that an event between two waits is not lost.
type ueventWatcher struct {
	mu      sync.Mutex // one wait at a time
	fmu     sync.Mutex // file and closed, for Close to wake a wait
	file    *os.File
	refused error // why there is no socket
	closed  bool
	buf     []byte
}

func newUeventWatcher() *ueventWatcher { return &ueventWatcher{} }

func openUevents() (*os.File, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return nil, fmt.Errorf("usb: uevent socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("usb: binding the uevent socket: %w", err)
	}
	return os.NewFile(uintptr(fd), "uevent"), nil
}

// wait returns when a USB device was plugged in or bound, or when ctx ends
// (nil then too: the caller looks at the bus either way). Where netlink is
// refused it returns after ueventPoll.
func (w *ueventWatcher) wait(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fmu.Lock()
	if w.closed {
		w.fmu.Unlock()
		return errClosed
	}
	if w.file == nil && w.refused == nil {
		w.file, w.refused = openUevents()
		w.buf = make([]byte, 8192)
	}
	w.fmu.Unlock()
	if w.refused != nil {
		t := time.NewTimer(ueventPoll)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		return nil
	}
	stop := context.AfterFunc(ctx, func() { w.file.SetReadDeadline(time.Now()) })
	defer stop()
	w.file.SetReadDeadline(time.Time{})
	for ctx.Err() == nil {
		n, err := w.file.Read(w.buf)
		switch {
		case errors.Is(err, unix.ENOBUFS):
			return nil // events were lost: one may have been ours
		case err != nil:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("usb: reading uevents: %w", err)
		}
		if e, ok := parseUevent(w.buf[:n]); ok && e.plugged() {
			return nil
		}
	}
	return nil
}

// Close closes the socket; a wait under way ends first.
func (w *ueventWatcher) Close() error {
	w.fmu.Lock()
	w.closed = true
	f := w.file
	w.fmu.Unlock()
	if f == nil {
		return nil
	}
	f.SetReadDeadline(time.Now())
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fmu.Lock()
	w.file = nil
	w.fmu.Unlock()
	return f.Close()
}
