package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/orders"
)

type orderKey struct {
	Hash   []byte   `json:"hash"`
	Orders []string `json:"orders"`
}

func getOrder(tx kvTx, id string) (*orders.Order, error) {
	v := tx.Bucket(bucketOrders).Get([]byte(id))
	if v == nil {
		return nil, fmt.Errorf("%w: %s", orders.ErrNotFound, id)
	}
	var o orders.Order
	if err := json.Unmarshal(v, &o); err != nil {
		return nil, fmt.Errorf("order %s: %w", id, err)
	}
	return &o, nil
}

// Outbox rows live in outbox/<dest>/<seq> as JSON without their payload,
// and the payloads in outbox_payloads/<dest>/<seq> as raw bytes: the relay
// scans the rows on every pass, so they stay small.
var bucketOutboxPayloads = []byte("outbox_payloads")

func outboxBuckets(tx kvTx, dest string) (rows, payloads kvBucket, err error) {
	if rows, err = tx.Bucket(bucketOutbox).CreateBucketIfNotExists([]byte(dest)); err != nil {
		return nil, nil, err
	}
	p, err := tx.CreateBucketIfNotExists(bucketOutboxPayloads)
	if err != nil {
		return nil, nil, err
	}
	payloads, err = p.CreateBucketIfNotExists([]byte(dest))
	return rows, payloads, err
}

func putOutbox(tx kvTx, rows []orders.OutboxRow) error {
	for _, r := range rows {
		q, payloads, err := outboxBuckets(tx, r.Dest)
		if err != nil {
			return err
		}
		if r.Seq == 0 {
			if r.Seq, err = q.NextSequence(); err != nil {
				return err
			}
			if err := payloads.Put(seqKey(r.Seq), r.Payload); err != nil {
				return err
			}
		}
		if err := putJSON(q, seqKey(r.Seq), r); err != nil {
			return err
		}
	}
	return nil
}

// OutboxPayload implements orders.Store.
func (db *DB) OutboxPayload(ctx context.Context, dest string, seq uint64) ([]byte, error) {
	var out []byte
	err := db.kv.viewCtx(ctx, func(tx kvTx) error {
		p := tx.Bucket(bucketOutboxPayloads)
		if p == nil || p.Bucket([]byte(dest)) == nil {
			return nil
		}
		if v := p.Bucket([]byte(dest)).Get(seqKey(seq)); v != nil {
			out = append([]byte(nil), v...)
		}
		return nil
	})
	return out, err
}

// PlaceOrders implements orders.Store.
func (db *DB) PlaceOrders(ctx context.Context, marketplaceID, key string, hash []byte, os []*orders.Order, outbox []orders.OutboxRow) ([]*orders.Order, bool, error) {
	var existing []*orders.Order
	found := false
	err := db.batch(func(tx kvTx) error {
		k := []byte(marketplaceID + "\x00" + key)
		var err error
		if existing, found, err = placedOrders(tx, k, hash); err != nil || found {
			return err
		}
		ids := make([]string, 0, len(os))
		for _, o := range os {
			if err := putOrder(tx, o); err != nil {
				return err
			}
			ids = append(ids, o.ID)
		}
		if err := putOutbox(tx, outbox); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bucketOrderKeys), k, orderKey{Hash: hash, Orders: ids})
	})
	if err != nil {
		return nil, false, err
	}
	if found {
		return existing, true, nil
	}
	return os, false, nil
}

// PlacedOrders implements orders.Store.
func (db *DB) PlacedOrders(ctx context.Context, marketplaceID, key string, hash []byte) ([]*orders.Order, bool, error) {
	var out []*orders.Order
	found := false
	err := db.kv.viewCtx(ctx, func(tx kvTx) error {
		var err error
		out, found, err = placedOrders(tx, []byte(marketplaceID+"\x00"+key), hash)
		return err
	})
	return out, found, err
}

