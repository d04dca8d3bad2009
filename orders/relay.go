package orders

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/imtgt/imtgt-node/federation/pb"
)

// Transport delivers order messages to another member's node and verifies
// its receipts: the federation service.
type Transport interface {
	// DeliverOrder sends msg to the node of country and returns the
	// receipt envelope it answered.
	DeliverOrder(ctx context.Context, country string, msg *pb.Message) ([]byte, error)
	// OpenReceipt verifies a receipt envelope signed by country's node.
	OpenReceipt(data []byte, country string) (*pb.Receipt, error)
}

// Relay parameters.
const (
	relayBatch      = 64 // rows of one destination delivered concurrently
	relayMaxBackoff = 30 * time.Second
	relayIdle       = 2 * time.Second // safety-net pass when nothing wakes it
)

// Run delivers the outbox until ctx ends: every due row, concurrently
// across orders, in order within an order (a row waits while an earlier
// row of its order is pending). A row leaves the outbox only with a valid
// receipt signed by the receiving node, in the same transaction as the
// effect of that receipt on the order.
//
// Each destination gets its batches delivered on its own: a member that
// does not answer (a 10 s timeout) delays only the rows bound for it.
// Within a destination a batch of up to 64 rows goes out at once and the
// next batch waits for it, so the receiver's and this node's commits
// group (measured: streaming rows one by one instead cost a third of the
// throughput). Run returns once its deliveries have ended.
func (s *Service) Run(ctx context.Context, t Transport) {
	var wg sync.WaitGroup
	defer wg.Wait()
	var mu sync.Mutex
	busy := map[string]bool{} // destinations with a batch in flight, guarded by mu
	for {
		next := s.pass(ctx, t, &wg, &mu, busy)
		wait := relayIdle
		if !next.IsZero() {
			wait = min(wait, max(time.Until(next), time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-time.After(wait):
		}
	}
}

// pass starts a batch for every destination that has due rows and no
// batch in flight, and returns when the earliest waiting row is due next
// (zero if none waits).
func (s *Service) pass(ctx context.Context, t Transport, wg *sync.WaitGroup, mu *sync.Mutex, busy map[string]bool) time.Time {
	rows, err := s.cfg.Store.Outbox(ctx)
	if err != nil {
		s.log.Error("read outbox", "err", err)
		return time.Now().Add(time.Second)
	}
	s.metrics.pending.Set(float64(len(rows)))
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Dest != rows[j].Dest {
			return rows[i].Dest < rows[j].Dest
		}
		return rows[i].Seq < rows[j].Seq
	})
	now := s.cfg.Now()
	var next time.Time
	blocked := map[string]bool{} // orders with an earlier row pending
	batches := map[string][]OutboxRow{}
	mu.Lock()
	defer mu.Unlock()
	for _, r := range rows {
		if blocked[r.OrderID] {
			continue
		}
		blocked[r.OrderID] = true
		if busy[r.Dest] {
			continue // its batch's end wakes the relay
		}
		if r.NextRetry.After(now) {
			if next.IsZero() || r.NextRetry.Before(next) {
				next = r.NextRetry
			}
			continue
		}
		if len(batches[r.Dest]) >= relayBatch {
			next = now
			continue
		}
		batches[r.Dest] = append(batches[r.Dest], r)
	}
	for dest, batch := range batches {
		busy[dest] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			var bwg sync.WaitGroup
			for _, r := range batch {
				bwg.Add(1)
				go func() {
					defer bwg.Done()
					s.attempt(ctx, t, r)
				}()
			}
			bwg.Wait()
			mu.Lock()
			delete(busy, dest)
			mu.Unlock()
			s.Wake() // later rows of these orders, or more rows, may go now
		}()
	}
	return next
}

// attempt delivers one row, recording a failure for a later retry.
func (s *Service) attempt(ctx context.Context, t Transport, r OutboxRow) {
	if err := s.deliver(ctx, t, r); err != nil {
		if ctx.Err() != nil {
			return // shutting down: the row stays for the next start
		}
		s.metrics.attempts.WithLabelValues("retry").Inc()
		r.Attempts++
		r.LastError = err.Error()
		backoff := min(relayMaxBackoff, 200*time.Millisecond<<min(r.Attempts, 8))
		r.NextRetry = s.cfg.Now().Add(backoff/2 + rand.N(backoff/2+1))
		if err := s.cfg.Store.RetryOutbox(ctx, r); err != nil {
			s.log.Error("record outbox retry", "order", r.OrderID, "err", err)
		}
		s.log.Debug("order delivery failed; will retry", "order", r.OrderID, "dest", r.Dest, "attempts", r.Attempts, "err", err)
		return
	}
	s.metrics.attempts.WithLabelValues("ok").Inc()
}

