package usb

// autoBackend: on Linux, usbfs, which needs neither cgo nor libusb.
const autoBackend = BackendUsbfs
