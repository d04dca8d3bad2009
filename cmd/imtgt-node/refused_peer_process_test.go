package main

// Issue 11, case 3: a refused peer cannot flood a node. Two operators
// federate TH and MY with the CLI and run them as processes; an outsider
// holding the leaked swarm key (but in no manifest) redials TH as fast as
// it can. TH must keep serving its API and syncing with MY, and the flood
// must cost it only a few audit entries.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/federation"
	"github.com/imtgt/imtgt-node/internal/testnet"
	"github.com/imtgt/imtgt-node/membership"
)

// refusedFloodFor is how long the outsider redials: the 60 s.
// IMTGT_FLOOD_FOR (a Go duration) shortens it for a quick local run; the
// bound on audit entries then shrinks in proportion (100 per 60 s).
func refusedFloodFor(t *testing.T) time.Duration {
	t.Helper()
	v := os.Getenv("IMTGT_FLOOD_FOR")
	if v == "" {
		return 60 * time.Second
	}
	d, err := time.ParseDuration(v)
	require.NoError(t, err, "IMTGT_FLOOD_FOR")
	return d
}

// federateCLI initialises the countries' nodes, federates them with the
// CLI (manifest version 1 signed by the first two, threshold 2), starts
// them and waits until each sees the others. It returns the nodes, their
// member descriptors and files, and the federation directory (fed.yaml,
// swarm.key).
func federateCLI(t *testing.T, root string, countries ...string) (map[string]*fedNode, map[string]membership.Member, map[string]string, string) {
	t.Helper()
	nodes, memberFiles := initCLINodes(t, root, countries...)
	members, files := map[string]membership.Member{}, map[string]string{}
	for _, mf := range memberFiles {
		raw, err := os.ReadFile(mf)
		require.NoError(t, err)
		var m membership.Member
		require.NoError(t, json.Unmarshal(raw, &m))
		members[m.Country], files[m.Country] = m, mf
	}
	fedDir := filepath.Join(root, "fed")
	require.NoError(t, os.Mkdir(fedDir, 0o755))
	fed := filepath.Join(fedDir, "fed.yaml")
	expires := time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339)
	out, err := cliRun(t, append([]string{"federation", "create", "--name", "imtgt", "--threshold", "2", "--expires", expires, "--out", fed}, memberFiles...)...)
	require.NoError(t, err, out)
	for _, cc := range countries[:2] {
		out, err = cliRun(t, "federation", "sign", "--dir", nodes[cc].dir, fed)
		require.NoError(t, err, out)
	}
	for _, cc := range countries {
		out, err = cliRun(t, "federation", "install", "--dir", nodes[cc].dir, "--psk", filepath.Join(fedDir, "swarm.key"), fed)
		require.NoError(t, err, out)
		nodes[cc].start(t)
	}
	for _, cc := range countries {
		n := nodes[cc]
		var others []string
		for _, o := range countries {
			if o != cc {
				others = append(others, o)
			}
		}
		sort.Strings(others)
		testnet.Eventually(t, 20*time.Second, func() bool { return fmt.Sprint(n.connectedPeers(t)) == fmt.Sprint(others) },
			cc+" does not see "+strings.Join(others, ", ")+" connected")
	}
	return nodes, members, files, fedDir
}

// outsiderHost is a libp2p host with the federation key and a key of its
// own that no manifest names.
func outsiderHost(t *testing.T, psk []byte) (*swarm.Swarm, func(ctx context.Context, to peer.AddrInfo) error, peer.ID) {
	t.Helper()
	key, err := federation.ParsePSK(psk)
	require.NoError(t, err)
	priv, _, err := crypto.GenerateEd25519Key(nil)
	require.NoError(t, err)
	h, err := libp2p.New(libp2p.Identity(priv), libp2p.NoListenAddrs, libp2p.NoTransports,
		libp2p.Transport(tcp.NewTCPTransport), libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport), libp2p.PrivateNetwork(key), libp2p.DisableRelay())
	require.NoError(t, err)
	t.Cleanup(func() { h.Close() })
	return h.Network().(*swarm.Swarm), func(ctx context.Context, to peer.AddrInfo) error { return h.Connect(ctx, to) }, h.ID()
}