// deliver sends one row and, on a valid receipt, completes it.
func (s *Service) deliver(ctx context.Context, t Transport, r OutboxRow) error {
	payload, err := s.cfg.Store.OutboxPayload(ctx, r.Dest, r.Seq)
	if err != nil {
		return err
	}
	if payload == nil {
		return nil // completed meanwhile
	}
	r.Payload = payload
	msg := &pb.Message{}
	switch r.Kind {
	case KindHandoff:
		var h pb.OrderHandoff
		if err := proto.Unmarshal(r.Payload, &h); err != nil {
			return err
		}
		msg.Body = &pb.Message_OrderHandoff{OrderHandoff: &h}
	case KindStatus:
		var st pb.OrderStatus
		if err := proto.Unmarshal(r.Payload, &st); err != nil {
			return err
		}
		msg.Body = &pb.Message_OrderStatus{OrderStatus: &st}
	default:
		return fmt.Errorf("outbox row of unknown kind %q", r.Kind)
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	raw, err := t.DeliverOrder(dctx, r.Dest, msg)
	if err != nil {
		return err
	}
	rc, err := t.OpenReceipt(raw, r.Dest)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadReceipt, err)
	}
	var body proto.Message = msg.GetOrderHandoff()
	if r.Kind == KindStatus {
		body = msg.GetOrderStatus()
	}
	hash, err := PayloadHash(body)
	if err != nil {
		return err
	}
	if rc.OrderId != r.OrderID || rc.Kind != r.Kind || rc.Seq != r.MsgSeq || string(rc.PayloadHash) != string(hash) || rc.Receiver != r.Dest {
		return fmt.Errorf("%w: it acknowledges %s/%s/%d, not this message", ErrBadReceipt, rc.OrderId, rc.Kind, rc.Seq)
	}
	err = s.cfg.Store.CompleteOutbox(ctx, r, func(o *Order) ([]OutboxRow, error) {
		now := s.cfg.Now().UTC()
		switch {
		case r.Kind == KindHandoff:
			o.Receipt = raw
			to := Received
			if rc.Result == ResultRejected {
				to = Rejected
			}
			if o.Status == Submitted {
				_ = o.transition(to, now, "peer", rc.Reason, "")
			}
		case rc.Result == ResultRefused && Status(rc.Status) != o.Status:
			// The seller's node could not apply our change: show its state.
			o.Status, o.Reason, o.UpdatedAt = Status(rc.Status), rc.Reason, now
			o.History = append(o.History, Event{Status: o.Status, At: now, By: "peer", Reason: "refused by the seller's node: " + rc.Reason})
		}
		return nil, nil
	})
	if err != nil {
		return err
	}
	s.metrics.handoff.Observe(time.Since(r.CreatedAt).Seconds())
	return nil
}

// OutboxView is GET /v1/outbox's view of a pending row.
type OutboxView struct {
	Dest      string    `json:"destination"`
	Kind      string    `json:"kind"`
	OrderID   string    `json:"order_id"`
	MsgSeq    uint64    `json:"seq"`
	Attempts  int       `json:"attempts"`
	NextRetry time.Time `json:"next_retry"`
	LastError string    `json:"last_error,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Backlog lists the pending deliveries.
func (s *Service) Backlog(ctx context.Context) ([]OutboxView, error) {
	rows, err := s.cfg.Store.Outbox(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]OutboxView, 0, len(rows))
	for _, r := range rows {
		out = append(out, OutboxView{Dest: r.Dest, Kind: r.Kind, OrderID: r.OrderID, MsgSeq: r.MsgSeq, Attempts: r.Attempts,
			NextRetry: r.NextRetry, LastError: r.LastError, CreatedAt: r.CreatedAt})
	}
	return out, nil
}
