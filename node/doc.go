// Package node wires a national node together: it lays out and initialises
// a node directory (Init), loads its configuration and keys, opens its store,
// rebuilds its catalog index and serves its HTTP API (Open, Start, Close).
// It also runs the demo.
//
// A node directory:
//
//	DIR/config.yaml        commented configuration (see Config)
//	DIR/operator.token     the operator's bearer token, written once (0600)
//	DIR/keys/node.key      node identity, Ed25519 (0600)
//	DIR/keys/governance.key agency governance key, Ed25519 (0600)
//	DIR/keys/data.key      AES-256 key sealing personal fields (0600)
//	DIR/data/node.db       the bbolt store
package node
