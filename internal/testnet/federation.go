package testnet

import (
	"context"
	"github.com/imtgt/imtgt-node/internal/freeport"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/federation"
	"github.com/imtgt/imtgt-node/keys"
	"github.com/imtgt/imtgt-node/membership"
	"github.com/imtgt/imtgt-node/node"
)

// Net is a federation of test nodes in one process, on real loopback TCP.
type Net struct {
	t     testing.TB
	Nodes map[string]*Node
	// Replicas are each country's replicas (Nodes[c] is Replicas[c][0]).
	Replicas map[string][]*Node
	Manifest *membership.Manifest
	Raw      []byte
	PSK      []byte
}

// FreePort returns a loopback TCP port that is free right now, chosen at
// random below the kernel's ephemeral range (32768 and up): a port the
// kernel handed out with :0 and that the test closes again can be taken by
// any outgoing connection of the parallel test packages before the node
// listens on it; one chosen below that range can only be taken by another
// test choosing the same one.
//
// A port is handed out once per test binary: two ports asked for before
// either is listened on (a node's HTTP and p2p ports) would otherwise
// collide now and then, the birthday problem over 12,000 ports.
func FreePort(tb testing.TB) int {
	tb.Helper()
	return freeport.Pick(tb, 20000, 12000)
}

// FreeP2PAddr returns a loopback TCP multiaddr with a port free right now.
func FreeP2PAddr(tb testing.TB) string {
	tb.Helper()
	return "/ip4/127.0.0.1/tcp/" + strconv.Itoa(FreePort(tb))
}

// InitNode initialises (but does not start) a node with a free p2p port.
func InitNode(tb testing.TB, country string) *Node {
	tb.Helper()
	return initNode(tb, country, FreeP2PAddr(tb), time.Second)
}

// SignedManifest builds a manifest naming the nodes, signed by every
// listed signer's governance key.
func SignedManifest(tb testing.TB, version uint64, threshold int, members []*Node, signers []*Node) (*membership.Manifest, []byte) {
	tb.Helper()
	var ms []membership.Member
	for _, n := range members {
		m, err := node.MemberDescriptor(n.Dir)
		require.NoError(tb, err)
		ms = append(ms, m)
	}
	man, err := membership.New("imtgt-test", version, time.Now().Add(24*time.Hour).UTC().Truncate(time.Second), threshold, ms)
	require.NoError(tb, err)
	for _, n := range signers {
		gk, err := keys.LoadGovernanceKey(filepath.Join(n.Dir, node.KeysDir))
		require.NoError(tb, err)
		require.NoError(tb, membership.Sign(man, n.Country, gk))
	}
	raw, err := man.Marshal()
	require.NoError(tb, err)
	return man, raw
}

// Federate initialises nodes of the given countries, installs a manifest
// signed by all of them (threshold 2) and starts them, connected.
func Federate(tb testing.TB, countries ...string) *Net {
	tb.Helper()
	return FederateWith(tb, FedOptions{}, countries...)
}

// FedOptions say how FederateWith runs each country's node.
type FedOptions struct {
	// StoreURLs gives a country's node a PostgreSQL store (absent: bbolt).
	StoreURLs map[string]string
	// Replicas runs a country's node as that many replicas sharing its
	// store (0 or 1: one); more than one needs a StoreURL.
	Replicas map[string]int
	// Clocks gives a country's node (every replica) a clock for its orders
	// and issues (node.Options.Now), which the test moves.
	Clocks map[string]func() time.Time
}

