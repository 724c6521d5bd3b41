// Package link turns a usb.Transport into a NIC of gVisor's netstack. It
// runs the host side of the tether's function (RNDIS: INITIALIZE, the
// queries, the packet filter, keepalives, RESET and re-initialization;
// CDC-NCM and CDC-ECM: their class requests, the data interface's alternate
// setting and their notifications) and moves Ethernet frames between the
// netstack and the bulk pipes. The endpoint, the link state and its events,
// the counters and the capture are the same for every protocol.
//
// A device-sent HALT, a media-disconnect indication (RNDIS MEDIA_DISCONNECT,
// CDC NETWORK_CONNECTION 0), a keepalive timeout and an unplug are link-down
// events: outstanding requests are discarded, frames from the device are
// dropped, and frames for it wait in the transmit queue (Options.TxQueue;
// more are dropped) until the link is back. The link then brings itself
// back up (starting the function again, an RNDIS RESET, or waiting for the
// same device to be plugged in again) and reports a link-up event.
//
// gVisor's netstack has no carrier state. BindNIC keeps the NIC enabled
// through a link-down, as an interface keeps its addresses when its
// carrier goes: IPv4 and SLAAC addresses and routes stay, and TCP sees a
// short outage as a delay. Stack.DisableNIC would fail every send instead,
// losing the newest segments of each connection's flight, after which
// gVisor's RACK loss detection recovers one or two segments per
// retransmission timeout; RemoveNIC would kill every route and connection
// for good. On link-up the neighbour tables are cleared, since the device
// may come back with another MAC address.
package link
