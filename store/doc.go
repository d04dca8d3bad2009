// Package store is a node's persistent state: one bbolt file, or a
// PostgreSQL database shared by the node's replicas (OpenURL).
//
// It implements the Store interfaces that the domain packages own
// (sellers.Store, catalog.Store, and the token look-up of the HTTP API),
// keeps a schema version with an upgrade path, and takes consistent
// backups of a live database.
package store
