package auditor_test

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/auditor"
	"github.com/imtgt/imtgt-node/internal/audittest"
)

func TestVerifyGoodBundle(t *testing.T) {
	f := audittest.NewFixture(t, 0)
	s, err := btVerify(f.Encode(), auditor.VerifyOptions{OpenReceipt: btVerifyOpts.OpenReceipt, Node: f.Peers[audittest.Node]})
	require.NoError(t, err)
	assert.Equal(t, &auditor.Summary{
		Node: "TH", PeerID: f.Peers["TH"], Federation: "imtgt-test", ManifestVersion: 1, ManifestVersions: []uint64{1},
		Entries: 10, FirstSeq: 1, LastSeq: 10, From: audittest.Start, To: audittest.Start.Add(9 * time.Minute),
		Checkpoints: 2, Witnessed: 1, Witnesses: 2, Unwitnessed: 3,
		Receipts: 2, ReceiptsChecked: true,
		Egress: 4, Ingress: 2, Rejections: 1, Admin: 3,
		PolicyVersions: []uint64{1, 2},
		Notes:          []string{"3 entries after the last witnessed checkpoint are signed by the node alone"},
	}, s)
	out := s.String()
	for _, want := range []string{
		"Node:         TH (" + f.Peers["TH"] + "), federation imtgt-test, manifest version 1\n",
		"Entries:      10, seq 1 to 10, 2026-03-01T08:00:00Z to 2026-03-01T08:09:00Z\n",
		"egress 4, ingress 2, rejections 1, admin 3\n",
		"Checkpoints:  2, 1 witnessed (2 countersignatures), 3 entries after the last witnessed one\n",
		"Receipts:     2 (verified)\n",
		"Policies:     version 1, 2\n",
		"Manifests:    version 1\n",
		"Residency:    no violations\n",
	} {
		assert.Contains(t, out, want)
	}
}

// TestVerifyReceiptsUnchecked: without a receipt verifier receipts are
// counted and still matched to their entries by hash; one removed is
// caught either way (the exporter writes the receipt of every exported
// order message).
func TestVerifyReceiptsUnchecked(t *testing.T) {
	f := audittest.NewFixture(t, 0)
	s, err := btVerify(f.Encode(), auditor.VerifyOptions{})
	require.NoError(t, err)
	assert.False(t, s.ReceiptsChecked)
	assert.Equal(t, 2, s.Receipts)
	assert.Contains(t, s.Notes, "2 receipt(s) counted, not verified (no receipt verifier)")
	assert.Contains(t, s.String(), "Receipts:     2 (not verified)\n")

	f.Bundle.Receipts = f.Bundle.Receipts[:1] // the status message's receipt is removed
	_, err = btVerify(f.Encode(), auditor.VerifyOptions{})
	require.ErrorIs(t, err, audit.ErrBundle)
	require.ErrorContains(t, err, "1 order message(s) lack the receipt they record")
}

// TestVerifyPartialRange: a bundle of entries 4 to 10 starts from the
// hash of entry 3 and the policy and manifest in force then; the handoff's receipt
// still matches. A receipt matching no exported entry means an entry was
// removed: the exporter writes only the receipts of exported entries.
func TestVerifyPartialRange(t *testing.T) {
	f := audittest.NewFixture(t, 0)
	f.Bundle.Header.FirstSeq, f.Bundle.Header.Prev, f.Bundle.Header.PolicyAtStart = 4, f.Bundle.Entries[2].Hash, 1
	f.Bundle.Header.ManifestAtStart = 1
	f.Bundle.Entries = f.Bundle.Entries[3:]
	s, err := btVerify(f.Encode(), btVerifyOpts)
	require.NoError(t, err)
	assert.Equal(t, 7, s.Entries)
	assert.Equal(t, uint64(4), s.FirstSeq)
	assert.Equal(t, 0, s.ReceiptsUnmatched)
	assert.Equal(t, 0, s.ReceiptsMissing)

	f.OrderEgress(audit.HandoffEgress, "MY", "ORD-0", 1, 1)
	f.Receipt("MY", "MY", "handoff", "ORD-0", 1)
	_, err = btVerify(f.Encode(), btVerifyOpts)
	require.ErrorIs(t, err, audit.ErrBundle)
	require.ErrorContains(t, err, "1 receipt(s) match no entry")
}

