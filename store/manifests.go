package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/membership"
)

// bucketManifests is federation/manifests: every manifest version the node
// installed, so that evidence made under an older membership (a removed
// member's countersignatures and receipts) can still be checked against the
// manifest in force when it was made. Created on the first install, like
// policy/versions, so no schema upgrade is needed: a store from before it
// has only federation/manifest, which ManifestVersions reports as well.
var bucketManifests = []byte("manifests")

// ManifestVersion is one installed manifest version.
type ManifestVersion struct {
	Version uint64
	// InstalledAt is when this node installed it: the time of its
	// admin.manifest audit entry. Zero for the manifest a store from
	// before the history holds.
	InstalledAt time.Time
	Raw         []byte // the exact signed YAML
}

// putManifest installs raw as federation/manifest and keeps it in
// federation/manifests under its version, inside the install's
// transaction. The manifest it replaces is kept first if the history
// lacks it (a store from before the history), with no install time. A
// history value is the install time (8-byte BE Unix nanoseconds, 0 if
// unknown), then the exact bytes.
func putManifest(tx kvTx, raw []byte, at time.Time) error {
	fed := tx.Bucket(bucketFederation)
	b, err := fed.CreateBucketIfNotExists(bucketManifests)
	if err != nil {
		return err
	}
	if old := fed.Get(keyManifest); old != nil {
		m, err := membership.Parse(old)
		if err != nil {
			return fmt.Errorf("installed manifest: %w", err)
		}
		if b.Get(seqKey(m.Version)) == nil {
			if err := b.Put(seqKey(m.Version), append(make([]byte, 8), old...)); err != nil {
				return err
			}
		}
	}
	m, err := membership.Parse(raw)
	if err != nil {
		return fmt.Errorf("manifest history: %w", err)
	}
	v := binary.BigEndian.AppendUint64(nil, uint64(at.UnixNano()))
	if err := b.Put(seqKey(m.Version), append(v, raw...)); err != nil {
		return err
	}
	return fed.Put(keyManifest, raw)
}

// installTime is the time an install's audit entries got (appendAudit
// sets it), or now when there are none.
func installTime(entries []*audit.Entry) time.Time {
	if len(entries) > 0 && !entries[0].Time.IsZero() {
		return entries[0].Time.UTC()
	}
	return time.Now().UTC()
}

// ManifestVersions returns every manifest version the node installed, by
// ascending version. The installed manifest is always among them, even
// in a store written before the history was kept.
func (db *DB) ManifestVersions() ([]ManifestVersion, error) {
	var out []ManifestVersion
	var current []byte
	err := db.kv.view(func(tx kvTx) error {
		fed := tx.Bucket(bucketFederation)
		if v := fed.Get(keyManifest); v != nil {
			current = bytes.Clone(v)
		}
		b := fed.Bucket(bucketManifests)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if len(k) != 8 || len(v) < 8 {
				return fmt.Errorf("federation/manifests: malformed record %x", k)
			}
			out = append(out, ManifestVersion{
				Version:     binary.BigEndian.Uint64(k),
				InstalledAt: unixNanoOrZero(binary.BigEndian.Uint64(v)),
				Raw:         bytes.Clone(v[8:]),
			})
			return nil
		})
	})
	if err != nil || current == nil {
		return out, err
	}
	m, err := membership.Parse(current)
	if err != nil {
		return nil, fmt.Errorf("installed manifest: %w", err)
	}
	if !slices.ContainsFunc(out, func(mv ManifestVersion) bool { return mv.Version == m.Version }) {
		out = append(out, ManifestVersion{Version: m.Version, Raw: current})
		slices.SortFunc(out, func(a, b ManifestVersion) int { return cmp.Compare(a.Version, b.Version) })
	}
	return out, nil
}

// unixNanoOrZero is the time of n Unix nanoseconds, or the zero time for 0.
func unixNanoOrZero(n uint64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(n)).UTC()
}
