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
// events: outstanding requests and queued frames are discarded and the NIC
// stops carrying packets. The link then brings itself back up (starting the
// function again, an RNDIS RESET, or waiting for the same device to be
// plugged in again) and reports a link-up event.
//
// gVisor's netstack has no carrier state. BindNIC maps link events onto
// Stack.DisableNIC and Stack.EnableNIC: a disabled NIC keeps its IPv4
// addresses and routes (so open TCP connections retransmit and survive a
// short outage), while RemoveNIC would kill every route and connection for
// good. SLAAC addresses are dropped on disable and come back from the next
// router advertisement.
package link
