package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"sort"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/federation"
	"github.com/imtgt/imtgt-node/httpapi"
	"github.com/imtgt/imtgt-node/policy"
)

// The members' policies: each member offers its signed policy file over
// /imtgt/policy (federation/policy.go); the service verifies it against
// the installed manifest and this file stores it and keeps it parsed, for
// the seller side of an order to price it with the buyer's country's
// rules.

// peerPolicyState is a member's current policy and its exact bytes.
type peerPolicyState struct {
	p   *policy.Policy
	raw []byte
}

// PeerPolicy returns the current policy of a member held by this node
// (nil if none was received). This node's own country's is its own.
func (n *Node) PeerPolicy(country string) *policy.Policy {
	if country == n.Config.Node.Country {
		p, _ := n.Policy()
		return p
	}
	m := n.peerPolicies.Load()
	if m == nil {
		return nil
	}
	if st := (*m)[country]; st != nil {
		return st.p
	}
	return nil
}

// loadPeerPolicies parses every member's policy held in the store into the
// cache (at open, and when the change feed says another replica stored
// one). A file that no longer parses is left out and logged: it was
// verified when it arrived, so this is a damaged store, and a newer
// offer replaces it.
func (n *Node) loadPeerPolicies() error {
	raws, err := n.Store.PeerPolicies()
	if err != nil {
		return fmt.Errorf("members' policies: %w", err)
	}
	m := make(map[string]*peerPolicyState, len(raws))
	for country, raw := range raws {
		p, err := policy.Parse(country+"'s policy", raw)
		if err != nil {
			n.log.Error("a stored member's policy does not parse", "peer_country", country, "err", err)
			continue
		}
		m[country] = &peerPolicyState{p: p, raw: raw}
	}
	n.peerPolicies.Store(&m)
	return nil
}

// savePeerPolicy is the federation's SavePeerPolicy: it stores a member's
// verified policy file with its policy.ingress audit entry, and caches it.
func (n *Node) savePeerPolicy(ctx context.Context, country string, from peer.ID, p *policy.Policy, raw []byte) (bool, error) {
	n.peerPolicyMu.Lock()
	defer n.peerPolicyMu.Unlock()
	e := &audit.Entry{Kind: audit.PeerPolicy, Peer: country, PeerID: from.String(), Purpose: string(federation.ProtoPolicy),
		PolicyVersion: p.Version, PayloadHash: audit.HashHex(raw),
		Reason: fmt.Sprintf("stored %s's policy version %d, signed by its governance key", country, p.Version)}
	stored, err := n.termStore().SavePeerPolicy(country, p.Version, raw, e)
	if err != nil || !stored {
		return stored, err
	}
	old := n.peerPolicies.Load()
	next := map[string]*peerPolicyState{}
	if old != nil {
		next = maps.Clone(*old)
	}
	next[country] = &peerPolicyState{p: p, raw: raw}
	n.peerPolicies.Store(&next)
	return true, nil
}

// ownPolicyRaw is the federation's OwnPolicy.
func (n *Node) ownPolicyRaw() []byte {
	_, raw := n.Policy()
	return raw
}

// PeerPolicies lists every member's policy this node holds, its own
// included (httpapi: GET /v1/federation/policies), by country.
func (n *Node) PeerPolicies() []httpapi.PeerPolicyView {
	all := map[string]*peerPolicyState{}
	if m := n.peerPolicies.Load(); m != nil {
		maps.Copy(all, *m)
	}
	p, raw := n.Policy()
	all[n.Config.Node.Country] = &peerPolicyState{p: p, raw: raw}
	out := make([]httpapi.PeerPolicyView, 0, len(all))
	for country, st := range all {
		sum := sha256.Sum256(st.raw)
		v := httpapi.PeerPolicyView{Country: country, Version: st.p.Version, Effective: st.p.Effective.UTC().Format(time.RFC3339),
			SHA256: hex.EncodeToString(sum[:]), Own: country == n.Config.Node.Country}
		if !st.p.Expires.IsZero() {
			v.Expires = st.p.Expires.UTC().Format(time.RFC3339)
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Country < out[j].Country })
	return out
}

// peerPolicyVersion is the orders service's PeerPolicy: version v of a
// member's policy if this node holds it (the current one from the cache,
// an older one parsed from the store), and the newest version held.
func (n *Node) peerPolicyVersion(country string, v uint64) (*policy.Policy, uint64, error) {
	cur := n.PeerPolicy(country)
	if cur == nil {
		return nil, 0, nil
	}
	switch {
	case cur.Version == v:
		return cur, cur.Version, nil
	case v > cur.Version || v == 0 || country == n.Config.Node.Country:
		return nil, cur.Version, nil
	}
	raws, err := n.Store.PeerPolicyVersions(country)
	if err != nil {
		return nil, cur.Version, fmt.Errorf("%s's policy version %d: %w", country, v, err)
	}
	raw, ok := raws[v]
	if !ok {
		return nil, cur.Version, nil
	}
	p, err := policy.Parse(fmt.Sprintf("%s's policy version %d", country, v), raw)
	if err != nil {
		return nil, cur.Version, err
	}
	return p, cur.Version, nil
}
