package orders

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/imtgt/imtgt-node/aftersale"
	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/policy"
)

// Outbox kinds.
const (
	KindHandoff = "handoff"
	KindStatus  = "status"
)

// OutboxRow is one message waiting for delivery to a peer, written in the
// same transaction as the change it carries.
type OutboxRow struct {
	Dest    string `json:"dest"` // the receiving node's country
	Seq     uint64 `json:"seq"`  // position in the destination's queue (the store assigns it)
	Kind    string `json:"kind"`
	OrderID string `json:"order_id"`
	MsgSeq  uint64 `json:"msg_seq"` // the order's message number (1 for a handoff)
	// Payload is the deterministic protobuf of the OrderHandoff or
	// OrderStatus. The store keeps it apart from the row: the relay reads
	// every row's metadata on each pass, the payload only to send it.
	Payload []byte `json:"-"`
	// Transfer is the policy's evidence for the payload's projection:
	// what the audit entry of its delivery records.
	Transfer  *policy.Transfer `json:"transfer,omitempty"`
	Attempts  int              `json:"attempts"`
	NextRetry time.Time        `json:"next_retry"`
	LastError string           `json:"last_error,omitempty"`
	CreatedAt time.Time        `json:"created_at"`
}

// InboxEntry is what a node remembers of a message it received: the
// payload hash, and the receipt it answered, which a repeat gets back.
type InboxEntry struct {
	Hash    []byte `json:"hash"`
	Receipt []byte `json:"receipt"`
}

// InboxKey names a received message: origin country, order, kind and seq.
func InboxKey(origin, orderID, kind string, seq uint64) string {
	return origin + "\x00" + orderID + "\x00" + kind + "\x00" + strconv.FormatUint(seq, 10)
}

// Applied is what a received status message does to its order: the
// outbox rows to append, the receipt answered and the audit entries, all
// stored with the order.
type Applied struct {
	Rows    []OutboxRow
	Receipt []byte
	Audit   []*audit.Entry
	// Stock, when not nil, is the stock a cancelled order gives back.
	Stock *StockBack
}

// StockBack is what an order that took stock gives back when it is
// cancelled: its listings' new versions, stored with their records of the
// Origin's catalog log (sealed by Seal) in the order's own transaction, as
// a handoff takes stock. A listing changed meanwhile by another writer
// makes the transaction fail with catalog.ErrStale, storing nothing.
type StockBack struct {
	Listings []*catalog.Listing
	Origin   string
	Seal     catalog.SealFunc
}

// KeptReceipt is a peer's receipt for a message this node sent.
type KeptReceipt struct {
	From     string `json:"from"` // the country whose node signed it
	OrderID  string `json:"order_id"`
	Kind     string `json:"kind"`
	Seq      uint64 `json:"seq"`
	Envelope []byte `json:"envelope"`
}

// ReceivedHandoff is one handoff as the seller's node stores it.
type ReceivedHandoff struct {
	Key   string
	Entry InboxEntry
	Order *Order
	Audit []*audit.Entry // appended in the same transaction
}

// ConflictError says which handoff of a group met an inbox key or order
// ID that exists. It matches ErrConflict.
type ConflictError struct{ Index int }

