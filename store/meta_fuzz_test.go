package store

import (
	"encoding/binary"
	"hash/fnv"
	"testing"
)

// FuzzDecodeMeta feeds arbitrary bytes to the meta page decoder that
// reads a store file before bbolt maps it: it must never panic, and what
// it accepts must be a meta page bbolt would accept, with pages in range.
func FuzzDecodeMeta(f *testing.F) {
	valid := make([]byte, boltPageHeader+boltMetaSize)
	o := binary.NativeEndian
	m := valid[boltPageHeader:]
	o.PutUint32(m[0:], boltMagic)
	o.PutUint32(m[4:], boltVersion)
	o.PutUint32(m[8:], 4096)
	o.PutUint64(m[16:], 3) // root
	o.PutUint64(m[32:], 2) // freelist
	o.PutUint64(m[40:], 4) // pgid
	o.PutUint64(m[48:], 1) // txid
	h := fnv.New64a()
	h.Write(m[:56])
	o.PutUint64(m[56:], h.Sum64())
	f.Add(valid)
	f.Add(valid[:40])
	f.Add(make([]byte, 4096))
	f.Fuzz(func(t *testing.T, b []byte) {
		fm, err := decodeMeta(b)
		if err != nil {
			return
		}
		if fm.PageSize < 512 || fm.PageSize&(fm.PageSize-1) != 0 || fm.Root >= fm.Pgid || fm.Root < 2 {
			t.Fatalf("accepted an impossible meta page: %+v", fm)
		}
		if fm.Freelist != boltNoFreelist && fm.Freelist >= fm.Pgid {
			t.Fatalf("accepted a freelist past the last page: %+v", fm)
		}
	})
}
