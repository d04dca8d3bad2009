package auditor_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/auditor"
	"github.com/imtgt/imtgt-node/internal/audittest"
)

// TestVerifyMembershipChange: after manifest version 3 removed ID, TH's
// bundle still verifies: ID's countersignature of a checkpoint and its
// receipt, both made under version 2, are checked against version 2.
func TestVerifyMembershipChange(t *testing.T) {
	f := audittest.NewMembershipFixture(t)
	s, err := btVerify(f.Encode(), auditor.VerifyOptions{OpenReceipt: btVerifyOpts.OpenReceipt, Node: f.Peers[audittest.Node]})
	require.NoError(t, err)
	assert.Equal(t, uint64(audittest.ManifestNoID), s.ManifestVersion, "the installed manifest")
	assert.Equal(t, []uint64{audittest.ManifestAll, audittest.ManifestNoID}, s.ManifestVersions)
	assert.Equal(t, 2, s.Witnessed)
	assert.Equal(t, 3, s.Witnesses, "ID's countersignature made while a member counts")
	assert.Equal(t, 1, s.Receipts)
	assert.Zero(t, s.Unwitnessed)
	assert.Contains(t, s.String(), "Manifests:    version 2, 3\n")

	t.Run("a period starting after the change", func(t *testing.T) {
		f := audittest.NewMembershipFixture(t)
		h := &f.Bundle.Header
		h.FirstSeq, h.Prev, h.PolicyAtStart, h.ManifestAtStart = 3, f.Bundle.Entries[1].Hash, 1, audittest.ManifestAll
		f.Bundle.Entries = f.Bundle.Entries[2:]
		_, err := btVerify(f.Encode(), btVerifyOpts)
		require.NoError(t, err)
	})

	// The node verified the receipt under version 2 and wrote its entry
	// just after installing version 3: the receipt was made while ID was a
	// member, which is what counts.
	t.Run("a receipt made before the change, recorded after it", func(t *testing.T) {
		f := audittest.NewMembershipFixture(t)
		made := f.Bundle.Entries[4].Time.Add(-time.Second)
		f.Add(f.OrderEgressAt(made, audit.StatusEgress, "ID", "ORD-8", 1, 1, "order.id", "order.status"))
		f.Bundle.Checkpoints = f.Bundle.Checkpoints[:1]
		f.Checkpoint("MY")
		f.ReceiptAt(made, "ID", "ID", "status", "ORD-8", 1)
		_, err := btVerify(f.Encode(), btVerifyOpts)
		require.NoError(t, err)
	})

	// Two peers offered version 3 at once and the node recorded it twice
	// (nodes now refuse the second): nothing changes, nothing to refuse.
	t.Run("the version in force recorded again", func(t *testing.T) {
		f := audittest.NewMembershipFixture(t)
		f.Add(audit.Entry{Kind: audit.AdminManifest, PayloadHash: audittest.Hash(f.Manifest), Reason: "installed manifest imtgt-test version 3"})
		f.Bundle.Checkpoints = f.Bundle.Checkpoints[:1]
		f.Checkpoint("MY")
		_, err := btVerify(f.Encode(), btVerifyOpts)
		require.NoError(t, err)
	})

	// Before format 2 a bundle carried the installed manifest only, and
	// every countersignature was checked against it: this is the failure
	// of issue 11 ("witness ... (ID) is not a member"). A format 1 bundle
	// is still verified that way.
	t.Run("format 1", func(t *testing.T) {
		f := audittest.NewMembershipFixture(t)
		_, err := btVerify(btFormatV1(t, f.Encode()), btVerifyOpts)
		require.ErrorIs(t, err, audit.ErrBadCheckpoint)
		require.ErrorContains(t, err, "checkpoint at seq 4 (line 8): bad checkpoint: witness "+f.Peers["ID"]+" (ID) is not a member of federation imtgt-test")

		s, err := btVerify(btFormatV1(t, audittest.NewFixture(t, 0).Encode()), btVerifyOpts)
		require.NoError(t, err, "a format 1 bundle of one manifest verifies as before")
		assert.Equal(t, []uint64{1}, s.ManifestVersions)
		assert.Contains(t, s.Notes, "a format imtgt-audit-bundle/1 bundle carries one manifest: every countersignature and receipt was checked against it")
	})
}