// FederateWith is Federate with each node's store and replica count from
// opts. A replicated node is initialised once with every replica's p2p
// address (its member descriptor lists them all), the manifest installed,
// and each further replica runs from a copy of its directory, as an
// operator deploys one; WaitConnected waits until every node's leader is
// connected to every other's.
func FederateWith(tb testing.TB, opts FedOptions, countries ...string) *Net {
	tb.Helper()
	fn := &Net{t: tb, Nodes: map[string]*Node{}, Replicas: map[string][]*Node{}}
	var all []*Node
	for _, c := range countries {
		k := max(opts.Replicas[c], 1)
		if k > 1 && opts.StoreURLs[c] == "" {
			tb.Fatalf("testnet: %d replicas of %s need a store URL", k, c)
		}
		addrs := make([]string, k)
		for i := range addrs {
			addrs[i] = FreeP2PAddr(tb)
		}
		dir := filepath.Join(tb.TempDir(), c)
		res, err := node.Init(node.InitOptions{Dir: dir, Country: c, HTTPAddr: "127.0.0.1:0", P2PAddrs: addrs, StoreURL: opts.StoreURLs[c]})
		require.NoError(tb, err)
		n := &Node{t: tb, Dir: dir, Country: c, OperatorToken: res.OperatorToken, logs: &syncBuffer{}, SyncInterval: time.Second, P2PAddr: addrs[0], Now: opts.Clocks[c]}
		tb.Cleanup(func() { n.Stop() })
		fn.Nodes[c] = n
		fn.Replicas[c] = []*Node{n}
		for _, a := range addrs[1:] {
			fn.Replicas[c] = append(fn.Replicas[c], &Node{t: tb, Country: c, OperatorToken: res.OperatorToken, logs: &syncBuffer{}, SyncInterval: time.Second, P2PAddr: a, Now: opts.Clocks[c]})
		}
		all = append(all, n)
	}
	fn.Manifest, fn.Raw = SignedManifest(tb, 1, min(2, len(all)), all, all)
	psk, err := federation.NewPSK()
	require.NoError(tb, err)
	fn.PSK = psk
	for _, n := range all {
		_, err := node.InstallManifest(context.Background(), n.Dir, fn.Raw, psk)
		require.NoError(tb, err)
	}
	for _, c := range countries {
		for _, r := range fn.Replicas[c][1:] {
			r.Dir = copyNodeDir(tb, fn.Nodes[c].Dir)
			tb.Cleanup(func() { r.Stop() })
		}
	}
	for _, c := range countries {
		for _, r := range fn.Replicas[c] {
			r.start()
		}
	}
	fn.WaitConnected()
	return fn
}

// Leader returns the replica of country that leads its federation work
// (nil when none does right now).
func (fn *Net) Leader(country string) *Node {
	for _, r := range fn.replicas(country) {
		if r.Node != nil && r.Role() == "leader" {
			return r
		}
	}
	return nil
}

// replicas are country's replicas (its one node when not replicated).
func (fn *Net) replicas(country string) []*Node {
	if rs := fn.Replicas[country]; len(rs) > 0 {
		return rs
	}
	if n := fn.Nodes[country]; n != nil {
		return []*Node{n}
	}
	return nil
}

// WaitConnected polls until every started node sees every other as
// connected and holds its policy.
func (fn *Net) WaitConnected() {
	fn.t.Helper()
	// Only a country's leader runs the federation: a node none of whose
	// replicas runs is left out, one whose running replicas do not lead
	// yet is waited for.
	running := func(c string) bool {
		return slices.ContainsFunc(fn.replicas(c), func(r *Node) bool { return r.Node != nil })
	}
	Eventually(fn.t, 20*time.Second, func() bool {
		for c := range fn.Nodes {
			if !running(c) {
				continue
			}
			n := fn.Leader(c)
			if n == nil {
				return false
			}
			for _, p := range n.Fed.Peers(context.Background()) {
				if !p.Self && running(p.Country) && !p.Connected {
					return false
				}
				// A seller's node prices each order again with the buyer
				// country's policy: connected means holding it too.
				if !p.Self && running(p.Country) {
					l := fn.Leader(p.Country)
					if l == nil {
						return false
					}
					if own, _ := l.Policy(); own != nil {
						if held := n.PeerPolicy(p.Country); held == nil || held.Version < own.Version {
							return false
						}
					}
				}
			}
		}
		return true
	}, "nodes did not connect and exchange their policies")
}

// Countries lists the net's countries, sorted.
func (fn *Net) Countries() []string {
	var cs []string
	for c := range fn.Nodes {
		cs = append(cs, c)
	}
	sort.Strings(cs)
	return cs
}

// Eventually polls cond every 10 ms until it holds or the deadline passes.
func Eventually(tb testing.TB, within time.Duration, cond func() bool, msg string) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("not within %s: %s", within, msg)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
	}
}