// rejectionsFrom pages through the node's rejection entries and returns
// those of peer id, and the refusals they count.
func rejectionsFrom(t *testing.T, n *fedNode, id peer.ID) (entries, refusals int) {
	t.Helper()
	cursor := ""
	for {
		q := url.Values{"kind": {"rejection"}, "limit": {"1000"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		status, res := n.get(t, "/v1/audit/entries?"+q.Encode())
		require.Equal(t, http.StatusOK, status, res)
		for _, it := range res["items"].([]any) {
			e := it.(map[string]any)
			if e["peer_id"] == id.String() {
				entries++
				c, _ := e["count"].(float64)
				refusals += max(int(c), 1)
			}
		}
		cursor, _ = res["next_cursor"].(string)
		if cursor == "" {
			return entries, refusals
		}
	}
}

// outsiderRefusals reads imtgt_federation_rejected_total{reason="outsider"}.
func outsiderRefusals(t *testing.T, n *fedNode) int {
	t.Helper()
	req, err := http.NewRequest("GET", n.url+"/metrics", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+n.token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), `imtgt_federation_rejected_total{reason="outsider"} `); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			return int(f)
		}
	}
	return 0
}

func tail(s string, n int) string { return s[max(0, len(s)-n):] }

func percentile(ds []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func TestProcessRefusedPeerCannotFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("an outsider redials a node process for 60 s")
	}
	t.Parallel()
	floodFor := refusedFloodFor(t)
	nodes, members, _, fedDir := federateCLI(t, t.TempDir(), "TH", "MY")
	th, my := nodes["TH"], nodes["MY"]
	psk, err := os.ReadFile(filepath.Join(fedDir, "swarm.key"))
	require.NoError(t, err)

	_, stok := activeSeller(t, th.url, th.token, testnet.THSeller("Songkhla Seafood Export Co., Ltd.", 0))
	publish := func(title string) {
		status, res := apiDo(t, "POST", th.url+"/v1/listings", stok, testnet.Listing(title, "030749", "100.00"))
		require.Equal(t, http.StatusCreated, status, res)
	}
	publish("dried squid before the flood")
	testnet.Eventually(t, 20*time.Second, func() bool {
		return len(my.searchTitles(t, url.Values{"q": {"squid"}})) == 1
	}, "MY did not get TH's listing before the flood")

	thID, err := peer.Decode(members["TH"].PeerID)
	require.NoError(t, err)
	var addrs []ma.Multiaddr
	for _, a := range members["TH"].Addrs {
		addrs = append(addrs, ma.StringCast(a))
	}
	sw, dial, outsider := outsiderHost(t, psk)
	before := outsiderRefusals(t, th)

	ctx, cancel := context.WithTimeout(context.Background(), floodFor)
	defer cancel()
	var wg sync.WaitGroup
	var dials int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
			_ = dial(dctx, peer.AddrInfo{ID: thID, Addrs: addrs}) // TH refuses it either way
			dcancel()
			sw.ClosePeer(thID)
			sw.Backoff().Clear(thID) // a hostile dialler ignores backoff
			dials++
		}
	}()

	// Meanwhile TH serves searches, and its new listings reach MY.
	var searches, syncs []time.Duration
	published, nextPublish := 1, time.Now()
	for ctx.Err() == nil {
		start := time.Now()
		status, res := th.get(t, "/v1/catalog/search?q=squid")
		require.Equal(t, http.StatusOK, status, res)
		searches = append(searches, time.Since(start))
		if time.Now().After(nextPublish) {
			published++
			start := time.Now()
			// Within 25 s: at once by the announcement, or, if that one
			// was lost, by MY's periodic round (10 s), with room for a
			// loaded machine.
			word := fmt.Sprintf("lot%dx", published) // a search page holds 20: look for this one
			publish("dried squid " + word)
			reached := func() bool { return len(my.searchTitles(t, url.Values{"q": {word}})) == 1 }
			for deadline := time.Now().Add(25 * time.Second); !reached(); time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					_, peers := th.get(t, "/v1/peers")
					t.Fatalf("a listing TH published during the flood did not reach MY within 25 s\nTH peers: %v\nTH log tail:\n%s\nMY log tail:\n%s",
						peers, tail(th.p.stderr.String(), 4000), tail(my.p.stderr.String(), 4000))
				}
			}
			syncs = append(syncs, time.Since(start))
			nextPublish = time.Now().Add(2 * time.Second)
		}
		time.Sleep(50 * time.Millisecond) // the probe's pace, not a synchronisation
	}
	wg.Wait()

	refused := outsiderRefusals(t, th) - before
	entries, counted := rejectionsFrom(t, th, outsider)
	limit := int(100 * floodFor / time.Minute)
	t.Logf("outsider: %d dials in %s, %d refused by TH; %d audit entries counting %d refusals (limit %d)",
		dials, floodFor, refused, entries, counted, limit)
	t.Logf("TH search while flooded: %d requests, p50 %s, p99 %s, max %s; %d listings published, reached MY in p50 %s, max %s",
		len(searches), percentile(searches, 0.5), percentile(searches, 0.99), percentile(searches, 1),
		len(syncs), percentile(syncs, 0.5), percentile(syncs, 1))
	require.Greater(t, refused, int(10*floodFor/time.Second), "the outsider did not flood (%d dials)", dials)
	require.Positive(t, entries, "the refusals were not audited")
	require.Less(t, entries, limit, "%d refusals cost %d audit entries", refused, entries)
	require.Less(t, percentile(searches, 0.99), time.Second, "searches slowed down under the flood")
	require.NotEmpty(t, syncs)
}

