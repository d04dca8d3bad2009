// Command imtgt-node runs a national node of the IMT-GT e-commerce
// federation. See README.md and docs/OPERATIONS.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes: scripts can tell a usage mistake from a failure.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// usageError marks a mistake in the command line.
type usageError struct{ error }

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "error:", err)
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(stderr, "Try: imtgt-node --help")
		return exitUsage
	}
	return exitError
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "imtgt-node",
		Short: "A national node of the IMT-GT e-commerce federation",
		Long: `imtgt-node runs a country's node of the Indonesia-Malaysia-Thailand Growth
Triangle e-commerce federation: sellers register and list with their home
node, whose catalog is searchable, and their personal data stays at home.`,
		Example: `  imtgt-node demo
  imtgt-node init --country TH --dir ./th
  imtgt-node run --dir ./th`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newInitCmd(),
		newRunCmd(),
		newBackupCmd(),
		newRestoreCmd(),
		newMemberCmd(),
		newFederationCmd(),
		newPolicyCmd(),
		newAuditCmd(),
		newStoreCmd(),
		newIssuesCmd(),
		newDemoCmd(),
		newVersionCmd(),
	)
	return root
}

// requireFlags turns missing required flags into usage errors.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("%s takes no arguments, got %q", cmd.CommandPath(), args)}
	}
	return nil
}

func requireFlag(name, value string) error {
	if value == "" {
		return usageError{fmt.Errorf("--%s is required", name)}
	}
	return nil
}

// appliedHow says, after an install, when the node applies what was
// installed: at once if it runs, else when it starts.
func appliedHow(running bool) string {
	if running {
		return "the running node applied it"
	}
	return "the node uses it when it starts"
}
