package catalog

import memdb "github.com/hashicorp/go-memdb"

// The catalog's memdb schema is declared as data, Nomad-style: table and
// index names are constants so that a typo is a compile error rather than a
// run-time "invalid index" error, each table has one function returning its
// schema, and dbSchema registers them all in one place.
const (
	tableListings     = "listings"
	tableOriginCounts = "origin_counts"

	// indexID is the primary key index every memdb table must have.
	indexID     = "id"
	indexOrigin = "origin"
	indexSeller = "seller"
	indexRegion = "region"
	indexHS     = "hs"
	indexToken  = "token"
)

// maxHSIndexed is the longest HS code prefix that gets its own posting list
// in the "hs" index. HS 2022 subheadings have 6 digits and national tariff
// lines 8 to 10; a query prefix longer than this is still answered, by the
// filter predicate alone.
const maxHSIndexed = 10

// dbSchema returns the schema of the whole catalog database.
func dbSchema() *memdb.DBSchema {
	tables := []*memdb.TableSchema{
		listingsTableSchema(),
		originCountsTableSchema(),
	}
	s := &memdb.DBSchema{Tables: make(map[string]*memdb.TableSchema, len(tables))}
	for _, t := range tables {
		s.Tables[t.Name] = t
	}
	return s
}

// listingsTableSchema is the table of *entry, one per listing.
//
// Every non-unique index key is built by memdb as the index value, a NUL,
// then the primary key (the ID and its NUL): "value\x00lst_01H...\x00".
// Because of that, the entries under one value are sorted by ID, and IDs are
// "lst_"+ULID, so by creation time. Search relies on this: each index value
// is a posting list sorted by ID that can be walked newest first, from any
// cursor, with ReverseLowerBound.
//
// None of the string indexes sets Lowercase: tokens are already lower-cased
// by Tokens, other values are exact codes, and Lowercase would also lower-case
// the ID part of the seek arguments Search builds ("token\x00<id>"), and ULIDs
// are upper case.
func listingsTableSchema() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tableListings,
		Indexes: map[string]*memdb.IndexSchema{
			indexID: {
				Name:    indexID,
				Unique:  true,
				Indexer: &memdb.StringFieldIndex{Field: "ID"},
			},
			indexOrigin: {
				Name:         indexOrigin,
				AllowMissing: true, // an empty Origin is simply not indexed
				Indexer:      &memdb.StringFieldIndex{Field: "Origin"},
			},
			indexSeller: {
				Name:         indexSeller,
				AllowMissing: true,
				Indexer:      &memdb.StringFieldIndex{Field: "SellerID"},
			},
			// region and hs are not in the original design: they turn the
			// Region and HS filters into ID-sorted posting lists too, so
			// that Search can walk a selective filter's short list instead
			// of a common word's long one.
			indexRegion: {
				Name:         indexRegion,
				AllowMissing: true,
				Indexer:      &memdb.StringFieldIndex{Field: "ShipFrom"},
			},
			indexHS: {
				Name:         indexHS,
				AllowMissing: true,
				Indexer:      &memdb.StringSliceFieldIndex{Field: "HSPrefixes"},
			},
			indexToken: {
				Name:         indexToken,
				AllowMissing: true, // a listing with no words at all
				Indexer:      &memdb.StringSliceFieldIndex{Field: "Tokens"},
			},
		},
	}
}

// originCountsTableSchema is a tiny table of *originCount, one per origin,
// kept up to date in the same write transactions as the listings so that
// Count and CountByOrigin are exact, consistent snapshots that cost a few
// rows instead of a walk over every listing.
func originCountsTableSchema() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tableOriginCounts,
		Indexes: map[string]*memdb.IndexSchema{
			indexID: {
				Name:    indexID,
				Unique:  true,
				Indexer: &memdb.StringFieldIndex{Field: "Key"},
			},
		},
	}
}
