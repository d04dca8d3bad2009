package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/imtgt/imtgt-node/aftersale"
	"github.com/imtgt/imtgt-node/node"
)

func newIssuesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "issues",
		Short: "List and show the after-sale issues a node holds",
		Long: `An after-sale issue is a buyer's complaint about an order (not received,
damaged, wrong item, missing parts, a refund that never came), opened by the
buyer's marketplace at the buyer's node and carried to the seller's node.
These commands show what the node in DIR holds, read from its API while it
runs (with the operator token in DIR) or from its store when it is stopped.
Marketplaces, sellers and operators act on issues through the HTTP API
(/v1/issues).`,
		Example: `  imtgt-node issues list --dir /var/lib/imtgt/my --status escalated
  imtgt-node issues show --dir /var/lib/imtgt/my iss_01JD...`,
	}
	cmd.AddCommand(newIssuesListCmd(), newIssuesShowCmd())
	return cmd
}

func newIssuesListCmd() *cobra.Command {
	var dir, status string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list --dir DIR [--status S] [--json]",
		Short: "List the node's issues, oldest first",
		Long: `list prints one line per issue: its ID, status, category, order, this
node's side, and the deadlines. --status keeps those in one state (on the
buyer country's node, escalated is the queue for its escalation body);
--json prints the issues whole.`,
		Example: `  imtgt-node issues list --dir /var/lib/imtgt/my --status escalated`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlag("dir", dir); err != nil {
				return err
			}
			if status != "" && !aftersale.ValidStatus(aftersale.Status(status)) {
				return usageError{fmt.Errorf("--status %q is not one of %v", status, aftersale.Statuses)}
			}
			rows, err := node.ListIssues(cmd.Context(), dir, aftersale.Status(status))
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if rows == nil {
					rows = []node.IssueRow{}
				}
				return writeJSONTo(out, rows)
			}
			if len(rows) == 0 {
				fmt.Fprintln(out, "No issues.")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATUS\tCATEGORY\tORDER\tSIDE\tRESPOND BY\tRESOLVE BY")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Status, r.Category, r.OrderID, r.Side,
					r.RespondBy.Format(time.RFC3339), r.ResolveBy.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "node directory (required)")
	cmd.Flags().StringVar(&status, "status", "", "only issues in this state")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newIssuesShowCmd() *cobra.Command {
	var dir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "show --dir DIR [--json] ISSUE-ID",
		Short:   "Show one issue: its items, remedy, responses, refunds, decision and history",
		Example: `  imtgt-node issues show --dir /var/lib/imtgt/th iss_01JD...`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("%s takes one issue ID, got %d arguments", cmd.CommandPath(), len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlag("dir", dir); err != nil {
				return err
			}
			r, err := node.ShowIssue(cmd.Context(), dir, args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSONTo(out, r)
			}
			printIssue(out, r)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "node directory (required)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printIssue(out io.Writer, r *node.IssueRow) {
	fmt.Fprintf(out, "Issue %s: %s\n", r.ID, r.Status)
	fmt.Fprintf(out, "  order:       %s (%s side, %s), %s buyer, %s seller %s\n", r.OrderID, r.Side, r.OrderStatus, r.BuyerCountry, r.SellerCountry, r.SellerID)
	fmt.Fprintf(out, "  category:    %s, remedy requested: %s\n", r.Category, r.RemedyRequested)
	if r.Description != "" {
		fmt.Fprintf(out, "  description: %s\n", strings.ReplaceAll(r.Description, "\n", "\n               "))
	}
	for _, it := range r.Items {
		fmt.Fprintf(out, "  item:        %s × %d\n", it.ListingID, it.Quantity)
	}
	for _, a := range r.Attachments {
		fmt.Fprintf(out, "  attachment:  %s, %d bytes, sha256 %s\n", a.ContentType, a.Size, a.SHA256)
	}
	fmt.Fprintf(out, "  respond by:  %s\n  resolve by:  %s\n", r.RespondBy.Format(time.RFC3339), r.ResolveBy.Format(time.RFC3339))
	if r.Remedy != nil {
		amount := ""
		if r.Remedy.Amount != nil {
			amount = " of " + r.Remedy.Amount.Amount + " " + r.Remedy.Amount.Currency
		}
		fmt.Fprintf(out, "  agreed:      %s%s\n", r.Remedy.Kind, amount)
	}
	for _, rf := range r.Refunds {
		fmt.Fprintf(out, "  refund:      %s %s at %s, reference %s\n", rf.Amount, rf.Currency, rf.At.Format(time.RFC3339), rf.PaymentReference)
	}
	if d := r.Decision; d != nil {
		fmt.Fprintf(out, "  decision:    %s at %s: %s\n", d.Outcome, d.At.Format(time.RFC3339), d.Reason)
	}
	fmt.Fprintln(out, "  history:")
	for _, e := range r.History {
		reason := ""
		if e.Reason != "" {
			reason = ": " + e.Reason
		}
		fmt.Fprintf(out, "    %s  %-16s by %s%s\n", e.At.Format(time.RFC3339), e.Status, e.By, reason)
	}
}

func writeJSONTo(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
