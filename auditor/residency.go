package auditor

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/policy"
)

// ErrViolation means a crossing the policy in force did not allow.
var ErrViolation = errors.New("crossing not allowed by the policy in force")

// CheckCrossing checks an egress entry against the policy in force when
// it was written: every field that crossed must be one a transfer rule of
// that policy lets leave for the entry's destination and purpose. Entries
// that are not egress, or carry no fields (receipts), pass. The error
// names the first field no rule allows.
func CheckCrossing(p *policy.Policy, e *audit.Entry) error {
	if !e.Kind.Egress() || len(e.Fields) == 0 {
		return nil
	}
	if p == nil {
		return fmt.Errorf("%w: entry %d: no policy was in force", ErrViolation, e.Seq)
	}
	allowed := map[string][]string{} // record kind → fields its rule allows
	for _, f := range e.Fields {
		kind, name, ok := strings.Cut(f, ".")
		if !ok {
			return fmt.Errorf("%w: entry %d: field %q names no record kind", ErrViolation, e.Seq, f)
		}
		fs, seen := allowed[kind]
		if !seen {
			t, err := p.Transfer(kind, e.Peer, policy.Purpose(e.Purpose))
			if err != nil {
				return fmt.Errorf("%w: entry %d: %w", ErrViolation, e.Seq, err)
			}
			fs = t.Fields
			allowed[kind] = fs
		}
		if !slices.Contains(fs, name) {
			return fmt.Errorf("%w: entry %d: field %s to %s for %s is allowed by no rule of %s policy version %d",
				ErrViolation, e.Seq, f, e.Peer, e.Purpose, p.Country, p.Version)
		}
	}
	return nil
}
