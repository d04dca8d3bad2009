// Package audit is the node's evidence log: an append-only, hash-chained
// log of every crossing (egress and ingress of catalog records, order
// handoffs, status messages and receipts), every rejection and every
// administrative act; checkpoints of that chain signed by the node and
// countersigned by its peers; and the evidence bundle format that carries
// them to an auditor.
//
// The package is a leaf: it hashes, signs and encodes, and imports nothing
// of the node, so the catalog, store, orders and federation can all write
// entries. Checking entries against policies, the residency report and
// the offline verifier are package auditor's.
//
// The store appends entries inside the same bbolt transaction as the
// change they record (store/audit.go), so an entry exists exactly when its
// change does. What an entry holds is the names of the fields that
// crossed, never their values: personal data is not copied into the log.
package audit
