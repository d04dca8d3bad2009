package main

import (
	"fmt"
	"path/filepath"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/imtgt/imtgt-node/node"
)

func newStoreCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Check a stopped node's store, or move it to PostgreSQL",
		Long: `The store is one bbolt file, DIR/data/node.db, or a PostgreSQL database
(config.yaml store.url) that several replicas of the node share. "run"
checks a bbolt file at every start (the file is as long as its pages, and
every page reads), and refuses a damaged one; "store check" checks
everything; "store migrate" moves a stopped bbolt node into PostgreSQL.`,
		Example: `  imtgt-node store check --dir /var/lib/imtgt/th
  PGPASSWORD=... imtgt-node store migrate --dir /var/lib/imtgt/th --to 'postgres://imtgt@db.example:5432/imtgt_th'`,
	}
	cmd.AddCommand(newStoreCheckCmd(), newStoreMigrateCmd())
	return cmd
}

func newStoreCheckCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "check --dir DIR",
		Short: "Run a full consistency check of a stopped node's store",
		Long: `check reads the whole store of the stopped node in DIR, read-only, and
reports: bbolt's own check (every page reachable or free, none twice, keys
in order), then the node's: the schema version, the store belongs to this
node's key and country, the data key fingerprint is that of
DIR/keys/data.key and every sealed record opens with it, every listing,
seller and order decodes, each origin's catalog log is gap-free from 1 to
its head, and the audit chain's links and hashes verify up to its head.

It exits 0 when the store is consistent and 1 naming each problem. It
refuses while the node runs (the node holds the file's lock). A damaged
store is restored from a backup: imtgt-node restore --dir DIR --from FILE.`,
		Example: `  imtgt-node store check --dir /var/lib/imtgt/th`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlag("dir", dir); err != nil {
				return err
			}
			res, err := node.CheckStore(cmd.Context(), dir)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Checked %s (%d bytes) in %s\n", res.Path, res.Bytes, res.Took.Round(time.Millisecond))
			if res.SchemaVersion > 0 {
				fmt.Fprintf(out, "  %-14s %d\n", "schema:", res.SchemaVersion)
			}
			names := make([]string, 0, len(res.Counts))
			for k := range res.Counts {
				names = append(names, k)
			}
			sort.Strings(names)
			for _, k := range names {
				fmt.Fprintf(out, "  %-14s %d\n", k+":", res.Counts[k])
			}
			if res.OK() {
				fmt.Fprintln(out, "The store is consistent.")
				return nil
			}
			n := len(res.Problems) + res.More
			fmt.Fprintf(out, "%s:\n", problems(n))
			for _, p := range res.Problems {
				fmt.Fprintf(out, "  - %s\n", p)
			}
			if res.More > 0 {
				fmt.Fprintf(out, "  ... and %d more\n", res.More)
			}
			if res.WrongDataKey {
				return fmt.Errorf("%s is not this store's data key: put back this node's own keys/data.key, then check again", filepath.Join(dir, "keys", "data.key"))
			}
			return fmt.Errorf("store %s has %s; restore it from a backup: imtgt-node restore --dir %s --from FILE", res.Path, problems(n), dir)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "node directory (required)")
	return cmd
}

func problems(n int) string {
	if n == 1 {
		return "1 problem"
	}
	return fmt.Sprintf("%d problems", n)
}

func newStoreMigrateCmd() *cobra.Command {
	var dir, to string
	cmd := &cobra.Command{
		Use:   "migrate --dir DIR --to URL",
		Short: "Move a stopped bbolt node into an empty PostgreSQL database",
		Long: `migrate copies the whole store of the stopped node in DIR (every seller,
token, listing and catalog log, peers' records, order, outbox and inbox
row, receipt, idempotency key, audit entry, policy and manifest) into the
empty PostgreSQL database at URL, in one transaction: the database gets all
of it or none. It then compares the copy with the file key by key, runs the
store check on the database, records the move in the audit log, switches
config.yaml's store.url to URL and renames DIR/data/node.db to
node.db.migrated, so that nothing opens the old file again.

The password never goes into URL or the config: set PGPASSWORD, or use a
passfile (~/.pgpass or PGPASSFILE) as libpq does. After the move, "run"
uses the database; copies of DIR run further replicas (docs/OPERATIONS.md).`,
		Example: `  PGPASSWORD=... imtgt-node store migrate --dir /var/lib/imtgt/th --to 'postgres://imtgt@db.example:5432/imtgt_th'`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlag("dir", dir); err != nil {
				return err
			}
			if err := requireFlag("to", to); err != nil {
				return err
			}
			res, err := node.MigrateStore(cmd.Context(), dir, to)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Moved the store of %s to %s in %s: %d keys in %d buckets, compared key by key.\n", dir, res.To, res.Took.Round(time.Millisecond), res.Total, res.Buckets)
			names := make([]string, 0, len(res.Counts))
			for k := range res.Counts {
				names = append(names, k)
			}
			sort.Strings(names)
			for _, k := range names {
				fmt.Fprintf(out, "  %-14s %d\n", k+":", res.Counts[k])
			}
			fmt.Fprintf(out, "config.yaml now has store.url; the old file is %s (keep it as an archive, never run on it).\n", res.Kept)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "node directory (required)")
	cmd.Flags().StringVar(&to, "to", "", "PostgreSQL URL of an empty database, postgres://USER@HOST:PORT/DB (required; password from PGPASSWORD or a passfile)")
	return cmd
}
