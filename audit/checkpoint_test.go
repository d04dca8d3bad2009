package audit_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/internal/audittest"
)

// btSignedCheckpoint is a checkpoint the returned key signed.
func btSignedCheckpoint(t *testing.T) (*audit.Checkpoint, crypto.PrivKey) {
	t.Helper()
	k, _ := audittest.Key(t)
	c := &audit.Checkpoint{Node: "TH", Seq: 42, Head: audittest.Hash("head"),
		Time: time.Date(2026, 3, 1, 15, 4, 5, 123456789, time.FixedZone("ICT", 7*3600))}
	require.NoError(t, audit.SignCheckpoint(k, c))
	return c, k
}

func TestSignCheckpoint(t *testing.T) {
	c, k := btSignedCheckpoint(t)
	require.NoError(t, c.Verify())
	assert.Equal(t, time.UTC, c.Time.Location(), "time is normalised to UTC")
	assert.Len(t, c.Signature, 64)

	// The PeerID set must be the key's.
	_, other := audittest.Key(t)
	bad := &audit.Checkpoint{Node: "TH", PeerID: other, Seq: 1, Head: audittest.Hash("x")}
	err := audit.SignCheckpoint(k, bad)
	require.ErrorIs(t, err, audit.ErrBadCheckpoint)
	assert.EqualError(t, err, fmt.Sprintf("bad checkpoint: peer_id %s is not the signing key's (%s)", other, c.PeerID))
	assert.Nil(t, bad.Signature)

	// A JSON round trip keeps it verifiable, whatever the time zone.
	data, err := json.Marshal(c)
	require.NoError(t, err)
	var back audit.Checkpoint
	require.NoError(t, json.Unmarshal(data, &back))
	require.NoError(t, back.Verify())
	back.Time = back.Time.In(time.FixedZone("MYT", 8*3600))
	require.NoError(t, back.Verify(), "the zone is not signed, the instant is")
}

func TestCheckpointVerifyDetectsChanges(t *testing.T) {
	_, anotherPeer := audittest.Key(t)
	tests := []struct {
		name string
		edit func(c *audit.Checkpoint)
		want string
	}{
		{"node", func(c *audit.Checkpoint) { c.Node = "MY" }, "signature does not verify"},
		{"no node", func(c *audit.Checkpoint) { c.Node = "" }, "bad checkpoint: no node"},
		{"seq", func(c *audit.Checkpoint) { c.Seq++ }, "signature does not verify"},
		{"head", func(c *audit.Checkpoint) { c.Head = audittest.Hash("other") }, "signature does not verify"},
		{"time", func(c *audit.Checkpoint) { c.Time = c.Time.Add(time.Nanosecond) }, "signature does not verify"},
		{"signature", func(c *audit.Checkpoint) { c.Signature[63] ^= 0x80 }, "signature does not verify"},
		{"no signature", func(c *audit.Checkpoint) { c.Signature = nil }, "bad checkpoint: not signed"},
		{"short signature", func(c *audit.Checkpoint) { c.Signature = c.Signature[:10] }, "signature does not verify"},
		{"another peer", func(c *audit.Checkpoint) { c.PeerID = anotherPeer }, "signature does not verify"},
		{"not a peer ID", func(c *audit.Checkpoint) { c.PeerID = "TH-node" }, `bad checkpoint: peer_id "TH-node" is not a peer ID`},
		{"a peer ID without its key", func(c *audit.Checkpoint) { c.PeerID = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N" },
			"does not embed its public key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := btSignedCheckpoint(t)
			tc.edit(c)
			err := c.Verify()
			require.ErrorIs(t, err, audit.ErrBadCheckpoint)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestCountersign(t *testing.T) {
	c, nodeKey := btSignedCheckpoint(t)
	wk, wid := audittest.Key(t)
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.FixedZone("MYT", 8*3600))
	w, err := audit.Countersign(wk, "MY", c, at)
	require.NoError(t, err)
	assert.Equal(t, "MY", w.Node)
	assert.Equal(t, wid, w.PeerID)
	assert.True(t, w.Time.Equal(at))
	assert.Equal(t, time.UTC, w.Time.Location())
	require.NoError(t, w.Verify(c))

	t.Run("the witness covers the checkpoint", func(t *testing.T) {
		other := *c
		other.Seq++
		require.NoError(t, audit.SignCheckpoint(nodeKey, &other))
		err := w.Verify(&other)
		require.ErrorIs(t, err, audit.ErrBadCheckpoint)
		assert.EqualError(t, err, fmt.Sprintf("bad checkpoint: witness MY: signature does not verify with %s's key", wid))
	})
	t.Run("the witness's own fields are signed", func(t *testing.T) {
		for name, edit := range map[string]func(w *audit.Witness){
			"node": func(w *audit.Witness) { w.Node = "ID" },
			"time": func(w *audit.Witness) { w.Time = w.Time.Add(time.Second) },
			"peer": func(w *audit.Witness) { _, w.PeerID = audittest.Key(t) },
		} {
			bad := w
			bad.Signature = append([]byte(nil), w.Signature...)
			edit(&bad)
			assert.ErrorIs(t, bad.Verify(c), audit.ErrBadCheckpoint, name)
		}
		bad := w
		bad.Node = ""
		assert.EqualError(t, bad.Verify(c), fmt.Sprintf("bad checkpoint: witness %s names no node", wid))
	})
	t.Run("a bad checkpoint is not countersigned", func(t *testing.T) {
		bad := *c
		bad.Head = audittest.Hash("forged")
		_, err := audit.Countersign(wk, "MY", &bad, at)
		require.ErrorIs(t, err, audit.ErrBadCheckpoint)
		assert.Contains(t, err.Error(), "signature does not verify")
	})
	t.Run("a node does not witness itself", func(t *testing.T) {
		_, err := audit.Countersign(nodeKey, "TH", c, at)
		require.ErrorIs(t, err, audit.ErrBadCheckpoint)
		assert.EqualError(t, err, fmt.Sprintf("bad checkpoint: %s cannot witness its own checkpoint", c.PeerID))
	})
	t.Run("signatures are domain-separated", func(t *testing.T) {
		// The node's checkpoint signature is no witness signature, and a
		// witness signature is no checkpoint signature.
		self := audit.Witness{Node: c.Node, PeerID: c.PeerID, Time: c.Time, Signature: c.Signature}
		assert.ErrorIs(t, self.Verify(c), audit.ErrBadCheckpoint)
		forged := *c
		forged.PeerID, forged.Signature = w.PeerID, w.Signature
		assert.ErrorIs(t, forged.Verify(), audit.ErrBadCheckpoint)
	})
}

// TestSigningBytesUnambiguous: fields are length-prefixed, so moving
// bytes from one field to the next changes what is signed.
func TestSigningBytesUnambiguous(t *testing.T) {
	a := audit.Checkpoint{Node: "TH", PeerID: "ab", Seq: 1, Head: "c"}
	b := audit.Checkpoint{Node: "THa", PeerID: "b", Seq: 1, Head: "c"}
	assert.NotEqual(t, a.SigningBytes(), b.SigningBytes())
	assert.NotEqual(t, a.WitnessBytes("MY", "p", time.Time{}), a.WitnessBytes("MYp", "", time.Time{}))
	// Times far outside UnixNano's range still differ.
	t1 := audit.Checkpoint{Time: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)}
	t2 := audit.Checkpoint{Time: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}
	assert.NotEqual(t, t1.SigningBytes(), t2.SigningBytes())
}
