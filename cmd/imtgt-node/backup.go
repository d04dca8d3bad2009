package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/imtgt/imtgt-node/node"
)

func newBackupCmd() *cobra.Command {
	var dir, out string
	cmd := &cobra.Command{
		Use:   "backup --dir DIR --out FILE",
		Short: "Write a consistent copy of a running node's store",
		Long: `backup asks the running node in DIR (at the address and with the operator
token found in DIR) for a consistent snapshot of its store, and writes it to
FILE atomically. The node keeps serving meanwhile. Bring a backup back with
"imtgt-node restore". Keys are not in the backup: keep DIR/keys safe apart.`,
		Example: `  imtgt-node backup --dir /var/lib/imtgt/th --out th-$(date +%F).db`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlag("dir", dir); err != nil {
				return err
			}
			if err := requireFlag("out", out); err != nil {
				return err
			}
			res, err := node.Backup(cmd.Context(), dir, out)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Backed up %d bytes to %s\n", res.Bytes, res.Path)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "node directory (required)")
	cmd.Flags().StringVar(&out, "out", "", "backup file to write (required)")
	return cmd
}

func newRestoreCmd() *cobra.Command {
	var dir, from string
	var fromPeers, markOnly bool
	cmd := &cobra.Command{
		Use:   "restore --dir DIR (--from FILE | --from-peers | --mark-only)",
		Short: "Put a backup back as the store of a stopped node",
		Long: `restore replaces the store of the node in DIR with a backup made by
"imtgt-node backup". The node must be stopped. The file must be a backup of
this very node (same identity key and country). The replaced store is kept
beside it as data/node.db.before-restore-<time>.

A restored node does not publish at once: when it runs, it first reconciles
with every member of the federation. It takes back its own catalog records
that the members hold beyond the backup (they carry its signature), so its
log continues above the highest sequence any member holds, and it recovers
the orders the members placed with it since the backup, each exactly once.
Until then /readyz is 503 with the reason, writes to the catalog get 503
"reconciling", and GET /v1/peers shows each member's progress.

--from-peers is for a node whose store is lost with no backup: it makes a
new store for the same keys and operator token, marked the same way. Install
the federation manifest again (federation install), then run the node: the
catalog log and the orders come back from the members. Sellers' personal
data and tokens never left the node and do not come back.

--mark-only changes no data: it only marks the store for that reconciliation,
for an operator who restored it by other means (a PostgreSQL store, which
backup and restore refuse, restored with pg_dump or a base backup).`,
		Example: `  imtgt-node restore --dir /var/lib/imtgt/th --from th-2026-11-26.db
  imtgt-node restore --dir /var/lib/imtgt/th --from-peers
  imtgt-node restore --dir /etc/imtgt/th --mark-only`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlag("dir", dir); err != nil {
				return err
			}
			var res *node.RestoreResult
			var err error
			switch {
			case fromPeers && from != "", markOnly && (fromPeers || from != ""):
				return usageError{errors.New("give one of --from FILE, --from-peers or --mark-only")}
			case markOnly:
				if err := node.MarkRestored(cmd.Context(), dir, time.Now()); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "Marked the store restored: when it runs, the node reconciles with every member before it publishes (GET /v1/peers shows the progress).")
				return nil
			case fromPeers:
				res, err = node.RestoreFromPeers(dir, time.Now())
				from = "a new store"
			default:
				if err := requireFlag("from", from); err != nil {
					return err
				}
				res, err = node.Restore(dir, from, time.Now())
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Restored %s into %s\n", from, res.Restored)
			if res.Previous != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "The replaced store is kept as %s\n", res.Previous)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "When it runs, the node reconciles with every member before it publishes (GET /v1/peers shows the progress).")
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "node directory (required)")
	cmd.Flags().StringVar(&from, "from", "", "backup file to restore")
	cmd.Flags().BoolVar(&markOnly, "mark-only", false, "only mark the store for reconciliation: it was restored by other means (PostgreSQL: pg_dump, base backups)")
	cmd.Flags().BoolVar(&fromPeers, "from-peers", false, "the store is lost with no backup: make a new one and take the catalog log and orders back from the members")
	return cmd
}
