package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/imtgt/imtgt-node/httpapi"
	"github.com/imtgt/imtgt-node/keys"
	"github.com/imtgt/imtgt-node/node"
	"github.com/imtgt/imtgt-node/policy"
)

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Sign, verify, install, show and explain a country's policy",
		Long: `A policy is the country's rules as a YAML file (docs/POLICY.md): what personal
data may leave and on what legal basis, what buyers may import and at what
duty and tax, what may be exported, how long records are kept. The agency
edits it, signs it with its governance key, and installs it; a running node
applies it at once. "init" installs the country's default policy (configs/).`,
		Example: `  imtgt-node policy show --dir ./th > policy.yaml
  # edit policy.yaml: raise "version", change a rate
  imtgt-node policy sign --dir ./th policy.yaml
  imtgt-node policy install --dir ./th policy.yaml`,
	}
	cmd.AddCommand(newPolicySignCmd(), newPolicyVerifyCmd(), newPolicyInstallCmd(), newPolicyShowCmd(), newPolicyExplainCmd())
	return cmd
}

func newPolicySignCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "sign --dir DIR FILE",
		Short: "Sign a policy file with the agency's governance key",
		Long: `sign checks the policy (every rule, as install would), then appends the
agency's signature (DIR/keys/governance.key), replacing an earlier one. The
file is rewritten atomically. Any later change to the file breaks the
signature.`,
		Example: `  imtgt-node policy sign --dir /var/lib/imtgt/th policy-TH.yaml`,
		Args:    oneArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlag("dir", dir); err != nil {
				return err
			}
			raw, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			p, err := policy.Parse(args[0], raw)
			if err != nil {
				return err
			}
			me, err := node.MemberDescriptor(dir)
			if err != nil {
				return err
			}
			if p.Country != me.Country {
				return fmt.Errorf("%s is %s's policy; the agency of %s is %s's", args[0], p.Country, dir, me.Country)
			}
			gk, err := keys.LoadGovernanceKey(filepath.Join(dir, node.KeysDir))
			if err != nil {
				return err
			}
			signed, err := policy.Sign(raw, p.Country, gk)
			if err != nil {
				return err
			}
			if _, err := writeFileAtomic(args[0], bytes.NewReader(signed).WriteTo); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Signed %s: %s policy version %d\n", args[0], p.Country, p.Version)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "node directory of the issuing agency (required)")
	return cmd
}

func newPolicyVerifyCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "verify --dir DIR FILE",
		Short: "Check a policy file and its signature against the agency key",
		Long: `verify checks every rule of the policy and its signature against the agency's
governance key in the node's installed manifest (or the agency's own key before
the node joins a federation). It exits non-zero with the reason when anything
is wrong, in particular when the file was changed after it was signed.`,
		Example: `  imtgt-node policy verify --dir /var/lib/imtgt/th policy-TH.yaml`,
		Args:    oneArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlag("dir", dir); err != nil {
				return err
			}
			raw, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			p, err := node.VerifyPolicyFile(dir, args[0], raw)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "OK: %s policy version %d, in force %s to %s, signed by the %s agency\n",
				p.Country, p.Version, p.Effective.Format("2006-01-02"), p.Expires.Format("2006-01-02"), p.Country)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "node directory (required)")
	return cmd
}

func newPolicyInstallCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "install --dir DIR FILE",
		Short: "Install a signed policy (a running node applies it at once)",
		Long: `install installs a signed policy with a higher version than the installed
one. It refuses a lower or equal version, a bad or missing signature, another
country's policy, or any invalid rule, with the reason, and changes nothing.
A running node applies it without a restart: quotes and import decisions
change at once, and listings whose export status changed are withdrawn or
published.`,
		Example: `  imtgt-node policy install --dir /var/lib/imtgt/th policy-TH.yaml`,
		Args:    oneArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlag("dir", dir); err != nil {
				return err
			}
			raw, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			res, err := node.InstallPolicyFile(cmd.Context(), dir, args[0], raw)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Installed %s policy version %d: %s\n", res.Policy.Country, res.Policy.Version, appliedHow(res.Running))
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "node directory (required)")
	return cmd
}

func newPolicyShowCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:     "show --dir DIR",
		Short:   "Print the installed signed policy",
		Example: `  imtgt-node policy show --dir /var/lib/imtgt/th`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlag("dir", dir); err != nil {
				return err
			}
			raw, err := node.ShowPolicy(cmd.Context(), dir)
			if err != nil {
				return err
			}
			if raw == nil {
				return errors.New("no policy installed")
			}
			_, err = cmd.OutOrStdout().Write(raw)
			return err
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "node directory (required)")
	return cmd
}

func newPolicyExplainCmd() *cobra.Command {
	var dir, id, region string
	var quantity int64
	cmd := &cobra.Command{
		Use:   "explain --dir DIR --listing ID [--quantity N] [--region CODE]",
		Short: "Explain, in words, whether this node's buyers may order a listing, and its landed cost",
		Example: `  imtgt-node policy explain --dir /var/lib/imtgt/id --listing lst_01JD... --quantity 2
  imtgt-node policy explain --dir /var/lib/imtgt/th --listing lst_01JD... --region TH-90`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlag("dir", dir); err != nil {
				return err
			}
			if err := requireFlag("listing", id); err != nil {
				return err
			}
			if quantity < 1 {
				return usageError{errors.New("--quantity must be 1 or more")}
			}
			q, err := node.ExplainListing(cmd.Context(), dir, id, quantity, strings.ToUpper(region))
			if err != nil {
				return err
			}
			printExplanation(cmd.OutOrStdout(), q)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "node directory (required)")
	f.StringVar(&id, "listing", "", "listing ID (required)")
	f.Int64Var(&quantity, "quantity", 1, "units ordered")
	f.StringVar(&region, "region", "", "delivery region (ISO 3166-2)")
	return cmd
}

func printExplanation(w io.Writer, q *httpapi.QuoteView) {
	fmt.Fprintf(w, "Listing %s: %q from %s, HS %s, %s %s each\n", q.ListingID, q.Listing.Title, q.Listing.Origin, q.Listing.HSCode, q.Listing.Price.Amount, q.Listing.Price.Currency)
	if q.Orderable {
		fmt.Fprintf(w, "Buyers here MAY order it (policy version %d).\n", q.PolicyVersion)
	} else {
		fmt.Fprintf(w, "Buyers here may NOT order it (policy version %d):\n", q.PolicyVersion)
	}
	for _, r := range q.Reasons {
		conf := ""
		if !r.Confirmed {
			conf = " [unconfirmed: the agency should check this rule]"
		}
		fmt.Fprintf(w, "  - rule %s: %s%s\n    source: %s\n", r.Rule, r.Message, conf, r.Source)
	}
	for _, p := range q.Permits {
		fmt.Fprintf(w, "  - needs a permit: %s (rule %s)\n", p.Permit, p.Rule)
	}
	fmt.Fprintf(w, "\nQuote for %d unit(s)", q.Quantity)
	if q.Region != "" {
		fmt.Fprintf(w, " to %s", q.Region)
	}
	fmt.Fprintf(w, ", at the rates of %s (%s):\n", q.RatesDate, q.RatesSource)
	fmt.Fprintf(w, "  unit price       %14s %s\n", q.UnitPrice.Amount, q.UnitPrice.Currency)
	fmt.Fprintf(w, "  item total       %14s %s\n", q.ItemTotal.Amount, q.ItemTotal.Currency)
	for _, l := range append(append([]httpapi.LineView{}, q.Duties...), q.Taxes...) {
		fmt.Fprintf(w, "  %-16s %14s %s   (%s at %s on %s; rule %s)\n", truncate(l.Name, 16), l.Amount.Amount, l.Amount.Currency, l.Name, l.Rate, l.Base.Amount, l.Rule)
	}
	fmt.Fprintf(w, "  landed total     %14s %s\n", q.LandedTotal.Amount, q.LandedTotal.Currency)
	for _, n := range q.Notes {
		fmt.Fprintf(w, "  note (rule %s): %s\n", n.Rule, n.Message)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