// TestVerifyUnwitnessed: the operator holds the node key, so a history
// only the node signed could have been rewritten. A bundle whose
// crossings no peer countersigned fails, and so does a node-only tail
// older than the window, unless the auditor accepts it.
func TestVerifyUnwitnessed(t *testing.T) {
	t.Run("no countersignature at all", func(t *testing.T) {
		f := audittest.NewFixture(t, 0)
		for i := range f.Bundle.Checkpoints {
			f.Bundle.Checkpoints[i].Witnesses = nil
		}
		_, err := btVerify(f.Encode(), btVerifyOpts)
		require.ErrorIs(t, err, auditor.ErrUnwitnessed)
		require.ErrorContains(t, err, "no checkpoint is countersigned by a peer")
		opts := btVerifyOpts
		opts.AllowUnwitnessed = true
		s, err := btVerify(f.Encode(), opts)
		require.NoError(t, err)
		assert.Zero(t, s.Witnessed)
	})
	t.Run("an old node-only tail", func(t *testing.T) {
		f := audittest.NewFixture(t, 0)
		f.Bundle.Header.GeneratedAt = f.Bundle.Header.GeneratedAt.Add(time.Hour)
		_, err := btVerify(f.Encode(), btVerifyOpts)
		require.ErrorIs(t, err, auditor.ErrUnwitnessed)
		require.ErrorContains(t, err, "entry 8 (line 9)")
		require.ErrorContains(t, err, "entries 8 to 10 were written more than 10m0s before the bundle was made")
		opts := btVerifyOpts
		opts.MaxUnwitnessed = 2 * time.Hour
		_, err = btVerify(f.Encode(), opts)
		require.NoError(t, err)
	})
}

// btBreak is one way of breaking a good bundle: it returns the bytes.
type btBreak func(t testing.TB, f *audittest.Fixture) []byte

// btLines edits the good bundle's lines.
func btLines(edit func(f *audittest.Fixture, lines []string) []string) btBreak {
	return func(t testing.TB, f *audittest.Fixture) []byte { return audittest.Join(edit(f, f.Lines())) }
}

// btRecords edits the records before encoding.
func btRecords(edit func(t testing.TB, f *audittest.Fixture)) btBreak {
	return func(t testing.TB, f *audittest.Fixture) []byte { edit(t, f); return f.Encode() }
}

