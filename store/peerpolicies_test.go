package store_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/store"
)

// TestPeerPolicies: a member's policy files are kept by version, the
// highest is current, the install's audit entry is in the same
// transaction, and an older version or a second file of the held version
// is refused with nothing written.
func TestPeerPolicies(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(t *testing.T) *store.DB) {
		db := open(t)
		raw, err := db.PeerPolicy("MY")
		require.NoError(t, err)
		require.Nil(t, raw)
		all, err := db.PeerPolicies()
		require.NoError(t, err)
		require.Empty(t, all)

		entry := func(v string) *audit.Entry {
			return &audit.Entry{Kind: audit.PeerPolicy, Peer: "MY", Reason: "MY policy " + v}
		}
		head := func() uint64 {
			h, _, err := db.AuditHead(t.Context())
			require.NoError(t, err)
			return h
		}
		for _, c := range []struct {
			name    string
			version uint64
			raw     string
			stored  bool
			err     bool
		}{
			{"first", 1, "my v1", true, false},
			{"same file again", 1, "my v1", false, false},
			{"other bytes, same version", 1, "my v1 forged", false, true},
			{"newer", 3, "my v3", true, false},
			{"older", 2, "my v2", false, true},
		} {
			before := head()
			stored, err := db.SavePeerPolicy("MY", c.version, []byte(c.raw), entry(c.raw))
			if c.err {
				require.ErrorIs(t, err, store.ErrPeerPolicy, c.name)
			} else {
				require.NoError(t, err, c.name)
			}
			require.Equal(t, c.stored, stored, c.name)
			if c.stored {
				require.Equal(t, before+1, head(), "%s: the audit entry is written with it", c.name)
			} else {
				require.Equal(t, before, head(), "%s: nothing written", c.name)
			}
		}
		_, err = db.SavePeerPolicy("TH", 7, []byte("th v7"))
		require.NoError(t, err)

		raw, err = db.PeerPolicy("MY")
		require.NoError(t, err)
		require.Equal(t, "my v3", string(raw))
		all, err = db.PeerPolicies()
		require.NoError(t, err)
		require.Equal(t, map[string][]byte{"MY": []byte("my v3"), "TH": []byte("th v7")}, all)
		vs, err := db.PeerPolicyVersions("MY")
		require.NoError(t, err)
		require.Equal(t, map[uint64][]byte{1: []byte("my v1"), 3: []byte("my v3")}, vs)

		require.NoError(t, db.SetNodeMeta(store.NodeMeta{Country: "ID", NodePublicKey: "00", CreatedAt: time.Now()}))
		r := db.Check(t.Context(), nil)
		require.True(t, r.OK(), "%v", r.Problems)
	})
}