// btFormatV1 rewrites a bundle's header as a node before format 2 wrote
// it: format 1, the installed manifest only.
func btFormatV1(t *testing.T, data []byte) []byte {
	t.Helper()
	first, rest, _ := bytes.Cut(data, []byte("\n"))
	var line map[string]map[string]any
	require.NoError(t, json.Unmarshal(first, &line))
	line["header"]["format"] = audit.BundleFormatV1
	delete(line["header"], "manifests")
	delete(line["header"], "manifest_at_start")
	out, err := json.Marshal(line)
	require.NoError(t, err)
	return append(append(out, '\n'), rest...)
}

// btMembershipBreaks are the ways evidence across a membership change is
// refused, on NewMembershipFixture's bundle. {MY} and {ID} in want stand
// for those countries' peer IDs.
var btMembershipBreaks = []struct {
	name  string
	brk   func(t testing.TB, f *audittest.Fixture)
	want  string
	isErr error
}{
	{
		name: "the removed member countersigns a checkpoint after its removal",
		brk: func(t testing.TB, f *audittest.Fixture) {
			c := &f.Bundle.Checkpoints[1]
			w, err := audit.Countersign(f.Keys["ID"], "ID", c, c.Time.Add(time.Second))
			require.NoError(t, err)
			c.Witnesses = append(c.Witnesses, w)
		},
		want: "checkpoint at seq 6 (line 9): bad checkpoint: witness {ID} (ID) was removed from federation imtgt-test by manifest version 3 " +
			"(entry 5 (line 6), 2026-03-01T08:04:00Z), before entry 6: a countersignature after its removal",
		isErr: audit.ErrBadCheckpoint,
	},
	{
		name: "the removed member countersigns an older checkpoint, dated after its removal",
		brk: func(t testing.TB, f *audittest.Fixture) {
			c := &f.Bundle.Checkpoints[0]
			w, err := audit.Countersign(f.Keys["ID"], "ID", c, f.Bundle.Entries[4].Time.Add(time.Minute))
			require.NoError(t, err)
			c.Witnesses[1] = w
		},
		want: "checkpoint at seq 4 (line 8): bad checkpoint: witness {ID} (ID) countersigned at 2026-03-01T08:05:00Z, after manifest version 3 " +
			"(entry 5 (line 6), 2026-03-01T08:04:00Z) removed it from federation imtgt-test: a countersignature after its removal",
		isErr: audit.ErrBadCheckpoint,
	},
	{
		name: "a receipt the removed member made after its removal",
		brk: func(t testing.TB, f *audittest.Fixture) {
			at := f.NextTime()
			f.Add(f.OrderEgressAt(at, audit.StatusEgress, "ID", "ORD-8", 1, 1, "order.id", "order.status"))
			f.Bundle.Checkpoints = f.Bundle.Checkpoints[:1]
			f.Checkpoint("MY")
			f.ReceiptAt(at, "ID", "ID", "status", "ORD-8", 1)
		},
		want: "receipt of status for order ORD-8 (line 12): bad evidence bundle: ID was removed from federation imtgt-test by manifest version 3 " +
			"(entry 5 (line 6), 2026-03-01T08:04:00Z), before the receipt was made (2026-03-01T08:06:00Z): a receipt after its removal",
		isErr: audit.ErrBundle,
	},
	{
		name:  "the manifest version in force before the change is missing",
		brk:   func(t testing.TB, f *audittest.Fixture) { f.Bundle.Header.Manifests = f.Bundle.Header.Manifests[1:] },
		want:  "entry 1 (line 2): bad evidence bundle: installs a manifest (payload hash ",
		isErr: audit.ErrBundle,
	},
	{
		name:  "the installed manifest is missing from the history",
		brk:   func(t testing.TB, f *audittest.Fixture) { f.Bundle.Header.Manifests = f.Bundle.Header.Manifests[:1] },
		want:  "header (line 1): bad evidence bundle: manifest is not manifests' newest version 2",
		isErr: audit.ErrBundle,
	},
	{
		name:  "no manifest history at all",
		brk:   func(t testing.TB, f *audittest.Fixture) { f.Bundle.Header.Manifests = nil },
		want:  `header (line 1): bad evidence bundle: manifests is empty: a format "imtgt-audit-bundle/2" bundle carries every manifest version the node installed`,
		isErr: audit.ErrBundle,
	},
	{
		name: "a change the previous quorum did not approve",
		brk: func(t testing.TB, f *audittest.Fixture) {
			// MY alone, at threshold 1, drops ID: version 2 needs two of its members.
			v3 := f.SignedManifest(audittest.ManifestNoID, 1, []string{"MY", "TH"}, "MY")
			f.Bundle.Header.Manifest, f.Bundle.Header.Manifests[1].Document = v3, v3
			f.Bundle.Entries[4].PayloadHash = audittest.Hash(v3)
			btRelink(f, 4)
		},
		want:  "entry 5 (line 6): bad evidence bundle: installs manifest version 3, which no node could install then: not enough valid signatures: the current federation's quorum is missing",
		isErr: audit.ErrBundle,
	},
	{
		name: "an older version installed again after the change",
		brk: func(t testing.TB, f *audittest.Fixture) {
			f.Add(audit.Entry{Kind: audit.AdminManifest, PayloadHash: f.Bundle.Entries[0].PayloadHash, Reason: "installed manifest imtgt-test version 2"})
			f.Bundle.Checkpoints = f.Bundle.Checkpoints[:1]
			f.Checkpoint("MY")
		},
		want:  "entry 7 (line 8): bad evidence bundle: installs manifest version 2, which no node could install then: stale manifest version: version 2 is not newer than the installed version 3",
		isErr: audit.ErrBundle,
	},
	{
		name: "a manifest of the history signed by too few",
		brk: func(t testing.TB, f *audittest.Fixture) {
			f.Bundle.Header.Manifests[0].Document = f.SignedManifest(audittest.ManifestAll, 2, audittest.Countries, "MY")
		},
		want:  "header (line 1): bad evidence bundle: manifests[0] (version 2): 1 valid signature(s) of the 2 it requires",
		isErr: audit.ErrBundle,
	},
	{
		name: "a period that names no manifest at its start",
		brk: func(t testing.TB, f *audittest.Fixture) {
			h := &f.Bundle.Header
			h.FirstSeq, h.Prev, h.PolicyAtStart = 3, f.Bundle.Entries[1].Hash, 1
			f.Bundle.Entries = f.Bundle.Entries[2:]
		},
		want:  "checkpoint at seq 4 (line 6): bad checkpoint: witness {MY} (MY): no manifest was in force at entry 4",
		isErr: audit.ErrBadCheckpoint,
	},
	{
		name:  "manifest_at_start names a version the header lacks",
		brk:   func(t testing.TB, f *audittest.Fixture) { f.Bundle.Header.ManifestAtStart = 7 },
		want:  "header (line 1): bad evidence bundle: manifest_at_start 7 is none of the manifests",
		isErr: audit.ErrBundle,
	},
}

func TestVerifyMembershipRefuses(t *testing.T) {
	for _, tc := range btMembershipBreaks {
		t.Run(tc.name, func(t *testing.T) {
			f := audittest.NewMembershipFixture(t)
			tc.brk(t, f)
			s, err := btVerify(f.Encode(), btVerifyOpts)
			require.Error(t, err)
			assert.Nil(t, s)
			assert.ErrorIs(t, err, tc.isErr)
			ids := strings.NewReplacer("{MY}", f.Peers["MY"], "{ID}", f.Peers["ID"])
			assert.Contains(t, err.Error(), ids.Replace(tc.want))
		})
	}
}
