// Package policy is a country's rules as data: a declarative, versioned
// YAML policy signed by the issuing agency's governance key (docs/POLICY.md
// documents the format), loaded with every rule checked (Parse), and the
// pure functions that apply it:
//
//   - Project, the one egress function: it builds every domain record sent
//     to a peer, keeping only the fields a transfer rule allows for that
//     destination and purpose, and returns the evidence of what crossed;
//   - Evaluate, the import decision for this country's buyers (bans,
//     permits, minimum unit price), and MakeOrderQuote, the landed cost
//     (duty, taxes) of a consignment in exact decimal arithmetic, de
//     minimis and tax thresholds decided on its total (MakeQuote is the
//     one-item case);
//   - ExportDecision, whether a seller's listing may be published abroad.
//
// Every decision cites the rule's ID and source. policy does no I/O and
// reads no clock: time is an argument. No other code path serialises a
// domain record onto the federation wire (a test checks the source tree).
package policy
