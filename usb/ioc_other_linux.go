//go:build linux && (mips || mipsle || mips64 || mips64le || ppc64 || ppc64le || sparc64)

package usb

// The ioctl number encoding of MIPS, PowerPC and SPARC: 3 direction bits
// above 13 size bits.
const (
	iocNone   = 1
	iocWrite  = 4
	iocRead   = 2
	iocSizeOf = 13
)