// placedOrders reads the orders stored under the order key k (false if
// none); ErrIdempotency if k was used with another request hash.
func placedOrders(tx kvTx, k, hash []byte) ([]*orders.Order, bool, error) {
	v := tx.Bucket(bucketOrderKeys).Get(k)
	if v == nil {
		return nil, false, nil
	}
	var ok orderKey
	if err := json.Unmarshal(v, &ok); err != nil {
		return nil, false, err
	}
	if !bytes.Equal(ok.Hash, hash) {
		return nil, false, orders.ErrIdempotency
	}
	var out []*orders.Order
	for _, id := range ok.Orders {
		o, err := getOrder(tx, id)
		if err != nil {
			return nil, false, err
		}
		out = append(out, o)
	}
	return out, true, nil
}

// Order implements orders.Store.
func (db *DB) Order(ctx context.Context, id string) (*orders.Order, error) {
	var o *orders.Order
	err := db.kv.viewCtx(ctx, func(tx kvTx) error {
		var err error
		o, err = getOrder(tx, id)
		return err
	})
	return o, err
}

// Orders implements orders.Store.
func (db *DB) Orders(ctx context.Context, keep func(*orders.Order) bool, after string, limit int) ([]*orders.Order, error) {
	var out []*orders.Order
	err := db.kv.viewCtx(ctx, func(tx kvTx) error {
		c := tx.Bucket(bucketOrders).Cursor()
		for k, v := seekAfter(c, after); k != nil && len(out) < limit; k, v = c.Next() {
			var o orders.Order
			if err := json.Unmarshal(v, &o); err != nil {
				return fmt.Errorf("order %s: %w", k, err)
			}
			if keep == nil || keep(&o) {
				out = append(out, &o)
			}
		}
		return nil
	})
	return out, err
}

func updateOrder(tx kvTx, id string, fn func(*orders.Order) ([]orders.OutboxRow, error)) (*orders.Order, error) {
	o, err := getOrder(tx, id)
	if err != nil {
		return nil, err
	}
	rows, err := fn(o)
	if err != nil {
		return nil, err
	}
	if err := putOrder(tx, o); err != nil {
		return nil, err
	}
	return o, putOutbox(tx, rows)
}

// UpdateOrder implements orders.Store.
func (db *DB) UpdateOrder(ctx context.Context, id string, fn func(*orders.Order) ([]orders.OutboxRow, error)) (*orders.Order, error) {
	var o *orders.Order
	err := db.batch(func(tx kvTx) error {
		var err error
		o, err = updateOrder(tx, id, fn)
		return err
	})
	return o, err
}

// UpdateOrderStock implements orders.Store.
func (db *DB) UpdateOrderStock(ctx context.Context, id string, fn func(*orders.Order) ([]orders.OutboxRow, *orders.StockBack, error)) (*orders.Order, error) {
	var o *orders.Order
	err := db.batch(func(tx kvTx) error {
		var back *orders.StockBack
		var err error
		o, err = updateOrder(tx, id, func(o *orders.Order) ([]orders.OutboxRow, error) {
			var rows []orders.OutboxRow
			rows, back, err = fn(o)
			return rows, err
		})
		if err != nil {
			return err
		}
		return putStockBack(tx, back)
	})
	return o, err
}

// putStockBack stores the listings an order gives stock back to, with
// their catalog log records, refusing a version changed meanwhile
// (catalog.ErrStale) as a handoff's stock decrement does.
func putStockBack(tx kvTx, back *orders.StockBack) error {
	if back == nil || len(back.Listings) == 0 {
		return nil
	}
	changes := make([]catalog.Change, len(back.Listings))
	for i, l := range back.Listings {
		changes[i] = catalog.Change{Listing: l}
	}
	return applyLocal(tx, back.Origin, changes, back.Seal)
}

// Outbox implements orders.Store.
func (db *DB) Outbox(ctx context.Context) ([]orders.OutboxRow, error) {
	return db.OutboxAfter(ctx, nil)
}