// btBrokenBundles are the ways a bundle is tampered with, and the error
// each must give. {TH}, {MY} and {ID} in want stand for the peer IDs of
// those countries' nodes.
var btBrokenBundles = []struct {
	name  string
	brk   btBreak
	want  string
	also  string // a second part of the message, if any
	isErr error
}{
	{
		name: "a field of an entry edited",
		brk: btLines(func(f *audittest.Fixture, l []string) []string {
			l[5] = strings.Replace(l[5], `"buyer.phone"`, `"buyer.email"`, 1)
			return l
		}),
		want:  "entry 5 (line 6): audit chain broken: entry 5 was altered (its hash does not match its content)",
		isErr: audit.ErrChain,
	},
	{
		name: "the peer of an entry edited",
		brk: btLines(func(f *audittest.Fixture, l []string) []string {
			l[3] = strings.Replace(l[3], `"peer":"MY"`, `"peer":"ID"`, 1)
			return l
		}),
		want:  "entry 3 (line 4): audit chain broken: entry 3 was altered",
		isErr: audit.ErrChain,
	},
	{
		name:  "an entry in the middle dropped",
		brk:   btLines(func(f *audittest.Fixture, l []string) []string { return append(l[:4:4], l[5:]...) }),
		want:  "entry 5 (line 5): audit chain broken: entry 5 follows entry 3",
		isErr: audit.ErrChain,
	},
	{
		name:  "the last entry dropped",
		brk:   btLines(func(f *audittest.Fixture, l []string) []string { return append(l[:10:10], l[11:]...) }),
		want:  "checkpoint at seq 10 (line 12): bad checkpoint: seq 10 is outside the exported entries 1 to 9",
		isErr: audit.ErrBadCheckpoint,
	},
	{
		name: "two entries swapped",
		brk: btLines(func(f *audittest.Fixture, l []string) []string {
			l[3], l[4] = l[4], l[3]
			return l
		}),
		want:  "entry 4 (line 4): audit chain broken: entry 4 follows entry 2",
		isErr: audit.ErrChain,
	},
	{
		name: "an entry inserted",
		brk: btRecords(func(t testing.TB, f *audittest.Fixture) {
			e := audittest.CatalogEgress("ID", 1, 1, 10)
			e.Time = audittest.Start
			e.Link(4, f.Bundle.Entries[3].Hash)
			f.Bundle.Entries = append(f.Bundle.Entries[:4:4], append([]audit.Entry{e}, f.Bundle.Entries[4:]...)...)
		}),
		want:  "entry 5 (line 7): audit chain broken: entry 5 follows entry 5",
		isErr: audit.ErrChain,
	},
	{
		name: "an entry inserted and the rest of the chain rewritten",
		brk: btRecords(func(t testing.TB, f *audittest.Fixture) {
			e := audittest.CatalogEgress("ID", 1, 1, 10)
			es := append(f.Bundle.Entries[:4:4], append([]audit.Entry{e}, f.Bundle.Entries[4:]...)...)
			for i := 4; i < len(es); i++ {
				es[i].Link(es[i-1].Seq, es[i-1].Hash)
			}
			f.Bundle.Entries = es
		}),
		want:  "checkpoint at seq 7 (line 13): bad checkpoint: head ",
		also:  "is not the hash of entry 7 (",
		isErr: audit.ErrBadCheckpoint,
	},
	{
		name:  "the file cut off mid-line",
		brk:   func(t testing.TB, f *audittest.Fixture) []byte { b := f.Encode(); return b[:len(b)-40] },
		want:  "line 15 is cut off: the bundle is truncated",
		isErr: audit.ErrBundle,
	},
	{
		name:  "the file cut at a line boundary, losing the final checkpoint",
		brk:   btLines(func(f *audittest.Fixture, l []string) []string { return l[:12] }),
		want:  "entry 10 (line 11): audit chain broken: the last checkpoint covers entry 7 only (checkpoint 1 (line 12)): the bundle was truncated, or entries were appended after its final checkpoint",
		isErr: audit.ErrChain,
	},
	{
		name:  "every checkpoint removed",
		brk:   btRecords(func(t testing.TB, f *audittest.Fixture) { f.Bundle.Checkpoints = nil }),
		want:  "entry 10 (line 11): audit chain broken: no checkpoint signs the chain",
		isErr: audit.ErrChain,
	},
	{
		name: "entries appended after the final checkpoint",
		brk: btRecords(func(t testing.TB, f *audittest.Fixture) {
			f.Add(audittest.CatalogEgress("MY", 2, 30, 40))
		}),
		want:  "entry 11 (line 12): audit chain broken: the last checkpoint covers entry 10 only (checkpoint 2 (line 14))",
		isErr: audit.ErrChain,
	},
	{
		name: "a checkpoint's head changed",
		brk: btRecords(func(t testing.TB, f *audittest.Fixture) {
			f.Bundle.Checkpoints[0].Head = f.Bundle.Entries[5].Hash
		}),
		want:  "checkpoint at seq 7 (line 12): bad checkpoint: signature does not verify with {TH}'s key",
		isErr: audit.ErrBadCheckpoint,
	},
	{
		name: "a checkpoint of a head not in the chain, signed by the node",
		brk: btRecords(func(t testing.TB, f *audittest.Fixture) {
			c := &f.Bundle.Checkpoints[0]
			c.Head, c.Witnesses = audittest.Hash("another history"), nil
			require.NoError(t, audit.SignCheckpoint(f.Keys[audittest.Node], c))
		}),
		want:  "checkpoint at seq 7 (line 12): bad checkpoint: head 854a9410ca85… is not the hash of entry 7 (", // sha256("another history")
		also:  "…): the checkpoint is forged or the chain was rewritten",
		isErr: audit.ErrBadCheckpoint,
	},
	{
		name: "a checkpoint re-signed with another key",
		brk: btRecords(func(t testing.TB, f *audittest.Fixture) {
			k, _ := audittest.Key(t)
			c := &f.Bundle.Checkpoints[1]
			sig, err := k.Sign(c.SigningBytes())
			require.NoError(t, err)
			c.Signature = sig
		}),
		want:  "checkpoint at seq 10 (line 13): bad checkpoint: signature does not verify with {TH}'s key",
		isErr: audit.ErrBadCheckpoint,
	},
	{
		name: "a checkpoint re-signed with another key under its peer ID",
		brk: btRecords(func(t testing.TB, f *audittest.Fixture) {
			k, id := audittest.Key(t)
			c := &f.Bundle.Checkpoints[1]
			c.PeerID = id
			require.NoError(t, audit.SignCheckpoint(k, c))
		}),
		want:  "checkpoint at seq 10 (line 13): bad checkpoint: signed by 12D3KooW",
		also:  ", not by the node {TH}",
		isErr: audit.ErrBadCheckpoint,
	},
	{
		name:  "a checkpoint's signature flipped",
		brk:   btRecords(func(t testing.TB, f *audittest.Fixture) { f.Bundle.Checkpoints[1].Signature[7] ^= 1 }),
		want:  "checkpoint at seq 10 (line 13): bad checkpoint: signature does not verify with {TH}'s key",
		isErr: audit.ErrBadCheckpoint,
	},
	{
		name: "a witness that is not a member",
		brk: btRecords(func(t testing.TB, f *audittest.Fixture) {
			k, _ := audittest.Key(t)
			w, err := audit.Countersign(k, "MY", &f.Bundle.Checkpoints[1], audittest.Start)
			require.NoError(t, err)
			f.Bundle.Checkpoints[1].Witnesses = append(f.Bundle.Checkpoints[1].Witnesses, w)
		}),
		want:  "checkpoint at seq 10 (line 13): bad checkpoint: witness 12D3KooW",
		also:  " (MY) is not a member of federation imtgt-test",
		isErr: audit.ErrBadCheckpoint,
	},
	{
		name: "a witness signature flipped",
		brk: btRecords(func(t testing.TB, f *audittest.Fixture) {
			f.Bundle.Checkpoints[0].Witnesses[1].Signature[0] ^= 1
		}),
		want:  "checkpoint at seq 7 (line 12): bad checkpoint: witness ID: signature does not verify with {ID}'s key",
		isErr: audit.ErrBadCheckpoint,
	},
	{
		name: "a witness claiming another country",
		brk: btRecords(func(t testing.TB, f *audittest.Fixture) {
			w, err := audit.Countersign(f.Keys["ID"], "MY", &f.Bundle.Checkpoints[1], audittest.Start)
			require.NoError(t, err)
			f.Bundle.Checkpoints[1].Witnesses = []audit.Witness{w}
		}),
		want:  "checkpoint at seq 10 (line 13): bad checkpoint: witness {ID} is ID's node, not MY's",
		isErr: audit.ErrBadCheckpoint,
	},
	{
		name: "a witness counted twice",
		brk: btRecords(func(t testing.TB, f *audittest.Fixture) {
			c := &f.Bundle.Checkpoints[0]
			c.Witnesses = append(c.Witnesses, c.Witnesses[0])
		}),
		want:  "checkpoint at seq 7 (line 12): bad checkpoint: MY witnesses it twice",
		isErr: audit.ErrBadCheckpoint,
	},
	{
		name: "the header names another node's keys",
		brk: btRecords(func(t testing.TB, f *audittest.Fixture) {
			// MY's node passes off a chain it signed as TH's.
			f.Bundle.Header.PeerID, f.Bundle.Header.PublicKey = f.Peers["MY"], audittest.MarshalPub(t, f.Keys["MY"])
			for i := range f.Bundle.Checkpoints {
				c := &f.Bundle.Checkpoints[i]
				c.PeerID, c.Witnesses = "", nil
				require.NoError(t, audit.SignCheckpoint(f.Keys["MY"], c))
			}
		}),
		want:  "header (line 1): bad evidence bundle: the manifest names TH's node {TH}, but the bundle is signed by {MY}",
		isErr: audit.ErrBundle,
	},
	{
		name: "the header's peer ID is not its key's",
		brk: btRecords(func(t testing.TB, f *audittest.Fixture) {
			f.Bundle.Header.PublicKey = audittest.MarshalPub(t, f.Keys["MY"])
		}),
		want:  "header (line 1): bad evidence bundle: peer_id {TH} is not public_key's peer ID {MY}",
		isErr: audit.ErrBundle,
	},
	{
		name: "a policy signed by another agency's key",
		brk: btRecords(func(t testing.TB, f *audittest.Fixture) {
			f.Bundle.Header.Policies[1].Document = f.SignedPolicy(audittest.Node, 2, f.Gov["MY"])
		}),
		want:  "header (line 1): bad evidence bundle: policies[1] (version 2): policy signature: signed by key",
		isErr: audit.ErrBundle,
	},
	{
		name: "a policy edited after signing",
		brk: btRecords(func(t testing.TB, f *audittest.Fixture) {
			d := &f.Bundle.Header.Policies[0].Document
			*d = strings.Replace(*d, "fields: [name, phone,", "fields: [name, email, phone,", 1)
		}),
		want:  "header (line 1): bad evidence bundle: policies[0] (version 1): policy signature: does not verify: the file was changed after it was signed",
		isErr: audit.ErrBundle,
	},
	{
		name: "another country's policy",
		brk: btRecords(func(t testing.TB, f *audittest.Fixture) {
			f.Bundle.Header.Policies[0].Document = f.SignedPolicy("MY", 1, f.Gov["MY"])
		}),
		want:  "header (line 1): bad evidence bundle: policies[0] (version 1): the policy is MY's, the node TH's",
		isErr: audit.ErrBundle,
	},
	{
		name: "a policy the chain installs is missing",
		brk: btRecords(func(t testing.TB, f *audittest.Fixture) {
			f.Bundle.Header.Policies = f.Bundle.Header.Policies[:1]
		}),
		want:  "entry 8 (line 9): bad evidence bundle: installs policy version 2, which the header does not hold",
		isErr: audit.ErrBundle,
	},
	{
		name: "the manifest's signatures removed",
		brk: btRecords(func(t testing.TB, f *audittest.Fixture) {
			m := f.Bundle.Header.Manifest
			f.Bundle.Header.Manifest = m[:strings.Index(m, "signatures:")]
		}),
		want:  "header (line 1): bad evidence bundle: manifest imtgt-test version 1 has 0 valid signature(s) of the 2 it requires",
		isErr: audit.ErrBundle,
	},
	{
		name: "a partial export whose prev is not the chain's",
		brk: btRecords(func(t testing.TB, f *audittest.Fixture) {
			f.Bundle.Header.FirstSeq, f.Bundle.Header.Prev, f.Bundle.Header.PolicyAtStart = 4, audittest.Hash("x"), 1
			f.Bundle.Entries = f.Bundle.Entries[3:]
		}),
		want:  "entry 4 (line 2): audit chain broken: entry 4 does not link to entry 3",
		isErr: audit.ErrChain,
	},
	{
		name: "a receipt signed by the wrong node",
		brk: btRecords(func(t testing.TB, f *audittest.Fixture) {
			// The node logged a handoff with a receipt ID's node made up.
			env := f.Seal("ID", "MY", "handoff", "ORD-1", 1)
			f.Bundle.Entries[4].ReceiptHash = audit.HashHex(env)
			f.Bundle.Entries[5].ReceiptHash = audit.HashHex(env)
			btRelink(f, 4)
			f.Bundle.Receipts[0].Envelope = env
		}),
		want:  "receipt of handoff for order ORD-1 (line 14): bad evidence bundle: signed by {ID}, not by MY's node {MY}",
		isErr: audit.ErrBundle,
	},
	{
		name: "a receipt's envelope altered",
		brk: btRecords(func(t testing.TB, f *audittest.Fixture) {
			f.Bundle.Receipts[1].Envelope[len(f.Bundle.Receipts[1].Envelope)-3] ^= 1
		}),
		want:  "receipt of status for order ORD-1 (line 15): bad evidence bundle: the envelope does not verify",
		isErr: audit.ErrBundle,
	},
	{
		name:  "a receipt line naming another order",
		brk:   btRecords(func(t testing.TB, f *audittest.Fixture) { f.Bundle.Receipts[0].OrderID = "ORD-2" }),
		want:  "receipt of handoff for order ORD-2 (line 14): bad evidence bundle: the envelope acknowledges handoff 1 of order ORD-1, the line says handoff 1 of order ORD-2",
		isErr: audit.ErrBundle,
	},
	{
		name: "a receipt for another payload than the entry's",
		brk: btRecords(func(t testing.TB, f *audittest.Fixture) {
			f.Bundle.Entries[4].PayloadHash = audittest.Hash("something else")
			btRelink(f, 4)
		}),
		want:  "receipt of handoff for order ORD-1 (line 14): bad evidence bundle: it acknowledges payload ",
		isErr: audit.ErrBundle,
	},
}

