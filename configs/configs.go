// Package configs embeds the default per-country policies (policy-TH.yaml,
// policy-MY.yaml, policy-ID.yaml), which "imtgt-node init" signs with the
// new agency's governance key and installs. The files are the ones an
// agency edits: see docs/POLICY.md.
package configs

import (
	"embed"
	"fmt"
)

//go:embed policy-*.yaml
var files embed.FS

// DefaultPolicy returns the default policy file of country.
func DefaultPolicy(country string) ([]byte, error) {
	b, err := files.ReadFile("policy-" + country + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("no default policy for %q: %w", country, err)
	}
	return b, nil
}
