package policy_test

import (
	"testing"
	"time"

	"github.com/imtgt/imtgt-node/policy"
)

// TestOrderableAgrees: the orderable filter's fast path gives Evaluate's
// answer on a mixed catalog under each default policy, in and out of
// force.
func TestOrderableAgrees(t *testing.T) {
	for _, c := range []string{"ID", "TH", "MY"} {
		p := defaultPolicy(t, c)
		yes, no := 0, 0
		for _, l := range mixedCatalog(2000, c) {
			for _, at := range []time.Time{inForce, p.Expires.Add(time.Hour)} {
				want := policy.Evaluate(p, l, at).Orderable
				if got := policy.Orderable(p, l, at); got != want {
					t.Fatalf("%s policy, %+v at %s: Orderable %v, Evaluate %v", c, l, at, got, want)
				}
				if at == inForce && want {
					yes++
				} else if at == inForce {
					no++
				}
			}
		}
		// Malaysia's default policy prohibits none of the catalog's codes.
		if yes == 0 || (no == 0 && c != "MY") {
			t.Fatalf("%s: the mixed catalog should hold both orderable (%d) and not (%d) listings", c, yes, no)
		}
	}
}
