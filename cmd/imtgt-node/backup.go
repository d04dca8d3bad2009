package main

import (
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
	cmd := &cobra.Command{
		Use:   "restore --dir DIR --from FILE",
		Short: "Put a backup back as the store of a stopped node",
		Long: `restore replaces the store of the node in DIR with a backup made by
"imtgt-node backup". The node must be stopped. The file must be a backup of
this very node (same identity key and country). The replaced store is kept
beside it as data/node.db.before-restore-<time>.`,
		Example: `  imtgt-node restore --dir /var/lib/imtgt/th --from th-2026-11-26.db`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlag("dir", dir); err != nil {
				return err
			}
			if err := requireFlag("from", from); err != nil {
				return err
			}
			res, err := node.Restore(dir, from, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Restored %s into %s\n", from, res.Restored)
			if res.Previous != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "The replaced store is kept as %s\n", res.Previous)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "node directory (required)")
	cmd.Flags().StringVar(&from, "from", "", "backup file to restore (required)")
	return cmd
}
