package usb

import (
	"runtime"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The structures and ioctls of include/uapi/linux/usbdevice_fs.h, which
// golang.org/x/sys/unix does not define. Pointers are uintptr in the URB,
// which lives in memory Go does not manage (see urbMemory), and
// unsafe.Pointer where the kernel holds them only during the call.

type usbdevfsCtrlTransfer struct {
	RequestType uint8
	Request     uint8
	Value       uint16
	Index       uint16
	Length      uint16
	Timeout     uint32 // milliseconds
	Data        unsafe.Pointer
}

type usbdevfsSetInterface struct {
	Interface  uint32
	AltSetting uint32
}

type usbdevfsGetDriver struct {
	Interface uint32
	Driver    [256]byte
}

type usbdevfsDisconnectClaim struct {
	Interface uint32
	Flags     uint32
	Driver    [256]byte
}

type usbdevfsIoctl struct {
	Interface int32
	IoctlCode int32
	Data      unsafe.Pointer
}

// usbdevfsURB is struct usbdevfs_urb without ISO packet descriptors.
type usbdevfsURB struct {
	Type            uint8
	Endpoint        uint8
	Status          int32
	Flags           uint32
	Buffer          uintptr
	BufferLength    int32
	ActualLength    int32
	StartFrame      int32
	NumberOfPackets int32 // stream ID for bulk streams
	ErrorCount      int32
	Signr           uint32
	UserContext     uintptr
}

// URB types and flags.
const (
	urbTypeInterrupt = 1
	urbTypeBulk      = 3
)

// Flags of DISCONNECT_CLAIM: claim unless the interface's driver is the one named.
const disconnectClaimExceptDriver = 0x02

func ioc(dir, nr, size uintptr) uintptr {
	return dir<<(16+iocSizeOf) | size<<16 | 'U'<<8 | nr
}

var (
	reqControl          = ioc(iocRead|iocWrite, 0, unsafe.Sizeof(usbdevfsCtrlTransfer{}))
	reqSetInterface     = ioc(iocRead, 4, unsafe.Sizeof(usbdevfsSetInterface{}))
	reqSetConfiguration = ioc(iocRead, 5, 4)
	reqGetDriver        = ioc(iocWrite, 8, unsafe.Sizeof(usbdevfsGetDriver{}))
	reqSubmitURB        = ioc(iocRead, 10, unsafe.Sizeof(usbdevfsURB{}))
	reqDiscardURB       = ioc(iocNone, 11, 0)
	reqReapURBNDelay    = ioc(iocWrite, 13, unsafe.Sizeof(uintptr(0)))
	reqClaimInterface   = ioc(iocRead, 15, 4)
	reqReleaseInterface = ioc(iocRead, 16, 4)
	reqIoctl            = ioc(iocRead|iocWrite, 18, unsafe.Sizeof(usbdevfsIoctl{}))
	reqClearHalt        = ioc(iocRead, 21, 4)
	reqDisconnect       = ioc(iocNone, 22, 0)
	reqConnect          = ioc(iocNone, 23, 0)
	reqDisconnectClaim  = ioc(iocRead, 27, unsafe.Sizeof(usbdevfsDisconnectClaim{}))
)

// ioctl makes one ioctl; arg stays valid for the call as an unsafe.Pointer.
// The error is the bare errno, so that the hot path allocates nothing.
func ioctl(fd int, req uintptr, arg unsafe.Pointer) (int, error) {
	r, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
	if e != 0 {
		return int(r), e
	}
	return int(r), nil
}

// fdGuard keeps a device's fd from being closed under an ioctl, which
// would otherwise reach whatever file reused the number: ioctls that may
// race with Close hold it shared.
type fdGuard struct {
	mu     sync.RWMutex
	closed bool
}

// enter reports whether the fd is open, and keeps it so until leave.
func (g *fdGuard) enter() bool {
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return false
	}
	return true
}

