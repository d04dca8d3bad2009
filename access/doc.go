// Package access defines who may call the node: roles, bearer tokens and
// the principal a token stands for.
//
// Tokens are 256 random bits, shown to their holder once and kept by the
// node only as a SHA-256 hash, so a copy of the store cannot be used to
// call the API. A token carries its role in a readable prefix
// ("imtgt_seller_…") so an operator can tell tokens apart in a password
// manager; the prefix grants nothing: the role is read from the store.
package access
