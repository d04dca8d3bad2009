package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/imtgt/imtgt-node/audit"
)

// bucketPeerPolicies is peer_policies/<country>/<version, 8-byte BE>: the
// signed policy files the other members offered (federation/policy.go),
// their exact bytes. A country's current policy is its highest version:
// a file replaces the held one only with a higher version, so the last
// key is it, and no "current" key can disagree with the history. Created
// on the first save, like federation/manifests, so no schema upgrade is
// needed.
var bucketPeerPolicies = []byte("peer_policies")

// ErrPeerPolicy is wrapped by a peer policy SavePeerPolicy refuses: an
// older version than the one held, or the held version with other bytes.
var ErrPeerPolicy = errors.New("peer policy not stored")

// SavePeerPolicy stores a member's signed policy file (already verified)
// under its country and version, with the audit entries of its install,
// in one transaction. It reports false, and writes nothing, when that
// exact file is already held. A version below the held one, or the held
// version with different bytes, is refused (ErrPeerPolicy): the history
// never changes.
func (db *DB) SavePeerPolicy(country string, version uint64, raw []byte, entries ...*audit.Entry) (bool, error) {
	if country == "" || bytes.IndexByte([]byte(country), 0) >= 0 {
		return false, fmt.Errorf("%w: country %q", ErrPeerPolicy, country)
	}
	stored := false
	err := db.kv.update(func(tx kvTx) error {
		if b := tx.Bucket(bucketPeerPolicies); b != nil {
			if cb := b.Bucket([]byte(country)); cb != nil {
				if k, v := cb.Cursor().Last(); k != nil {
					held := binary.BigEndian.Uint64(k)
					switch {
					case version < held:
						return fmt.Errorf("%w: %s's version %d is older than the held version %d", ErrPeerPolicy, country, version, held)
					case version == held && bytes.Equal(v, raw):
						return nil
					case version == held:
						return fmt.Errorf("%w: %s's version %d differs from the held file of that version", ErrPeerPolicy, country, version)
					}
				}
			}
		}
		top, err := tx.CreateBucketIfNotExists(bucketPeerPolicies)
		if err != nil {
			return err
		}
		cb, err := top.CreateBucketIfNotExists([]byte(country))
		if err != nil {
			return err
		}
		if err := db.appendAudit(tx, entries...); err != nil {
			return err
		}
		if err := cb.Put(seqKey(version), raw); err != nil {
			return err
		}
		stored = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return stored, nil
}

// PeerPolicy returns the current policy file of a member, or nil.
func (db *DB) PeerPolicy(country string) ([]byte, error) {
	var raw []byte
	err := db.kv.view(func(tx kvTx) error {
		b := tx.Bucket(bucketPeerPolicies)
		if b == nil {
			return nil
		}
		cb := b.Bucket([]byte(country))
		if cb == nil {
			return nil
		}
		if k, v := cb.Cursor().Last(); k != nil {
			raw = bytes.Clone(v)
		}
		return nil
	})
	return raw, err
}

// PeerPolicies returns the current policy file of every member held, by
// country.
func (db *DB) PeerPolicies() (map[string][]byte, error) {
	out := map[string][]byte{}
	err := db.kv.view(func(tx kvTx) error {
		b := tx.Bucket(bucketPeerPolicies)
		if b == nil {
			return nil
		}
		return b.ForEachBucket(func(country []byte) error {
			if k, v := b.Bucket(country).Cursor().Last(); k != nil {
				out[string(country)] = bytes.Clone(v)
			}
			return nil
		})
	})
	return out, err
}

// PeerPolicyVersions returns every policy file of a member held, by version.
func (db *DB) PeerPolicyVersions(country string) (map[uint64][]byte, error) {
	out := map[uint64][]byte{}
	err := db.kv.view(func(tx kvTx) error {
		b := tx.Bucket(bucketPeerPolicies)
		if b == nil {
			return nil
		}
		cb := b.Bucket([]byte(country))
		if cb == nil {
			return nil
		}
		return cb.ForEach(func(k, v []byte) error {
			out[binary.BigEndian.Uint64(k)] = bytes.Clone(v)
			return nil
		})
	})
	return out, err
}
