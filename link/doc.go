// Package link turns a usb.Transport into a NIC of gVisor's netstack. It
// runs the RNDIS host session (INITIALIZE, the queries, the packet filter,
// keepalives, RESET and re-initialization) and moves Ethernet frames between
// the netstack and the bulk pipes.
//
// A device-sent HALT, a MEDIA_DISCONNECT indication, a keepalive or control
// timeout, and an unplug are link-down events: outstanding requests and
// queued frames are discarded and the NIC stops carrying packets. The link
// then brings itself back up (re-INITIALIZE, RESET, or waiting for the same
// device to be plugged in again) and reports a link-up event.
//
// gVisor's netstack has no carrier state. BindNIC maps link events onto
// Stack.DisableNIC and Stack.EnableNIC: a disabled NIC keeps its IPv4
// addresses and routes (so open TCP connections retransmit and survive a
// short outage), while RemoveNIC would kill every route and connection for
// good. SLAAC addresses are dropped on disable and come back from the next
// router advertisement.
package link
