// Package keys creates and loads a node's secret keys, and seals personal
// fields with the node's data key.
//
// A node directory holds three keys under keys/, each a PEM file with mode
// 0600:
//
//   - node.key: the node's Ed25519 identity (its libp2p peer ID, and the key
//     that signs catalog records and receipts);
//   - governance.key: the agency's Ed25519 governance key, which signs
//     membership manifests and policies (an agency may move it offline);
//   - data.key: 256 bits for AES-256-GCM, which seals personal fields at rest.
//
// Load refuses key files that other users can read: a key that leaked is a
// key that must be rotated, and the operator should hear about it at start.
package keys
