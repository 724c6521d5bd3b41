//go:build linux && !(mips || mipsle || mips64 || mips64le || ppc64 || ppc64le || sparc64)

package usb

// The ioctl number encoding of asm-generic/ioctl.h: 2 direction bits above
// 14 size bits.
const (
	iocNone   = 0
	iocWrite  = 1
	iocRead   = 2
	iocSizeOf = 14
)
