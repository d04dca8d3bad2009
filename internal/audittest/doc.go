// Package audittest is the evidence-bundle fixture the tests of packages
// audit and auditor share: a federation of three nodes with real keys, a
// manifest signed by all, TH's signed policies, and a bundle of TH's
// chain (entries, checkpoints and receipts) that tests edit and encode.
//
// It is for tests only: it imports testing and fails the test through
// require on any error.
package audittest
