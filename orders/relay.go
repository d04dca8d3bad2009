package orders

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
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
	// DeliverOrders sends handoffs to the node of country in one message
	// and returns, per handoff, its receipt envelope or why it was refused.
	DeliverOrders(ctx context.Context, country string, hs []*pb.OrderHandoff) ([][]byte, []error, error)
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
//
// The relay keeps the pending rows in memory and reads from the store
// only the rows written since its last pass: rescanning a backlog of
// thousands of rows on every pass cost more CPU than the deliveries.
func (s *Service) Run(ctx context.Context, t Transport) {
	var wg sync.WaitGroup
	defer wg.Wait()
	st := s.relay
	// Each run starts from the store: a replica that relayed before, lost
	// the lead and leads again must not trust what it kept meanwhile (the
	// other leader delivered it).
	st.mu.Lock()
	clear(st.seen)
	clear(st.rows)
	clear(st.busy)
	st.mu.Unlock()
	for {
		next := s.pass(ctx, t, &wg, st)
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

// RetryNow makes every row waiting for dest due at once: the federation
// calls it when a connection to dest's node comes up, so a backlog that
// waited out a partition with growing backoff (up to 30 s) goes now.
func (s *Service) RetryNow(dest string) {
	st := s.relay
	st.mu.Lock()
	for _, r := range st.rows[dest] {
		r.NextRetry = time.Time{}
	}
	st.mu.Unlock()
	s.Wake()
}

// relayState is the relay's view of the outbox. The store is the truth:
// rows enter this view when read from it and leave when delivered.
type relayState struct {
	mu   sync.Mutex
	seen map[string]uint64                // highest seq read per destination
	rows map[string]map[uint64]*OutboxRow // pending rows per destination and seq
	busy map[string]bool                  // destinations with a batch in flight
}

// pass reads the rows written since the last pass, starts a batch for
// every destination that has due rows and no batch in flight, and returns
// when the earliest waiting row is due next (zero if none waits).
func (s *Service) pass(ctx context.Context, t Transport, wg *sync.WaitGroup, st *relayState) time.Time {
	st.mu.Lock()
	after := maps.Clone(st.seen)
	st.mu.Unlock()
	fresh, err := s.cfg.Store.OutboxAfter(ctx, after)
	if err != nil {
		s.log.Error("read outbox", "err", err)
		return time.Now().Add(time.Second)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for i := range fresh {
		r := &fresh[i]
		if st.rows[r.Dest] == nil {
			st.rows[r.Dest] = map[uint64]*OutboxRow{}
		}
		st.rows[r.Dest][r.Seq] = r
		st.seen[r.Dest] = max(st.seen[r.Dest], r.Seq)
	}
	pending := 0
	now := s.cfg.Now()
	var next time.Time
	for dest, rows := range st.rows {
		pending += len(rows)
		if st.busy[dest] || len(rows) == 0 {
			continue // a busy destination's batch end wakes the relay
		}
		seqs := slices.Sorted(maps.Keys(rows))
		blocked := map[string]bool{} // orders with an earlier row pending
		var batch []OutboxRow
		for _, seq := range seqs {
			r := rows[seq]
			if blocked[r.OrderID] {
				continue
			}
			blocked[r.OrderID] = true
			if r.NextRetry.After(now) {
				if next.IsZero() || r.NextRetry.Before(next) {
					next = r.NextRetry
				}
				continue
			}
			if len(batch) >= relayBatch {
				next = now
				break
			}
			batch = append(batch, *r)
		}
		if len(batch) == 0 {
			continue
		}
		st.busy[dest] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			record := func(r OutboxRow, done bool, retry *OutboxRow) {
				st.mu.Lock()
				defer st.mu.Unlock()
				switch {
				case done:
					delete(st.rows[r.Dest], r.Seq)
				case retry != nil:
					st.rows[r.Dest][r.Seq] = retry
				}
			}
			var handoffs []OutboxRow
			var bwg sync.WaitGroup
			for _, r := range batch {
				if r.Kind == KindHandoff {
					handoffs = append(handoffs, r)
					continue
				}
				bwg.Add(1)
				go func() {
					defer bwg.Done()
					done, retry := s.attempt(ctx, r, func(ctx context.Context, r OutboxRow) error { return s.deliver(ctx, t, r) })
					record(r, done, retry)
				}()
			}
			if len(handoffs) > 0 {
				s.deliverHandoffs(ctx, t, handoffs, record)
			}
			bwg.Wait()
			st.mu.Lock()
			delete(st.busy, dest)
			st.mu.Unlock()
			s.Wake() // later rows of these orders, or more rows, may go now
		}()
	}
	s.metrics.pending.Set(float64(pending))
	return next
}

// attempt delivers one row: done when it left the outbox, else the row
// as it waits for its retry (nil when shutting down: the row stays for
// the next start as it was).
func (s *Service) attempt(ctx context.Context, r OutboxRow, deliver func(context.Context, OutboxRow) error) (done bool, retry *OutboxRow) {
	if err := deliver(ctx, r); err != nil {
		if ctx.Err() != nil {
			return false, nil
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
		return false, &r
	}
	s.metrics.attempts.WithLabelValues("ok").Inc()
	return true, nil
}

// message decodes a row's payload: the message it carries and the body
// whose hash its receipt must acknowledge (nil if the row is gone).
func (s *Service) message(ctx context.Context, r OutboxRow) (*pb.Message, proto.Message, error) {
	payload, err := s.cfg.Store.OutboxPayload(ctx, r.Dest, r.Seq)
	if err != nil || payload == nil {
		return nil, nil, err // nil, nil: completed meanwhile
	}
	switch r.Kind {
	case KindHandoff:
		var h pb.OrderHandoff
		if err := proto.Unmarshal(payload, &h); err != nil {
			return nil, nil, err
		}
		return &pb.Message{Body: &pb.Message_OrderHandoff{OrderHandoff: &h}}, &h, nil
	case KindStatus:
		var st pb.OrderStatus
		if err := proto.Unmarshal(payload, &st); err != nil {
			return nil, nil, err
		}
		return &pb.Message{Body: &pb.Message_OrderStatus{OrderStatus: &st}}, &st, nil
	case KindIssue:
		var im pb.IssueMessage
		if err := proto.Unmarshal(payload, &im); err != nil {
			return nil, nil, err
		}
		return &pb.Message{Body: &pb.Message_IssueMessage{IssueMessage: &im}}, &im, nil
	}
	return nil, nil, fmt.Errorf("outbox row of unknown kind %q", r.Kind)
}

// deliver sends one row and, on a valid receipt, completes it.
func (s *Service) deliver(ctx context.Context, t Transport, r OutboxRow) error {
	msg, body, err := s.message(ctx, r)
	if err != nil || msg == nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	raw, err := t.DeliverOrder(dctx, r.Dest, msg)
	if err != nil {
		return err
	}
	return s.complete(ctx, t, r, body, raw)
}

// deliverHandoffs sends a destination's handoff rows in one message and
// completes each that got a valid receipt; record learns each row's fate.
func (s *Service) deliverHandoffs(ctx context.Context, t Transport, rows []OutboxRow, record func(OutboxRow, bool, *OutboxRow)) {
	var send []OutboxRow
	var hs []*pb.OrderHandoff
	for _, r := range rows {
		msg, _, err := s.message(ctx, r)
		switch {
		case err != nil:
			done, retry := s.attempt(ctx, r, func(context.Context, OutboxRow) error { return err })
			record(r, done, retry)
		case msg == nil:
			record(r, true, nil) // completed meanwhile
		default:
			send = append(send, r)
			hs = append(hs, msg.GetOrderHandoff())
		}
	}
	if len(send) == 0 {
		return
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	receipts, errs, err := t.DeliverOrders(dctx, send[0].Dest, hs)
	cancel()
	var wg sync.WaitGroup
	for i, r := range send {
		wg.Add(1)
		go func() { // completions group into shared commits
			defer wg.Done()
			done, retry := s.attempt(ctx, r, func(ctx context.Context, r OutboxRow) error {
				switch {
				case err != nil:
					return err
				case errs[i] != nil:
					return errs[i]
				}
				return s.complete(ctx, t, r, hs[i], receipts[i])
			})
			record(r, done, retry)
		}()
	}
	wg.Wait()
}

// complete checks a row's receipt and, if it acknowledges exactly this
// message, removes the row and applies the receipt to the order.
func (s *Service) complete(ctx context.Context, t Transport, r OutboxRow, body proto.Message, raw []byte) error {
	rc, err := t.OpenReceipt(raw, r.Dest)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadReceipt, err)
	}
	hash, err := PayloadHash(body)
	if err != nil {
		return err
	}
	if rc.OrderId != r.OrderID || rc.Kind != r.Kind || rc.Seq != r.MsgSeq || string(rc.PayloadHash) != string(hash) || rc.Receiver != r.Dest {
		return fmt.Errorf("%w: it acknowledges %s/%s/%d, not this message", ErrBadReceipt, rc.OrderId, rc.Kind, rc.Seq)
	}
	var kept []byte
	if r.Kind == KindHandoff {
		if kept, err = s.sealDelivered(r.OrderID, body); err != nil {
			return err
		}
	}
	err = s.cfg.Store.CompleteOutbox(ctx, r, raw, sentEntries(r, hash, raw, rc), func(o *Order) ([]OutboxRow, error) {
		now := s.cfg.Now().UTC()
		switch {
		case r.Kind == KindHandoff:
			o.Receipt = raw
			if kept != nil {
				o.Delivered = kept
			}
			to := Received
			if rc.Result == ResultRejected {
				to = Rejected
			}
			if o.Status == Submitted {
				_ = o.transition(to, now, "peer", rc.Reason, "")
			}
		case r.Kind == KindIssue:
			if rc.Result == ResultRefused {
				// The buyer's node sends its issue back after refusing
				// (sync), which this node adopts; the seller's node
				// refusing is a fault of this node's message: record it.
				s.log.Warn("issue message refused by the other side", "order", o.ID, "seq", r.MsgSeq, "reason", rc.Reason)
				o.History = append(o.History, Event{Status: o.Status, At: now, By: "peer", Reason: "issue message refused: " + rc.Reason})
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
