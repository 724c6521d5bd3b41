// Package stack turns an RNDIS link into a ready network for a Go program,
// in-process and without root: a gVisor netstack whose NIC is the link,
// configured by DHCPv4 (or statically) and by IPv6 SLAAC, with a DNS
// resolver that asks the tether's servers.
//
// Open returns a *Net whose DialContext, Listen, ListenPacket, Resolver and
// HTTPClient work like their counterparts in package net, but every packet
// goes through the tether and never through the host's own network.
package stack
