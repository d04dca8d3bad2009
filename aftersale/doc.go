// Package aftersale is the model and the rules of an after-sale issue: a
// buyer's complaint about a cross-border order (not received, damaged, the
// wrong item, a refund that never came), the seller's response, returns,
// refunds, escalation to the buyer country's consumer body and its
// decision.
//
// It holds no storage, HTTP or federation: every function is a pure
// function of its inputs and the time it is given, so the buyer's node and
// the seller's node, applying the same messages, reach the same issue, and
// deadlines are tested with a clock the test controls. The caller (the
// service that stores issues) passes an [OrderView] of the order the issue
// is about and the buyer country's [Deadlines].
//
// An [Issue] is opened with [Open] and then moves only through the
// transitions listed in [Moves], each with the actors allowed to make it:
//
//	open → accepted | proposed | rejected            (seller)
//	proposed → accepted | declined → escalated       (marketplace; the decline escalates on its own)
//	rejected → closed (marketplace accepts) | escalated
//	accepted (return_and_refund) → return_requested → return_shipped (marketplace)
//	        → return_received (seller) → refunded → resolved
//	accepted (refund) → refunded → resolved
//	accepted (replacement) → resolved                (seller reports it shipped)
//	escalated → decided (operator) → resolved | refunded → resolved
//
// [Respond] applies a response (accept, propose, reject, decline and the
// return and replacement steps), [Escalate] an escalation by the
// marketplace or by the system when [Due] says a deadline passed, [Decide]
// the operator's decision, [AddRefund] a refund the marketplace paid
// (never more, for one order across all its issues, than was paid), and
// [Restock] says what a received return puts back into stock. A move no
// actor may make is [ErrIllegalTransition] (HTTP 409); a move another
// actor may make is [ErrForbidden]. Bad input is a *validation.Error
// naming the field (HTTP 422).
package aftersale
