package policy

import (
	"net/url"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Bounds of the consumer section's deadlines. A seller that may take more
// than 30 days to answer, or a year to resolve, is not a deadline a buyer
// can act on; below one hour or one day a deadline cannot be met across
// time zones.
const (
	MaxRespondWithinHours = 720
	MaxResolveWithinDays  = 365
)

// ConsumerRules are the buyer country's after-sale deadlines and escalation
// body: how long a seller has to answer an issue a buyer opens, how long to
// resolve it, and who takes it over when either deadline passes (or the
// buyer declines the final answer). They come from the buyer's policy
// because consumer protection is the buyer country's law.
type ConsumerRules struct {
	Sourced `yaml:",inline"`
	// RespondWithinHours is how long the seller has to respond to an issue.
	RespondWithinHours int `yaml:"respond_within_hours"`
	// ResolveWithinDays is how long the issue may take to resolve before it
	// escalates.
	ResolveWithinDays int `yaml:"resolve_within_days"`
	// Escalation is the country's consumer protection agency or online
	// dispute resolution provider.
	Escalation Escalation `yaml:"escalation"`
}

// Escalation names the neutral body an escalated issue goes to.
type Escalation struct {
	ID     string `yaml:"id"`
	Name   string `yaml:"name"`
	URL    string `yaml:"url"` // https: where a buyer files a complaint
	Source string `yaml:"source"`
}

// RespondWithin is the response deadline as a duration.
func (c ConsumerRules) RespondWithin() time.Duration {
	return time.Duration(c.RespondWithinHours) * time.Hour
}

// ResolveWithin is the resolution deadline as a duration (days of 24 hours:
// deadlines are computed on UTC instants, not calendar days of a zone).
func (c ConsumerRules) ResolveWithin() time.Duration {
	return time.Duration(c.ResolveWithinDays) * 24 * time.Hour
}

// DefaultConsumerRules are what a policy without a consumer section gets:
// 72 hours to respond and 30 days to resolve, operator defaults that no
// law sets, and no escalation body (Escalation.ID is empty), so escalated
// issues stay with the buyer country's operator.
func DefaultConsumerRules() ConsumerRules {
	return ConsumerRules{
		Sourced: Sourced{
			Source:    "imtgt-node built-in default (the policy has no consumer section): operator's default, not law",
			Confirmed: new(false),
		},
		RespondWithinHours: 72,
		ResolveWithinDays:  30,
	}
}

// Consumer returns the policy's consumer section, and whether the policy
// has one; without one it returns DefaultConsumerRules, so older policies
// keep loading and callers always get usable deadlines.
func (p *Policy) Consumer() (ConsumerRules, bool) {
	if p == nil || p.ConsumerSection == nil {
		return DefaultConsumerRules(), false
	}
	return *p.ConsumerSection, true
}

// consumer checks the consumer section.
func (v *validator) consumer(c *ConsumerRules, ids map[string]bool, country string) {
	path := []any{"consumer"}
	v.sourced(path, c.Sourced, ids, country)
	if c.RespondWithinHours < 1 || c.RespondWithinHours > MaxRespondWithinHours {
		v.fail(append(path, "respond_within_hours"), "respond_within_hours is required and must be between 1 and %d hours, not %d", MaxRespondWithinHours, c.RespondWithinHours)
	}
	if c.ResolveWithinDays < 1 || c.ResolveWithinDays > MaxResolveWithinDays {
		v.fail(append(path, "resolve_within_days"), "resolve_within_days is required and must be between 1 and %d days, not %d", MaxResolveWithinDays, c.ResolveWithinDays)
	}
	e := &c.Escalation
	ep := append(path, "escalation")
	if !v.hasKey(ep) {
		v.fail(ep, "escalation (the consumer protection agency or ODR provider: id, name, url, source) is required")
		return
	}
	switch {
	case !ruleIDPattern.MatchString(e.ID):
		v.fail(append(ep, "id"), "escalation id %q must look like %s-BODY-NAME (upper case, digits, dashes)", e.ID, country)
	case !strings.HasPrefix(e.ID, country+"-"):
		v.fail(append(ep, "id"), "escalation id %q must start with the policy's country %s-", e.ID, country)
	case ids[e.ID]:
		v.fail(append(ep, "id"), "escalation id %q is used twice", e.ID)
	}
	ids[e.ID] = true
	if strings.TrimSpace(e.Name) == "" {
		v.fail(append(ep, "name"), "name (the body's official name) is required")
	}
	if u, err := url.Parse(e.URL); err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		v.fail(append(ep, "url"), "url %q must be an https URL with a host (where a buyer files a complaint)", e.URL)
	}
	if strings.TrimSpace(e.Source) == "" {
		v.fail(append(ep, "source"), "source (where the body and its channel are named) is required")
	}
}

// hasKey reports whether the file has the mapping key path (keys only).
func (v *validator) hasKey(path []any) bool {
	n := v.root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, p := range path {
		key, ok := p.(string)
		if !ok || n.Kind != yaml.MappingNode {
			return false
		}
		next, found := n, false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next, found = n.Content[i+1], true
				break
			}
		}
		if !found {
			return false
		}
		n = next
	}
	return true
}
