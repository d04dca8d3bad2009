package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/imtgt/imtgt-node/node"
)

func newDemoCmd() *cobra.Command {
	var opts node.DemoOptions
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Start sample nodes on loopback with sample sellers and listings",
		Long: `demo initialises and starts a node on loopback, registers and approves
sample sellers, publishes their listings through the HTTP API, and prints
each node's URL and tokens. Ctrl-C stops it cleanly. Its data stays in the
directory it prints, so you can look at it afterwards.`,
		Example: `  imtgt-node demo
  imtgt-node demo --dir /tmp/imtgt-demo --http-port 9081`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			opts.Out = cmd.OutOrStdout()
			d, err := node.StartDemo(ctx, opts)
			if err != nil {
				return err
			}
			d.PrintSummary(cmd.OutOrStdout())
			<-ctx.Done()
			fmt.Fprintln(cmd.OutOrStdout(), "\nStopping…")
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := d.Close(shutdownCtx); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Stopped. The demo's data is in %s\n", d.Dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.Dir, "dir", "", "directory for the demo's nodes (default: a new temporary directory)")
	cmd.Flags().IntVar(&opts.HTTPPortBase, "http-port", 8081, "HTTP port of the first node; the next nodes take the following ports (0: random)")
	return cmd
}
