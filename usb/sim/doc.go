// Package sim is a simulated phone in USB-tethering mode behind the
// usb.Transport interface, in-process and without cgo: the device side of
// RNDIS, of CDC-NCM as Linux's f_ncm (what Android phones run) presents it,
// or of CDC-ECM as Linux's f_ecm does, chosen by Config.Protocol.
//
// Behind its network function the phone runs its own gVisor netstack with
// what a tethering phone offers: a DHCPv4 server, a DNS server, router
// advertisements, and on its own address TCP and UDP echo (port 7) and an
// HTTP server (port 80). It reports the limits a real device reports
// (presets LinuxGadget and Qualcomm for RNDIS, Pixel for NCM, Dongle for
// ECM), aggregates device-to-host packets where the preset says so, and
// holds the host to the rules the real device's driver does: limits,
// framing, request forms, alternate settings, and what a second
// SET_INTERFACE resets.
//
// Fault knobs let tests make it misbehave the way devices do: the medium
// going down and up (every protocol), silence, unplugging, dropped and
// corrupted transfers; for RNDIS also status indications, a device-sent
// HALT, KEEPALIVEs, corrupted or truncated messages. Hostile wraps any
// device to make it misbehave the way an attacker's would, on every pipe,
// with the faults of its protocol.
package sim