func (g *fdGuard) leave() { g.mu.RUnlock() }

// shut runs closeFD once no ioctl is under way; enter fails from then on.
func (g *fdGuard) shut(closeFD func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	closeFD()
}

// usbfsFD is an open device node with an ioctl for each request, whose
// errors name the request and the node.
type usbfsFD struct {
	fd   int
	node string
}

func (d usbfsFD) control(s Setup, data []byte, timeoutMS uint32) (int, error) {
	ct := usbdevfsCtrlTransfer{RequestType: s.RequestType, Request: s.Request, Value: s.Value, Index: s.Index,
		Length: uint16(min(len(data), 0xffff)), Timeout: timeoutMS}
	var pin runtime.Pinner
	defer pin.Unpin()
	if len(data) > 0 {
		pin.Pin(&data[0])
		ct.Data = unsafe.Pointer(&data[0])
	}
	n, err := ioctl(d.fd, reqControl, unsafe.Pointer(&ct))
	if err != nil {
		return 0, err
	}
	return n, nil
}

func (d usbfsFD) uintIoctl(req uintptr, v uint32) error {
	_, err := ioctl(d.fd, req, unsafe.Pointer(&v))
	return err
}

func (d usbfsFD) setConfiguration(v int) error {
	return d.uintIoctl(reqSetConfiguration, uint32(v))
}

func (d usbfsFD) claim(iface int) error   { return d.uintIoctl(reqClaimInterface, uint32(iface)) }
func (d usbfsFD) release(iface int) error { return d.uintIoctl(reqReleaseInterface, uint32(iface)) }
func (d usbfsFD) clearHalt(ep uint8) error {
	return d.uintIoctl(reqClearHalt, uint32(ep))
}

func (d usbfsFD) setInterface(iface, alt int) error {
	si := usbdevfsSetInterface{Interface: uint32(iface), AltSetting: uint32(alt)}
	_, err := ioctl(d.fd, reqSetInterface, unsafe.Pointer(&si))
	return err
}

// driver returns the name of the kernel driver bound to iface, "" for none.
func (d usbfsFD) driver(iface int) (string, error) {
	gd := usbdevfsGetDriver{Interface: uint32(iface)}
	if _, err := ioctl(d.fd, reqGetDriver, unsafe.Pointer(&gd)); err != nil {
		if err == unix.ENODATA {
			return "", nil
		}
		return "", err
	}
	return unix.ByteSliceToString(gd.Driver[:]), nil
}

// disconnectClaim detaches iface's kernel driver, unless it is usbfs (another
// program), and claims iface, in one step.
func (d usbfsFD) disconnectClaim(iface int) error {
	dc := usbdevfsDisconnectClaim{Interface: uint32(iface), Flags: disconnectClaimExceptDriver}
	copy(dc.Driver[:], "usbfs")
	_, err := ioctl(d.fd, reqDisconnectClaim, unsafe.Pointer(&dc))
	return err
}

// interfaceIoctl passes code (DISCONNECT, CONNECT) to iface's driver.
func (d usbfsFD) interfaceIoctl(iface int, code uintptr) error {
	io := usbdevfsIoctl{Interface: int32(iface), IoctlCode: int32(code)}
	_, err := ioctl(d.fd, reqIoctl, unsafe.Pointer(&io))
	return err
}

func (d usbfsFD) submit(u *usbdevfsURB) error {
	_, err := ioctl(d.fd, reqSubmitURB, unsafe.Pointer(u))
	return err
}

func (d usbfsFD) discard(u *usbdevfsURB) error {
	_, err := ioctl(d.fd, reqDiscardURB, unsafe.Pointer(u))
	return err
}

// reap returns the address of a completed URB, or EAGAIN when none has.
func (d usbfsFD) reap() (uintptr, error) {
	var p uintptr
	_, err := ioctl(d.fd, reqReapURBNDelay, unsafe.Pointer(&p))
	return p, err
}
