// Package federation connects a national node to the other members of the
// federation over libp2p and keeps their catalogs in step.
//
// Transport: TCP + Noise + yamux with the federation's pre-shared key
// (pnet) as a second lock; no relay, DHT, mDNS or NAT mapping. Identity:
// the node's Ed25519 key is its peer ID. Admission: a connection gater
// admits only the peer IDs named in the installed membership manifest (see
// package membership), checked at InterceptSecured, the first hook that
// knows the authenticated peer; an expired manifest admits no one.
//
// Every application message is a libp2p signed Envelope around a
// pb.Message with an ID, a creation time and a short validity window;
// receivers reject unknown signers, bad signatures, expired or future
// messages and replays (Opener). Catalog records are signed separately by
// their origin node (SealRecord/OpenRecord), so any member can relay them.
//
// Catalog sync is pull-based: each node keeps one append-only log per
// origin; on connect, on a head announcement and periodically, a node asks
// each peer for its heads and pulls the ranges it lacks (Service). The wire
// format is specified in pb/federation.proto and docs/PROTOCOL.md.
package federation
