package orders

import (
	"context"
	"time"
)

// EraseExpired erases the buyer's personal data of orders on this node
// whose retention ended: orders in a final state for longer than days.
// The order itself stays (it is a business record); its sealed personal
// fields are removed. It returns how many orders it erased.
func (s *Service) EraseExpired(ctx context.Context, days int, now time.Time) (int, error) {
	cutoff := now.Add(-time.Duration(days) * 24 * time.Hour)
	due := func(o *Order) bool { return len(o.Sealed) > 0 && Final(o.Status) && o.UpdatedAt.Before(cutoff) }
	n := 0
	after := ""
	for {
		batch, err := s.cfg.Store.Orders(ctx, nil, after, 500)
		if err != nil {
			return n, err
		}
		if len(batch) == 0 {
			return n, nil
		}
		after = batch[len(batch)-1].ID
		for _, o := range batch {
			if !due(o) {
				continue
			}
			_, err := s.cfg.Store.UpdateOrder(ctx, o.ID, func(o *Order) ([]OutboxRow, error) {
				if due(o) {
					t := now.UTC()
					o.Sealed, o.Delivered, o.ErasedAt = nil, nil, &t
					// What the buyer and seller wrote in its issues is
					// personal data too.
					for _, is := range o.Issues {
						is.Erase()
					}
					o.collectRefunds()
				}
				return nil, nil
			})
			if err != nil {
				return n, err
			}
			n++
			s.metrics.erased.Inc()
		}
	}
}