// OutboxAfter implements orders.Store. A destination's sequence numbers
// grow in commit order (bbolt has one writer), so a reader that has seen
// up to seq N has seen every row at or below N that will ever exist.
func (db *DB) OutboxAfter(ctx context.Context, after map[string]uint64) ([]orders.OutboxRow, error) {
	var out []orders.OutboxRow
	err := db.kv.viewCtx(ctx, func(tx kvTx) error {
		return tx.Bucket(bucketOutbox).ForEachBucket(func(dest []byte) error {
			c := tx.Bucket(bucketOutbox).Bucket(dest).Cursor()
			for k, v := c.Seek(seqKey(after[string(dest)] + 1)); k != nil; k, v = c.Next() {
				var r orders.OutboxRow
				if err := json.Unmarshal(v, &r); err != nil {
					return err
				}
				out = append(out, r)
			}
			return nil
		})
	})
	return out, err
}

// CompleteOutbox implements orders.Store.
func (db *DB) CompleteOutbox(ctx context.Context, row orders.OutboxRow, receipt []byte, entries []*audit.Entry, fn func(*orders.Order) ([]orders.OutboxRow, error)) error {
	return db.batch(func(tx kvTx) error {
		q := tx.Bucket(bucketOutbox).Bucket([]byte(row.Dest))
		if q == nil || q.Get(seqKey(row.Seq)) == nil {
			return nil // completed already (a retried batch)
		}
		if err := q.Delete(seqKey(row.Seq)); err != nil {
			return err
		}
		if p := tx.Bucket(bucketOutboxPayloads); p != nil && p.Bucket([]byte(row.Dest)) != nil {
			if err := p.Bucket([]byte(row.Dest)).Delete(seqKey(row.Seq)); err != nil {
				return err
			}
		}
		if _, err := updateOrder(tx, row.OrderID, fn); err != nil {
			return err
		}
		// The key says whose receipt for which message; the value is the
		// envelope as received (no JSON: it is written once per delivery).
		if err := tx.Bucket(bucketReceipts).Put([]byte(orders.InboxKey(row.Dest, row.OrderID, row.Kind, row.MsgSeq)), receipt); err != nil {
			return err
		}
		return db.appendAudit(tx, entries...)
	})
}

// RetryOutbox implements orders.Store.
func (db *DB) RetryOutbox(ctx context.Context, row orders.OutboxRow) error {
	return db.batch(func(tx kvTx) error {
		q := tx.Bucket(bucketOutbox).Bucket([]byte(row.Dest))
		if q == nil || q.Get(seqKey(row.Seq)) == nil {
			return nil
		}
		return putJSON(q, seqKey(row.Seq), row)
	})
}

// Inbox implements orders.Store.
func (db *DB) Inbox(ctx context.Context, key string) (*orders.InboxEntry, error) {
	var e *orders.InboxEntry
	err := db.kv.viewCtx(ctx, func(tx kvTx) error {
		v := tx.Bucket(bucketInbox).Get([]byte(key))
		if v == nil {
			return nil
		}
		e = &orders.InboxEntry{}
		return json.Unmarshal(v, e)
	})
	return e, err
}

// ReceiveHandoffs implements orders.Store.
func (db *DB) ReceiveHandoffs(ctx context.Context, hs []orders.ReceivedHandoff, stock []*catalog.Listing, origin string, seal catalog.SealFunc) error {
	return db.batch(func(tx kvTx) error {
		for i, h := range hs {
			// A concurrent delivery of the same message, or an ID that is
			// another origin's order or one of ours.
			if tx.Bucket(bucketInbox).Get([]byte(h.Key)) != nil || tx.Bucket(bucketOrders).Get([]byte(h.Order.ID)) != nil {
				return &orders.ConflictError{Index: i}
			}
			if err := putJSON(tx.Bucket(bucketInbox), []byte(h.Key), h.Entry); err != nil {
				return err
			}
			if err := putOrder(tx, h.Order); err != nil {
				return err
			}
			if err := db.appendAudit(tx, h.Audit...); err != nil {
				return err
			}
		}
		if len(stock) == 0 {
			return nil
		}
		changes := make([]catalog.Change, len(stock))
		for i, l := range stock {
			changes[i] = catalog.Change{Listing: l}
		}
		return applyLocal(tx, origin, changes, seal)
	})
}

