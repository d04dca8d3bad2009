// Package orders carries cross-border orders from the buyer's node to the
// seller's node exactly once, and their progress back.
//
// On the buyer's node a marketplace places an order (Service.Place): the
// import policy is checked, a landed-cost quote attached, the buyer
// country's legal basis for sending the recipient's data verified (ID:
// recorded consent), and the order and its outbox row are written in one
// transaction. A relay (Relay) delivers outbox rows over the federation's
// /imtgt/orders/1.0.0 protocol, with backoff, until the seller's node
// returns a receipt signed by its node key.
//
// On the seller's node (Service.HandleHandoffs, a batch as one group) the inbox key (origin,
// order ID, kind, seq, payload hash) is written in the same transaction as
// the order and the stock decrement; a repeated delivery gets the original
// receipt back, the same ID with other content is refused. The seller's
// transitions travel back the same durable, signed, idempotent way, in
// order (per-order sequence numbers).
//
// States (after ONDC retail): created → submitted → received → accepted |
// rejected → packed → shipped → delivered; cancelled from created up to
// packed. After the seller's node received an order it is the authority on
// its state: a buyer-side cancellation it cannot apply is refused, and the
// buyer's node then shows the seller's state.
package orders
