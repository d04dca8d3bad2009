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
	indexSeller = "seller"
)

// maxHSIndexed is the longest HS code prefix that gets its own posting list
// in the inverted index (postings.go). HS 2022 subheadings have 6 digits
// and national tariff lines 8 to 10; a query prefix longer than this is
// still answered, by the filter predicate alone.
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
// "lst_"+ULID, so by creation time. Search and BySeller rely on this: a
// seller's listings are a posting list sorted by ID that can be walked
// newest first, from any cursor, with ReverseLowerBound.
//
// The table used to have origin, region, hs and token indexes too. They
// are the inverted index of postings.go now, which says why: memdb keeps
// the indexes with one key per listing whose values are not shared by tens
// of thousands of listings.
//
// The seller index does not set Lowercase: seller IDs are exact, and
// Lowercase would also lower-case the ID part of the seek arguments Search
// builds ("seller\x00<id>"), and ULIDs are upper case.
func listingsTableSchema() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tableListings,
		Indexes: map[string]*memdb.IndexSchema{
			indexID: {
				Name:    indexID,
				Unique:  true,
				Indexer: &memdb.StringFieldIndex{Field: "ID"},
			},
			indexSeller: {
				Name:         indexSeller,
				AllowMissing: true, // an empty SellerID is simply not indexed
				Indexer:      &memdb.StringFieldIndex{Field: "SellerID"},
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