// btRelink relinks the entries from index i on and re-signs every
// checkpoint from there, as a node (or a thief of its key) would.
func btRelink(f *audittest.Fixture, i int) {
	es := f.Bundle.Entries
	for ; i < len(es); i++ {
		var seq uint64
		var prev string
		if i > 0 {
			seq, prev = es[i-1].Seq, es[i-1].Hash
		}
		es[i].Link(seq, prev)
	}
	for j := range f.Bundle.Checkpoints {
		c := &f.Bundle.Checkpoints[j]
		c.Head = es[c.Seq-es[0].Seq].Hash
		require.NoError(f.TB, audit.SignCheckpoint(f.Keys[audittest.Node], c))
		for k := range c.Witnesses {
			w, err := audit.Countersign(f.Keys[c.Witnesses[k].Node], c.Witnesses[k].Node, c, c.Witnesses[k].Time)
			require.NoError(f.TB, err)
			c.Witnesses[k] = w
		}
	}
}

func TestVerifyBrokenBundles(t *testing.T) {
	for _, tc := range btBrokenBundles {
		t.Run(tc.name, func(t *testing.T) {
			f := audittest.NewFixture(t, 0)
			data := tc.brk(t, f)
			s, err := btVerify(data, btVerifyOpts)
			require.Error(t, err)
			assert.Nil(t, s)
			assert.ErrorIs(t, err, tc.isErr)
			ids := strings.NewReplacer("{TH}", f.Peers["TH"], "{MY}", f.Peers["MY"], "{ID}", f.Peers["ID"])
			assert.Contains(t, err.Error(), ids.Replace(tc.want))
			assert.Contains(t, err.Error(), ids.Replace(tc.also))
		})
	}
}

