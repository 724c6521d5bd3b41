// Package stack turns an RNDIS link into a ready network for a Go program,
// in-process and without root: a gVisor netstack whose NIC is the link,
// configured by DHCPv4 (or statically) and by IPv6 SLAAC, with a DNS
// resolver that asks the tether's servers.
//
// Open returns a *Net, once it is usable, whose DialContext, Listen,
// ListenPacket, LookupNetIP and HTTPClient work like their counterparts in
// package net, but every packet goes through the tether and never through
// the host's own network. New returns it at once, before the device (with
// link.Options.WaitForDevice) or a lease is there; Ready waits for both.
//
// Names are resolved by the tether's DNS servers only (Options.DNS, then
// the DHCP lease's, then those of IPv6 router advertisements), each asked
// in turn for at most 2 s, by a small resolver of this package's (dns.go):
// Go's own reads this host's /etc/resolv.conf for its servers, search
// domains, ndots and attempts, which describe another network, and cannot
// be told not to.
package stack
