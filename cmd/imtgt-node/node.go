package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/imtgt/imtgt-node/node"
)

func newInitCmd() *cobra.Command {
	var opts node.InitOptions
	cmd := &cobra.Command{
		Use:   "init --country CC --dir DIR",
		Short: "Create a new node directory: config, keys, store and operator token",
		Long: `init creates a node directory with a commented config.yaml, the node's
Ed25519 identity key, the agency's governance key, a data-encryption key for
personal fields (all 0600), an empty store, and the operator token, written
once to DIR/operator.token (the node keeps only its hash).

It refuses a directory that already holds files.`,
		Example: `  imtgt-node init --country TH --dir /var/lib/imtgt/th
  imtgt-node init --country MY --dir ./my --http-addr 127.0.0.1:8082 --p2p-addr /ip4/127.0.0.1/tcp/4002 --name "Malaysia node"
  imtgt-node init --country TH --dir /etc/imtgt/th --store-url 'postgres://imtgt@db:5432/imtgt_th' \
    --p2p-addr /dns/th-a.example/tcp/4001 --p2p-addr /dns/th-b.example/tcp/4001`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlag("country", opts.Country); err != nil {
				return err
			}
			if err := requireFlag("dir", opts.Dir); err != nil {
				return err
			}
			res, err := node.Init(opts)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Initialised the %s node in %s\n", res.Config.Node.Country, res.Dir)
			fmt.Fprintf(out, "  config:         %s/%s\n", res.Dir, node.ConfigFile)
			fmt.Fprintf(out, "  operator token: %s/%s (keep it secret; the node keeps only its hash)\n", res.Dir, node.OperatorTokenFile)
			fmt.Fprintf(out, "  HTTP API:       http://%s (after: imtgt-node run --dir %s)\n", res.Config.HTTP.Addr, res.Dir)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Country, "country", "", "ISO 3166-1 alpha-2 country the node serves: TH, MY or ID (required)")
	f.StringVar(&opts.Dir, "dir", "", "node directory to create (required)")
	f.StringVar(&opts.HTTPAddr, "http-addr", node.DefaultHTTPAddr, "HTTP API listen address")
	f.StringArrayVar(&opts.P2PAddrs, "p2p-addr", []string{node.DefaultP2PAddr}, "federation (libp2p) listen multiaddr; give it once per replica of the node (the first is the config's p2p.addr, all go into the member descriptor)")
	f.StringVar(&opts.StoreURL, "store-url", "", "PostgreSQL store shared by the node's replicas (postgres://user@host:5432/db; the password comes from PGPASSWORD or a passfile, never the URL); default: the embedded file DIR/data/node.db")
	f.StringVar(&opts.Name, "name", "", `node name shown to operators and peers (default "<country> national node")`)
	return cmd
}

func newRunCmd() *cobra.Command {
	var dir string
	var opts node.Options
	cmd := &cobra.Command{
		Use:   "run --dir DIR",
		Short: "Serve the node until SIGINT or SIGTERM",
		Long: `run serves the node in DIR until it receives SIGINT or SIGTERM, then shuts
down gracefully: in-flight requests finish (up to 30 s) and the store closes
cleanly.

With a PostgreSQL store (init --store-url) several replicas of one node may
run at once, each with its own --http-addr and --p2p-addr: every replica
serves the whole HTTP API, and one of them, the federation leader, runs the
federation (the others take over within seconds when it stops).`,
		Example: `  imtgt-node run --dir /var/lib/imtgt/th
  imtgt-node run --dir /etc/imtgt/th --http-addr 10.0.0.2:8081 --p2p-addr /ip4/10.0.0.2/tcp/4001`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlag("dir", dir); err != nil {
				return err
			}
			ctx := cmd.Context()
			n, err := node.Open(ctx, dir, opts)
			if err != nil {
				return err
			}
			if err := n.Start(ctx); err != nil {
				n.Close(context.Background())
				return err
			}
			var serveErr error
			select {
			case <-ctx.Done():
			case serveErr = <-n.Err():
			}
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return errors.Join(serveErr, n.Close(shutdownCtx))
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "node directory (required)")
	cmd.Flags().StringVar(&opts.HTTPAddr, "http-addr", "", "HTTP API listen address for this process (default: the config's http.addr); each replica has its own")
	cmd.Flags().StringVar(&opts.P2PAddr, "p2p-addr", "", "federation listen multiaddr for this process (default: the config's p2p.addr); each replica has its own")
	return cmd
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version",
		Example: `  imtgt-node version`,
		Args:    noArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "imtgt-node %s\n", node.Version)
		},
	}
}
