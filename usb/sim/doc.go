// Package sim is a simulated phone in USB-tethering mode: the device side of
// RNDIS behind the usb.Transport interface, in-process and without cgo.
//
// Behind its RNDIS function the phone runs its own gVisor netstack with what
// a tethering phone offers: a DHCPv4 server, a DNS server, and on its own
// address TCP and UDP echo (port 7) and an HTTP server (port 80). It reports
// the limits a real device reports (presets LinuxGadget and Qualcomm), and it
// aggregates device-to-host packets where the preset says so.
//
// Fault knobs let tests make it misbehave the way devices do: status
// indications, a device-sent HALT, KEEPALIVEs, silence, corrupted or
// truncated messages, dropped packets, and unplugging. Hostile wraps any
// device to make it misbehave the way an attacker's would, on every pipe.
package sim
