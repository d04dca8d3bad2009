// Package auditor is what an auditor does with a node's evidence: check
// each crossing against the signed policy in force when it happened
// (CheckCrossing), compute the residency report (Residency, RenderHTML),
// and verify an evidence bundle offline, with no network and no private
// keys (ReadBundle in package audit, then Verify).
//
// It depends on the policy and membership packages to judge entries; the
// entries themselves, their chain and the bundle format are package
// audit's, a leaf every part of the node can write to.
package auditor
