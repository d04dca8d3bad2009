// Package policy decides what data may leave the node, to whom and for
// what: it holds the one egress function, Project, that builds every
// domain record sent to a peer.
//
// No other code path serialises a domain record onto the federation wire
// (a test in this package checks the source tree for it). In this release
// the rules are fixed: a listing leaves, for the purpose "catalog", as its
// public fields and the seller's public profile (legal name, business ID,
// region); nothing else may leave. The policy release makes these rules
// declarative, signed and per country.
//
// policy is pure: no I/O and no clock reads.
package policy
