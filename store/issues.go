package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/imtgt/imtgt-node/aftersale"
	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/orders"
)

// bucketIssues indexes after-sale issues: issue ID → the ID of the order
// that holds it (the issue itself is part of the order). Written by
// putOrder in the transaction of every order write, so it never misses an
// issue.
var bucketIssues = []byte("issues")

// putOrder stores an order and indexes its issues.
func putOrder(tx kvTx, o *orders.Order) error {
	if err := putJSON(tx.Bucket(bucketOrders), []byte(o.ID), o); err != nil {
		return err
	}
	if len(o.Issues) == 0 {
		return nil
	}
	idx := tx.Bucket(bucketIssues)
	for _, is := range o.Issues {
		if string(idx.Get([]byte(is.ID))) == o.ID {
			continue
		}
		if err := idx.Put([]byte(is.ID), []byte(o.ID)); err != nil {
			return err
		}
	}
	return nil
}

// ChangeOrder implements orders.Store.
func (db *DB) ChangeOrder(ctx context.Context, id string, fn func(*orders.Order) (orders.Applied, error)) (*orders.Order, error) {
	var o *orders.Order
	err := db.batch(func(tx kvTx) error {
		var entries []*audit.Entry
		var back *orders.StockBack
		var err error
		o, err = updateOrder(tx, id, func(o *orders.Order) ([]orders.OutboxRow, error) {
			a, err := fn(o)
			entries, back = a.Audit, a.Stock
			return a.Rows, err
		})
		if err != nil {
			return err
		}
		if err := putStockBack(tx, back); err != nil {
			return err
		}
		return db.appendAudit(tx, entries...)
	})
	return o, err
}

// IssueOrder implements orders.Store.
func (db *DB) IssueOrder(ctx context.Context, issueID string) (string, error) {
	var id string
	err := db.kv.viewCtx(ctx, func(tx kvTx) error {
		v := tx.Bucket(bucketIssues).Get([]byte(issueID))
		if v == nil {
			return fmt.Errorf("%w: %s", orders.ErrIssueNotFound, issueID)
		}
		id = string(v)
		return nil
	})
	return id, err
}

// Issues implements orders.Store. Issues are read in ID order (ULIDs:
// creation order); each issue's order is read once per call.
func (db *DB) Issues(ctx context.Context, keep func(*orders.Order, *aftersale.Issue) bool, after string, limit int) ([]orders.IssueRef, error) {
	var out []orders.IssueRef
	err := db.kv.viewCtx(ctx, func(tx kvTx) error {
		read := map[string]*orders.Order{}
		c := tx.Bucket(bucketIssues).Cursor()
		for k, v := seekAfter(c, after); k != nil && len(out) < limit; k, v = c.Next() {
			o, ok := read[string(v)]
			if !ok {
				raw := tx.Bucket(bucketOrders).Get(v)
				if raw == nil {
					return fmt.Errorf("issue %s: its order %s is missing", k, v)
				}
				o = &orders.Order{}
				if err := json.Unmarshal(raw, o); err != nil {
					return fmt.Errorf("order %s: %w", v, err)
				}
				read[string(v)] = o
			}
			for _, is := range o.Issues {
				if is.ID == string(k) && (keep == nil || keep(o, is)) {
					out = append(out, orders.IssueRef{Order: o, Issue: is})
				}
			}
		}
		return nil
	})
	return out, err
}
