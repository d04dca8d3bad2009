package node

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/money"
	"github.com/imtgt/imtgt-node/store"
)

// pruningFeed is a change feed whose leader prunes it between a
// follower's ChangesFloor and its Changes (pruneLoop runs on another
// replica, at any moment): at the floor read rows 1..10 are kept; by the
// time Changes runs, rows up to 8 are gone.
type pruningFeed struct {
	fakeShared
	mu     sync.Mutex
	floor  uint64
	rows   []store.Changed
	pruned bool
}

func (f *pruningFeed) ChangesFloor(context.Context) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.floor, nil
}

func (f *pruningFeed) ChangesHead(context.Context) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rows[len(f.rows)-1].Seq, nil
}

func (f *pruningFeed) Changes(_ context.Context, after uint64, limit int) ([]store.Changed, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.pruned { // the leader's PruneChanges commits right now
		f.pruned = true
		f.rows = f.rows[8:]
		f.floor = f.rows[0].Seq
	}
	var out []store.Changed
	for _, c := range f.rows {
		if c.Seq > after && len(out) < limit {
			out = append(out, c)
		}
	}
	return out, nil
}

// nodeWithUnindexedListing opens a bbolt TH node and stores a listing as
// another replica would: in the store, not in this node's index.
func nodeWithUnindexedListing(t *testing.T, id, title string) (*Node, *catalog.Listing) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "th")
	_, err := Init(InitOptions{Dir: dir, Country: "TH", HTTPAddr: "127.0.0.1:0"})
	require.NoError(t, err)
	ctx := context.Background()
	n, err := Open(ctx, dir, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { n.Close(ctx) })
	now := time.Now().UTC()
	price, err := money.Parse("100.00", "THB")
	require.NoError(t, err)
	l := &catalog.Listing{ID: id, Origin: "TH", SellerID: "sel_1", Title: title,
		HSCode: "6109", Price: price, Quantity: 1, ShipFrom: "TH-10", CreatedAt: now, UpdatedAt: now, Version: 1}
	require.NoError(t, n.Store.ApplyLocal(ctx, "TH", []catalog.Change{{Listing: l}}, n.Catalog.Seal()))
	return n, l
}

// TestCatchUpNoticesRowsPrunedDuringIt: catchUp
// compares the floor with what it applied, then reads the changes; a prune
// between the two leaves a gap it never notices, and the listing another
// replica wrote in that gap stays missing from this replica's search index
// for good (nothing refreshes it again).
func TestCatchUpNoticesRowsPrunedDuringIt(t *testing.T) {
	ctx := context.Background()
	// "Another replica" stores a listing: in the store, not in this
	// replica's index; its change is seq 5.
	n, l := nodeWithUnindexedListing(t, "lst_01J00000000000000000000000", "pruned gap")
	_, ok := n.Catalog.Get(l.ID)
	require.False(t, ok)

	feed := &pruningFeed{fakeShared: fakeShared{db: n.Store}, floor: 1}
	for seq := uint64(1); seq <= 10; seq++ {
		c := store.Changed{Seq: seq, Bucket: "meta", Key: []byte("other")}
		if seq == 5 {
			c = store.Changed{Seq: seq, Bucket: "listings", Key: []byte(l.ID)}
		}
		feed.rows = append(feed.rows, c)
	}
	n.shared = feed
	n.feedSeq.Store(2) // applied up to 2: floor 1 <= 3, no reload needed at the check

	require.NoError(t, n.catchUp(ctx))
	require.NoError(t, n.catchUp(ctx)) // and again: nothing brings it back
	_, ok = n.Catalog.Get(l.ID)
	require.True(t, ok, "the listing written in the pruned gap (seq 3..8) never reaches this replica's index")
}

// rewoundFeed is the change feed of a database that went back in time
// under a running replica: a promoted asynchronous standby that lacks the
// last commits, or a point-in-time restore. Its seqs restart below what
// the replica applied.
type rewoundFeed struct {
	fakeShared
	rows []store.Changed
}

func (f *rewoundFeed) ChangesFloor(context.Context) (uint64, error) { return f.rows[0].Seq, nil }
func (f *rewoundFeed) ChangesHead(context.Context) (uint64, error) {
	return f.rows[len(f.rows)-1].Seq, nil
}
func (f *rewoundFeed) Changes(_ context.Context, after uint64, limit int) ([]store.Changed, error) {
	var out []store.Changed
	for _, c := range f.rows {
		if c.Seq > after && len(out) < limit {
			out = append(out, c)
		}
	}
	return out, nil
}

// TestCatchUpAfterTheFeedWentBack: when the feed's
// head is below what a replica applied (its database failed over to a
// standby that missed the last commits, or was restored), every new change
// has a seq the replica thinks it has seen: catchUp skips them all and the
// replica's index stays stale until it restarts.
func TestCatchUpAfterTheFeedWentBack(t *testing.T) {
	ctx := context.Background()
	n, l := nodeWithUnindexedListing(t, "lst_01J00000000000000000000001", "after failover")

	n.shared = &rewoundFeed{fakeShared: fakeShared{db: n.Store}, rows: []store.Changed{
		{Seq: 7, Bucket: "meta", Key: []byte("other")},
		{Seq: 8, Bucket: "listings", Key: []byte(l.ID)}, // written after the failover
	}}
	n.feedSeq.Store(20) // applied before the failover, from the old primary
	require.NoError(t, n.catchUp(ctx))
	_, ok := n.Catalog.Get(l.ID)
	require.True(t, ok, "a change written after the database went back (seq 8 <= applied 20) is never applied")
}