// ApplyReceived implements orders.Store.
func (db *DB) ApplyReceived(ctx context.Context, key string, hash []byte, orderID string, fn func(*orders.Order) (orders.Applied, error)) (*orders.Order, []byte, error) {
	var o *orders.Order
	var receipt []byte
	err := db.batch(func(tx kvTx) error {
		if tx.Bucket(bucketInbox).Get([]byte(key)) != nil {
			return orders.ErrConflict
		}
		var entries []*audit.Entry
		var back *orders.StockBack
		var err error
		o, err = updateOrder(tx, orderID, func(o *orders.Order) ([]orders.OutboxRow, error) {
			a, err := fn(o)
			receipt, entries, back = a.Receipt, a.Audit, a.Stock
			return a.Rows, err
		})
		if err != nil {
			return err
		}
		if err := putStockBack(tx, back); err != nil {
			return err
		}
		if err := putJSON(tx.Bucket(bucketInbox), []byte(key), orders.InboxEntry{Hash: hash, Receipt: receipt}); err != nil {
			return err
		}
		return db.appendAudit(tx, entries...)
	})
	return o, receipt, err
}

// keptReceipt decodes a receipts/ or inbox/ key (country NUL order ID NUL
// kind NUL seq, orders.InboxKey) with its receipt envelope.
func keptReceipt(k, envelope []byte) (orders.KeptReceipt, error) {
	parts := strings.Split(string(k), "\x00")
	if len(parts) != 4 {
		return orders.KeptReceipt{}, fmt.Errorf("message key %q", k)
	}
	seq, err := strconv.ParseUint(parts[3], 10, 64)
	if err != nil {
		return orders.KeptReceipt{}, fmt.Errorf("message key %q: %w", k, err)
	}
	return orders.KeptReceipt{From: parts[0], OrderID: parts[1], Kind: parts[2], Seq: seq, Envelope: append([]byte(nil), envelope...)}, nil
}

// Receipts implements orders.Store.
func (db *DB) Receipts(ctx context.Context, fn func(orders.KeptReceipt) error) error {
	return db.kv.viewCtx(ctx, func(tx kvTx) error {
		return tx.Bucket(bucketReceipts).ForEach(func(k, v []byte) error {
			r, err := keptReceipt(k, v)
			if err != nil {
				return err
			}
			return fn(r)
		})
	})
}

// OrderReceipts implements orders.Store.
func (db *DB) OrderReceipts(ctx context.Context, dest, orderID string) ([]orders.KeptReceipt, error) {
	return db.orderMessages(bucketReceipts, dest, orderID, func(v []byte) ([]byte, error) { return v, nil })
}

// InboxReceipts implements orders.Store.
func (db *DB) InboxReceipts(ctx context.Context, origin, orderID string) ([]orders.KeptReceipt, error) {
	return db.orderMessages(bucketInbox, origin, orderID, func(v []byte) ([]byte, error) {
		var e orders.InboxEntry
		err := json.Unmarshal(v, &e)
		return e.Receipt, err
	})
}

// orderMessages lists the receipts kept in bucket (receipts/ or inbox/) for
// the messages of one order exchanged with country; envelope takes the
// receipt out of a value.
func (db *DB) orderMessages(bucket []byte, country, orderID string, envelope func([]byte) ([]byte, error)) ([]orders.KeptReceipt, error) {
	var out []orders.KeptReceipt
	prefix := []byte(country + "\x00" + orderID + "\x00")
	err := db.kv.view(func(tx kvTx) error {
		c := tx.Bucket(bucket).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			env, err := envelope(v)
			if err != nil {
				return fmt.Errorf("%s entry %q: %w", bucket, k, err)
			}
			r, err := keptReceipt(k, env)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}
