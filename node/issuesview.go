package node

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/imtgt/imtgt-node/aftersale"
	"github.com/imtgt/imtgt-node/orders"
	"github.com/imtgt/imtgt-node/store"
)

// IssueRow is an issue as "imtgt-node issues" shows it: the issue and this
// node's side of its order.
type IssueRow struct {
	*aftersale.Issue
	Side        orders.Side   `json:"side"`
	OrderStatus orders.Status `json:"order_status"`
}

// ErrIssues is a refusal by the running node's issue API.
var ErrIssues = errors.New("issues")

// ListIssues is "imtgt-node issues list": every issue the node in dir
// holds (in status, if not empty), oldest first, from its API while it
// runs or from its store when it is stopped.
func ListIssues(ctx context.Context, dir string, status aftersale.Status) ([]IssueRow, error) {
	if status != "" && !aftersale.ValidStatus(status) {
		return nil, fmt.Errorf("status %q is not one of %v", status, aftersale.Statuses)
	}
	var rows []IssueRow
	err := onNode(dir, func(cfg Config) error {
		cursor := ""
		for {
			var page struct {
				Items      []IssueRow `json:"items"`
				NextCursor string     `json:"next_cursor"`
			}
			q := url.Values{"limit": {"100"}, "cursor": {cursor}}
			if status != "" {
				q.Set("status", string(status))
			}
			if err := callAPI(ctx, dir, cfg, "GET", "/v1/issues?"+q.Encode(), nil, &page, ErrIssues); err != nil {
				return err
			}
			rows = append(rows, page.Items...)
			if page.NextCursor == "" {
				return nil
			}
			cursor = page.NextCursor
		}
	}, func(_ Config, db *store.DB) error {
		refs, err := db.Issues(ctx, func(_ *orders.Order, is *aftersale.Issue) bool {
			return status == "" || is.Status == status
		}, "", 1<<30)
		for _, r := range refs {
			rows = append(rows, IssueRow{Issue: r.Issue, Side: r.Order.Side, OrderStatus: r.Order.Status})
		}
		return err
	})
	return rows, err
}

// ShowIssue is "imtgt-node issues show": one issue of the node in dir.
func ShowIssue(ctx context.Context, dir, id string) (*IssueRow, error) {
	if !aftersale.ValidID(id) {
		return nil, fmt.Errorf("%q is not an issue ID (iss_ followed by 26 characters)", id)
	}
	var row *IssueRow
	err := onNode(dir, func(cfg Config) error {
		row = &IssueRow{}
		return callAPI(ctx, dir, cfg, "GET", "/v1/issues/"+url.PathEscape(id), nil, row, ErrIssues)
	}, func(_ Config, db *store.DB) error {
		orderID, err := db.IssueOrder(ctx, id)
		if err != nil {
			return err
		}
		o, err := db.Order(ctx, orderID)
		if err != nil {
			return err
		}
		for _, is := range o.Issues {
			if is.ID == id {
				row = &IssueRow{Issue: is, Side: o.Side, OrderStatus: o.Status}
				return nil
			}
		}
		return fmt.Errorf("%w: %s", orders.ErrIssueNotFound, id)
	})
	return row, err
}
