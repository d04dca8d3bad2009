package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

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
	// downUntil: after the database failed a lookup, tokens already
	// known are answered from memory at once until then, so that while a
	// database host is unreachable (not refusing: every try would wait)
	// search does not wait on it request after request.
	downUntil time.Time
}

const (
	// tokenLookup bounds one lookup in the store: past it, a known token
	// is answered from memory.
	tokenLookup = time.Second
	// tokenDownFor is how long memory answers after a failed lookup.
	tokenDownFor = 2 * time.Second
)

func newTokens(db *store.DB) *tokens {
	return &tokens{db: db, seen: map[string]access.Principal{}}
}

// Principal implements httpapi.Tokens.
func (t *tokens) Principal(ctx context.Context, hash string) (access.Principal, error) {
	t.mu.Lock()
	known, ok := t.seen[hash]
	down := time.Now().Before(t.downUntil)
	t.mu.Unlock()
	if ok && down {
		return known, nil
	}
	lctx, cancel := context.WithTimeout(ctx, tokenLookup)
	p, err := t.db.Principal(lctx, hash)
	cancel()
	unavailable := errors.Is(err, store.ErrUnavailable) || (errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil)
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
		t.downUntil = time.Time{}
	case unavailable:
		t.downUntil = time.Now().Add(tokenDownFor)
		if ok {
			return known, nil
		}
		if !errors.Is(err, store.ErrUnavailable) {
			err = fmt.Errorf("%w: the token lookup took longer than %s", store.ErrUnavailable, tokenLookup)
		}
	}
	return p, err
}