func TestVerifyViolations(t *testing.T) {
	tests := []struct {
		name string
		edit func(f *audittest.Fixture)
		want []string
	}{
		{
			name: "a field the policy does not let leave",
			edit: func(f *audittest.Fixture) {
				f.Bundle.Entries[4].Fields = append(f.Bundle.Entries[4].Fields, "buyer.email")
			},
			want: []string{"entry 5 (line 6): field buyer.email to MY for order_handoff is allowed by no rule of TH policy version 1"},
		},
		{
			name: "an entry naming another policy version than the one in force",
			edit: func(f *audittest.Fixture) { f.Bundle.Entries[8].PolicyVersion = 1 },
			want: []string{"entry 9 (line 10): the entry names policy version 1, but version 2 was in force"},
		},
		{
			name: "both, and a crossing before any policy",
			edit: func(f *audittest.Fixture) {
				f.Bundle.Entries[1].Kind, f.Bundle.Entries[1].PolicyVersion = audit.AdminSeller, 0 // no policy installed
				f.Bundle.Entries[9].Fields = append(f.Bundle.Entries[9].Fields, "seller.owner.national_id")
			},
			want: []string{
				"entry 3 (line 4): no policy was in force",
				"entry 5 (line 6): no policy was in force",
				"entry 10 (line 11): no policy rule allows this transfer: seller to ID for catalog under TH policy version 2",
			},
		},
		{
			// The verifier memoises verdicts by fields: a list that reads
			// like another when joined must not reuse its verdict.
			name: "a field list passing for another",
			edit: func(f *audittest.Fixture) {
				e := f.Bundle.Entries[9]
				e.Fields = []string{strings.Join(e.Fields, "\x00")}
				f.Bundle.Entries = append(f.Bundle.Entries, e)
				f.Bundle.Checkpoints[1].Seq = 11
			},
			want: []string{"entry 11 (line 12): field listing.id\x00listing.title\x00listing.price\x00listing.hs_code\x00listing.seller.legal_name" +
				" to ID for catalog is allowed by no rule of TH policy version 2"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := audittest.NewFixture(t, 0)
			tc.edit(f)
			btRelink(f, 0)
			s, err := btVerify(f.Encode(), btVerifyOpts)
			require.ErrorIs(t, err, auditor.ErrViolation)
			assert.Equal(t, fmt.Sprintf("crossing not allowed by the policy in force: %d violation(s), the first: %s", len(tc.want), tc.want[0]), err.Error())
			require.NotNil(t, s, "a bundle with violations is still summarised")
			assert.Equal(t, tc.want, s.Violations)
			assert.Equal(t, len(f.Bundle.Entries), s.Entries)
			shown := tc.want[0]
			if strings.Contains(shown, "\x00") {
				shown = strconv.Quote(shown) // String quotes what is not printable
			}
			assert.Contains(t, s.String(), fmt.Sprintf("Residency:    %d VIOLATION(S)\n  %s\n", len(tc.want), shown))
			assert.NotContains(t, s.String(), "\x00")
		})
	}
}

