package node

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/store"
)

// TestResyncWithAPermanentErrorAdvances : applyChanges passes a
// change that cannot be applied here (finding 5), but resync does not: a
// resync whose reload meets a permanent error (here an installed
// policy this replica refuses) never stores feedSeq, so every
// catch-up (each second, each notice) reloads everything again, for good.
func TestResyncWithAPermanentErrorAdvances(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "th")
	_, err := Init(InitOptions{Dir: dir, Country: "TH", HTTPAddr: "127.0.0.1:0"})
	require.NoError(t, err)
	ctx := context.Background()
	n, err := Open(ctx, dir, Options{})
	require.NoError(t, err)
	defer n.Close(ctx)

	require.NoError(t, n.Store.SavePolicy([]byte("not a policy"), 99)) // another replica stored a policy this one refuses
	n.shared = &rewoundFeed{fakeShared: fakeShared{db: n.Store}, rows: []store.Changed{
		{Seq: 7, Bucket: "meta", Key: []byte("other")},
	}}
	n.feedSeq.Store(20) // the feed went back: catchUp resyncs
	for i := 0; i < 3; i++ {
		_ = n.catchUp(ctx)
	}
	require.Equal(t, uint64(7), n.feedSeq.Load(), "each catch-up reloads everything again: the resync never completes")
}