func (e *ConflictError) Error() string        { return fmt.Sprintf("handoff %d: %v", e.Index, ErrConflict) }
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// Store is what orders need from persistent storage. Every method is one
// durable transaction.
type Store interface {
	// PlaceOrders stores new orders with their outbox rows under an
	// idempotency key of the marketplace. If the key exists with the same
	// request hash, it returns the orders stored then and true; with
	// another hash, ErrIdempotency.
	PlaceOrders(ctx context.Context, marketplaceID, key string, hash []byte, orders []*Order, outbox []OutboxRow) ([]*Order, bool, error)
	// PlacedOrders returns the orders stored under a marketplace's
	// idempotency key (false if none); ErrIdempotency if the key was used
	// with another request hash.
	PlacedOrders(ctx context.Context, marketplaceID, key string, hash []byte) ([]*Order, bool, error)
	Order(ctx context.Context, id string) (*Order, error)
	// Orders lists orders by ID after the given one that keep passes.
	Orders(ctx context.Context, keep func(*Order) bool, after string, limit int) ([]*Order, error)
	// UpdateOrder applies fn to an order and appends the outbox rows it
	// returns, in one transaction.
	UpdateOrder(ctx context.Context, id string, fn func(*Order) ([]OutboxRow, error)) (*Order, error)
	// ChangeOrder applies fn to an order and stores what it returns with
	// it (outbox rows, audit entries, stock given back; not a receipt), in
	// one transaction.
	ChangeOrder(ctx context.Context, id string, fn func(*Order) (Applied, error)) (*Order, error)
	// IssueOrder returns the ID of the order an issue is about
	// (ErrIssueNotFound if none).
	IssueOrder(ctx context.Context, issueID string) (string, error)
	// Issues lists issues by ID after the given one that keep passes.
	Issues(ctx context.Context, keep func(*Order, *aftersale.Issue) bool, after string, limit int) ([]IssueRef, error)
	// UpdateOrderStock is UpdateOrder that also stores the stock fn gives
	// back (nil: none), in the same transaction.
	UpdateOrderStock(ctx context.Context, id string, fn func(*Order) ([]OutboxRow, *StockBack, error)) (*Order, error)
	// Outbox lists pending rows, oldest first per destination, without
	// their payloads.
	Outbox(ctx context.Context) ([]OutboxRow, error)
	// OutboxAfter lists, per destination, the pending rows after the
	// given sequence number (all rows of a destination not in after).
	OutboxAfter(ctx context.Context, after map[string]uint64) ([]OutboxRow, error)
	// OutboxPayload returns a pending row's payload (nil if the row is gone).
	OutboxPayload(ctx context.Context, dest string, seq uint64) ([]byte, error)
	// CompleteOutbox removes a delivered row, keeps the receipt it got as
	// evidence, applies fn to its order and appends the audit entries, in
	// one transaction.
	CompleteOutbox(ctx context.Context, row OutboxRow, receipt []byte, entries []*audit.Entry, fn func(*Order) ([]OutboxRow, error)) error
	// Receipts calls fn for every receipt kept by CompleteOutbox.
	Receipts(ctx context.Context, fn func(KeptReceipt) error) error
	// OrderReceipts returns the receipts kept for the messages of one
	// order sent to dest, by kind and seq.
	OrderReceipts(ctx context.Context, dest, orderID string) ([]KeptReceipt, error)
	// InboxReceipts returns the receipts this node answered the messages
	// of one order from origin with, by kind and seq.
	InboxReceipts(ctx context.Context, origin, orderID string) ([]KeptReceipt, error)
	// RetryOutbox records a failed attempt.
	RetryOutbox(ctx context.Context, row OutboxRow) error
	// Inbox returns what was received under key, or nil.
	Inbox(ctx context.Context, key string) (*InboxEntry, error)
	// ReceiveHandoffs stores received orders with their inbox entries,
	// the listings' new stock and their catalog log records (sealed by
	// seal for the origin country's log), in one transaction. If an inbox
	// key or order ID exists it stores nothing and returns a
	// *ConflictError naming the first such handoff.
	ReceiveHandoffs(ctx context.Context, hs []ReceivedHandoff, stock []*catalog.Listing, origin string, seal catalog.SealFunc) error
	// ApplyReceived applies fn to an order, appends the outbox rows it
	// returns and stores the inbox entry with the receipt and the stock it
	// returns, in one transaction; ErrConflict if the inbox key exists.
	ApplyReceived(ctx context.Context, key string, hash []byte, orderID string, fn func(*Order) (Applied, error)) (*Order, []byte, error)
}