func TestVerifyExpectedNode(t *testing.T) {
	f := audittest.NewFixture(t, 0)
	data := f.Encode()
	_, err := btVerify(data, auditor.VerifyOptions{Node: f.Peers["MY"]})
	require.ErrorIs(t, err, audit.ErrBundle)
	assert.EqualError(t, err, fmt.Sprintf("header (line 1): bad evidence bundle: the bundle is from %s, not from the expected node %s", f.Peers["TH"], f.Peers["MY"]))

	_, err = btVerify(data, auditor.VerifyOptions{Node: "TH"})
	require.ErrorIs(t, err, audit.ErrBundle)
	assert.Contains(t, err.Error(), `the expected node "TH" is not a peer ID`)
}

func TestVerifyHeaderFields(t *testing.T) {
	tests := []struct {
		name string
		edit func(h *audit.Header)
		want string
	}{
		{"first seq 0", func(h *audit.Header) { h.FirstSeq = 0 }, "first_seq is 0; entries are numbered from 1"},
		{"prev without predecessor", func(h *audit.Header) { h.Prev = audittest.Hash("x") }, "first_seq is 1 but prev is set"},
		{"policy at start unknown", func(h *audit.Header) { h.PolicyAtStart = 7 }, "policy_at_start 7 is none of the policies"},
		{"a policy twice", func(h *audit.Header) { h.Policies = append(h.Policies, h.Policies[0]) }, "policies[2] (version 1): version 1 appears twice"},
		{"version not the document's", func(h *audit.Header) { h.Policies[0].Version = 3 }, "policies[0] (version 3): the document is version 1"},
		{"node not a member", func(h *audit.Header) { h.Node = "SG" }, "node SG is not a member of federation imtgt-test (manifest version 1)"},
		{"garbage key", func(h *audit.Header) { h.PublicKey = []byte("nope") }, "public_key: "},
		{"manifest unreadable", func(h *audit.Header) { h.Manifest = "federation: [" }, "manifest: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := audittest.NewFixture(t, 0)
			tc.edit(&f.Bundle.Header)
			_, err := btVerify(f.Encode(), btVerifyOpts)
			require.ErrorIs(t, err, audit.ErrBundle)
			assert.Contains(t, err.Error(), "header (line 1): bad evidence bundle: "+tc.want)
		})
	}
}

// TestVerifyNoEntries: an export of an empty range proves nothing and is
// refused rather than passed.
func TestVerifyNoEntries(t *testing.T) {
	f := audittest.NewFixture(t, 0)
	f.Bundle.Entries, f.Bundle.Checkpoints, f.Bundle.Receipts = nil, nil, nil
	_, err := btVerify(f.Encode(), btVerifyOpts)
	require.ErrorIs(t, err, audit.ErrBundle)
	assert.EqualError(t, err, "bad evidence bundle: the bundle holds no entries")
}

// TestVerifyWithoutLines: a Bundle built in code (no line numbers) still
// names the entry.
func TestVerifyWithoutLines(t *testing.T) {
	f := audittest.NewFixture(t, 0)
	b, err := audit.ReadBundle(bytes.NewReader(f.Encode()))
	require.NoError(t, err)
	b.EntryLines = nil
	b.Entries[2].Count++
	_, err = auditor.Verify(b, btVerifyOpts)
	assert.EqualError(t, err, "entry 3: audit chain broken: entry 3 was altered (its hash does not match its content)")
}
