// Package catalog is the listing side of a node: the Listing model, the
// seller-facing service that validates, stores and indexes listings
// (Catalog), bulk import from CSV and NDJSON, and the in-memory search
// index (Index: the listings table in go-memdb, the posting lists of
// tokens, HS prefixes, origins and regions in an inverted index beside it,
// see postings.go) that serves GET /v1/catalog/search.
//
// The store is the source of truth; the index is rebuilt from it at
// start-up in one restore transaction and kept in step on every write,
// after the write is durable.
package catalog
