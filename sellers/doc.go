// Package sellers registers sellers with their home node, validates their
// identifiers for the node's country, and keeps their personal data sealed.
//
// A Seller has a public profile (legal name, business ID, region, business
// contact: what consumer-protection law requires a seller to publish) and
// personal fields (the owner's name, national ID, phone, e-mail and
// address, and the bank account). Personal fields are sealed with the
// node's data key (AES-256-GCM, bound to the seller's ID) before they reach
// the store, so the store file never holds them in plaintext; they are
// opened only to show them to the seller and the operator. They never
// leave the node.
package sellers