// TestProcessRemovedMemberBacksOff: manifest version 2 removes ID; TH and
// MY install it while ID is stopped, so ID restarts on version 1 and keeps
// dialling them. They refuse it after the handshake; ID's node must back
// off (it used to redial hundreds of times a second, and TH wrote an audit
// entry for each: 2,723 in 10 s).
func TestProcessRemovedMemberBacksOff(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three node processes for half a minute")
	}
	t.Parallel()
	root := t.TempDir()
	nodes, members, files, fedDir := federateCLI(t, root, "TH", "MY", "ID")
	th, my, id := nodes["TH"], nodes["MY"], nodes["ID"]
	require.NoError(t, id.p.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, waitExit(t, id.p))

	v2Dir := filepath.Join(root, "fed-v2")
	require.NoError(t, os.Mkdir(v2Dir, 0o755))
	psk, err := os.ReadFile(filepath.Join(fedDir, "swarm.key"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(v2Dir, "swarm.key"), psk, 0o600))
	fed2 := filepath.Join(v2Dir, "fed.yaml")
	expires := time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339)
	out, err := cliRun(t, "federation", "create", "--name", "imtgt", "--threshold", "2", "--expires", expires, "--version", "2", "--out", fed2, files["TH"], files["MY"])
	require.NoError(t, err, out)
	for _, n := range []*fedNode{th, my} {
		out, err = cliRun(t, "federation", "sign", "--dir", n.dir, fed2)
		require.NoError(t, err, out)
	}
	out, err = cliRun(t, "federation", "install", "--dir", th.dir, "--psk", filepath.Join(v2Dir, "swarm.key"), fed2)
	require.NoError(t, err, out)
	testnet.Eventually(t, 20*time.Second, func() bool { return my.manifestVersion(t) == 2 }, "MY did not receive version 2 from TH")

	before := outsiderRefusals(t, th)
	id.start(t) // on version 1: it still dials TH and MY
	started := time.Now()
	testnet.Eventually(t, 10*time.Second, func() bool { return outsiderRefusals(t, th) > before }, "ID never dialled TH")
	const watch = 20 * time.Second
	time.Sleep(time.Until(started.Add(watch))) // the window measured, not a synchronisation

	idPeer, err := peer.Decode(members["ID"].PeerID)
	require.NoError(t, err)
	refused := outsiderRefusals(t, th) - before
	entries, _ := rejectionsFrom(t, th, idPeer)
	t.Logf("in %s TH refused the removed member ID %d times, in %d audit entries", watch, refused, entries)
	// Rounds at 0 s and after about 1, 2, 4, 8 s (jitter: [d/2, d]): at
	// most 5 in 20 s; a little slack for the start-up.
	require.LessOrEqual(t, refused, 8, "ID's node redialled TH %d times in %s", refused, watch)
	require.LessOrEqual(t, entries, 3)
	require.Equal(t, []string{"MY"}, th.connectedPeers(t), "TH still serves MY")
	status, _ := id.get(t, "/healthz")
	require.Equal(t, http.StatusOK, status)
}
