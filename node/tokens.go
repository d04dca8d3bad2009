package node

import (
	"context"
	"errors"
	"sync"

	"github.com/imtgt/imtgt-node/access"
	"github.com/imtgt/imtgt-node/store"
)

// tokensRemembered bounds the tokens a replica remembers (one entry is a
// hash and a principal, about 200 bytes).
const tokensRemembered = 100_000

// tokens resolves bearer tokens from the store, and remembers the ones it
// resolved so that while the store's database is unavailable the requests
// a replica serves from memory (search) still know who is asking. Every
// lookup goes to the store first: the memory answers only when the
// database cannot, so a principal is never older than the outage. Tokens
// are never revoked in place (a suspended seller is refused by its
// status, which is read from the store), so what was resolved stays true.
type tokens struct {
	db   *store.DB
	mu   sync.Mutex
	seen map[string]access.Principal
}

func newTokens(db *store.DB) *tokens {
	return &tokens{db: db, seen: map[string]access.Principal{}}
}

// Principal implements httpapi.Tokens.
func (t *tokens) Principal(ctx context.Context, hash string) (access.Principal, error) {
	p, err := t.db.Principal(ctx, hash)
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case err == nil:
		if _, ok := t.seen[hash]; !ok && len(t.seen) >= tokensRemembered {
			for k := range t.seen { // forget one, any
				delete(t.seen, k)
				break
			}
		}
		t.seen[hash] = p
	case errors.Is(err, store.ErrUnavailable):
		if known, ok := t.seen[hash]; ok {
			return known, nil
		}
	}
	return p, err
}
