package audit_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/audit"
)

func sampleEntries() []audit.Entry {
	prev := ""
	var out []audit.Entry
	for i, e := range []audit.Entry{
		{Kind: audit.AdminPolicy, PolicyVersion: 1, Actor: "init", Reason: "installed TH policy version 1"},
		{Kind: audit.CatalogEgress, Peer: "MY", PeerID: "12D3KooWexample", Purpose: "catalog", Records: []string{"TH#1-512"}, Count: 512,
			Fields: []string{"listing.id", "listing.title"}, PolicyVersion: 1, Rules: []string{"TH-TR-CATALOG"}, LegalBasis: "not_personal",
			PayloadHash: audit.HashHex([]byte("records"))},
		{Kind: audit.HandoffIngress, Peer: "MY", Records: []string{"ord_1"}, Count: 1, Fields: []string{"buyer.name"}, Reason: "ข้อความ ภาษาไทย"},
	} {
		e.Time = time.Date(2026, 11, 26, 7, 0, i, 123456789, time.UTC)
		e.Link(uint64(i), prev)
		prev = e.Hash
		out = append(out, e)
	}
	return out
}

// The store's binary form round-trips every field and refuses bytes that
// do not match their hash.
func TestEntryBinaryRoundTrip(t *testing.T) {
	for _, e := range sampleEntries() {
		b, err := e.MarshalBinary()
		require.NoError(t, err)
		var got audit.Entry
		require.NoError(t, got.UnmarshalBinary(b))
		require.Equal(t, e, got)
		require.NoError(t, got.Follows(e.Seq-1, e.Prev))

		for _, i := range []int{0, len(b) / 2, len(b) - 1} {
			bad := append([]byte(nil), b...)
			bad[i] ^= 1
			require.ErrorIs(t, new(audit.Entry).UnmarshalBinary(bad), audit.ErrChain, "byte %d flipped", i)
		}
		require.ErrorIs(t, new(audit.Entry).UnmarshalBinary(b[:len(b)-1]), audit.ErrChain)
	}
	require.ErrorIs(t, new(audit.Entry).UnmarshalBinary(nil), audit.ErrChain)
	_, err := (&audit.Entry{Seq: 1}).MarshalBinary()
	require.ErrorIs(t, err, audit.ErrChain, "an unlinked entry has no hash to store")
}

// FuzzEntryBinary: the store's decoder never panics, and what it accepts
// encodes back to the same bytes.
func FuzzEntryBinary(f *testing.F) {
	for _, e := range sampleEntries() {
		b, err := e.MarshalBinary()
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var e audit.Entry
		if e.UnmarshalBinary(b) != nil {
			return
		}
		again, err := e.MarshalBinary()
		require.NoError(t, err)
		require.Equal(t, b, again)
	})
}
