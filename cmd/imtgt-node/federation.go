package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/imtgt/imtgt-node/federation"
	"github.com/imtgt/imtgt-node/keys"
	"github.com/imtgt/imtgt-node/membership"
	"github.com/imtgt/imtgt-node/node"
)

func newMemberCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "member --dir DIR",
		Short: "Print this node's member descriptor (JSON) for a federation manifest",
		Long: `member prints the descriptor another agency needs to name this node in a
federation manifest: country, agency name, node peer ID, addresses and the
agency's governance public key. It reads only DIR's config and keys, so it
works while the node runs. The address is config.yaml's p2p.addr: make it
one the other members can reach.`,
		Example: `  imtgt-node member --dir /var/lib/imtgt/th > th.member.json`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlag("dir", dir); err != nil {
				return err
			}
			m, err := node.MemberDescriptor(dir)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(m)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "node directory (required)")
	return cmd
}

func newFederationCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "federation",
		Short: "Create, sign, verify and install federation membership manifests",
		Long: `A federation manifest names the members (country, agency, node peer ID,
addresses, governance key), a version that only increases, an expiry and a
signature threshold K. Every member agency signs it with its governance key;
a node installs it only with at least K valid signatures.

The onboarding flow:
  1. each agency:  imtgt-node member --dir DIR > CC.member.json
  2. one agency:   imtgt-node federation create ... --out fed.yaml *.member.json
                   (writes fed.yaml and swarm.key; share both with the members
                   over a trusted channel)
  3. each agency:  imtgt-node federation sign --dir DIR fed.yaml
  4. anyone:       imtgt-node federation verify fed.yaml
  5. each agency:  imtgt-node federation install --dir DIR --psk swarm.key fed.yaml`,
		Example: `  imtgt-node federation create --name imtgt --threshold 2 --expires 2027-12-31T00:00:00Z --out fed.yaml th.json my.json id.json`,
	}
	cmd.AddCommand(newFedCreateCmd(), newFedSignCmd(), newFedVerifyCmd(), newFedInstallCmd())
	return cmd
}

func newFedCreateCmd() *cobra.Command {
	var name, expires, out string
	var threshold int
	var version uint64
	cmd := &cobra.Command{
		Use:   "create --name NAME --threshold K --expires RFC3339 --out FED.yaml MEMBER.json...",
		Short: "Write an unsigned manifest and a new federation key (swarm.key) beside it",
		Long: `create builds an unsigned manifest (version 1 unless --version) from member
descriptors and writes it to --out, with a new federation pre-shared key in
swarm.key beside it (0600). For a new version of an existing federation, keep
the existing swarm.key: create refuses to overwrite one.`,
		Example: `  imtgt-node federation create --name imtgt --threshold 2 --expires 2027-12-31T00:00:00Z \
    --out fed.yaml th.member.json my.member.json id.member.json
  imtgt-node federation create --name imtgt --threshold 2 --expires 2027-12-31T00:00:00Z \
    --version 2 --out fed-v2.yaml th.member.json my.member.json id.member.json bn.member.json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, f := range []struct{ name, v string }{{"name", name}, {"expires", expires}, {"out", out}} {
				if err := requireFlag(f.name, f.v); err != nil {
					return err
				}
			}
			if threshold < 1 {
				return usageError{errors.New("--threshold K (at least 1) is required")}
			}
			if len(args) == 0 {
				return usageError{errors.New("name at least one MEMBER.json (from imtgt-node member)")}
			}
			exp, err := time.Parse(time.RFC3339, expires)
			if err != nil {
				return usageError{fmt.Errorf("--expires %q is not RFC 3339 (like 2027-12-31T00:00:00Z): %v", expires, err)}
			}
			// A manifest born expired could never be installed: say so now,
			// not after every agency has signed it. A near future is fine
			// (a renewal may be cut short on purpose).
			if now := time.Now(); !exp.Truncate(time.Second).After(now) {
				return usageError{fmt.Errorf("--expires %s is in the past (now %s): give a future time, like %s",
					exp.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), now.AddDate(1, 0, 0).UTC().Format("2006-01-02T00:00:00Z"))}
			}
			var members []membership.Member
			for _, path := range args {
				data, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				m, err := membership.ParseMember(data)
				if err != nil {
					return fmt.Errorf("%s: %w", path, err)
				}
				members = append(members, m)
			}
			man, err := membership.New(name, version, exp.UTC().Truncate(time.Second), threshold, members)
			if err != nil {
				return err
			}
			raw, err := man.Marshal()
			if err != nil {
				return err
			}
			if _, err := os.Stat(out); err == nil {
				return fmt.Errorf("%s already exists: choose another --out, or move it away", out)
			}
			pskPath := filepath.Join(filepath.Dir(out), "swarm.key")
			wrotePSK := false
			if _, err := os.Stat(pskPath); err == nil {
				if version <= 1 {
					return fmt.Errorf("%s already exists: a new federation needs a new key; move it away, or use --version N for a new version of its federation", pskPath)
				}
			} else if version > 1 {
				// Running members refuse a manifest whose key differs from
				// theirs: a new version must travel with the federation's key.
				return fmt.Errorf("no swarm.key beside %s: copy the federation's existing swarm.key there (a new version keeps the federation key)", out)
			} else {
				psk, err := federation.NewPSK()
				if err != nil {
					return err
				}
				if err := keys.WriteFileExclusive(pskPath, psk); err != nil {
					return err
				}
				wrotePSK = true
				fmt.Fprintf(cmd.OutOrStdout(), "Wrote the federation key %s (0600): share it with the members over a trusted channel\n", pskPath)
			}
			if err := keys.WriteFileExclusive(out, raw); err != nil {
				if wrotePSK {
					os.Remove(pskPath) // a key without its manifest is only confusing
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Wrote %s: federation %s version %d, %d members, threshold %d, expires %s (unsigned)\n",
				out, man.Federation, man.Version, len(man.Members), man.Threshold, man.Expires.Format(time.RFC3339))
			fmt.Fprintf(cmd.OutOrStdout(), "Next: each member agency runs imtgt-node federation sign --dir DIR %s\n", out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "federation name, e.g. imtgt (required)")
	f.IntVar(&threshold, "threshold", 0, "signatures K needed to install (required)")
	f.StringVar(&expires, "expires", "", "expiry, RFC 3339 (required)")
	f.StringVar(&out, "out", "", "manifest file to write (required)")
	f.Uint64Var(&version, "version", 1, "manifest version")
	return cmd
}

// readManifest reads and parses a manifest file.
func readManifest(path string) (*membership.Manifest, []byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	m, err := membership.Parse(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, raw, nil
}

func oneArg(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return usageError{fmt.Errorf("%s takes one FILE argument", cmd.CommandPath())}
	}
	return nil
}

func newFedSignCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "sign --dir DIR FED.yaml",
		Short: "Add this agency's signature to a manifest (governance key)",
		Long: `sign adds the signature of the agency whose node is in DIR, made with its
governance key (DIR/keys/governance.key), replacing an older signature of the
same agency. The file is rewritten atomically. It works while the node runs.`,
		Example: `  imtgt-node federation sign --dir /var/lib/imtgt/th fed.yaml`,
		Args:    oneArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlag("dir", dir); err != nil {
				return err
			}
			m, _, err := readManifest(args[0])
			if err != nil {
				return err
			}
			me, err := node.MemberDescriptor(dir)
			if err != nil {
				return err
			}
			gk, err := keys.LoadGovernanceKey(filepath.Join(dir, node.KeysDir))
			if err != nil {
				return err
			}
			if err := membership.Sign(m, me.Country, gk); err != nil {
				return err
			}
			raw, err := m.Marshal()
			if err != nil {
				return err
			}
			if _, err := writeFileAtomic(args[0], bytes.NewReader(raw).WriteTo); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Signed %s as %s: %d of %d required signatures are valid (%s)\n",
				args[0], me.Country, len(m.ValidSigners()), m.Threshold, strings.Join(m.ValidSigners(), ", "))
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "node directory of the signing agency (required)")
	return cmd
}

func newFedVerifyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify FED.yaml",
		Short: "Show a manifest's members and which signatures are valid",
		Long: `verify checks a manifest on its own (no node needed): its form, its expiry,
and every signature against the member's governance key. It exits non-zero
when the manifest has fewer valid signatures than its threshold or is expired.`,
		Example: `  imtgt-node federation verify fed.yaml`,
		Args:    oneArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			m, _, err := readManifest(args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Federation %s, version %d, expires %s, threshold %d of %d\n\n",
				m.Federation, m.Version, m.Expires.Format(time.RFC3339), m.Threshold, len(m.Members))
			fmt.Fprintf(out, "Members:\n")
			for _, mem := range m.Members {
				fmt.Fprintf(out, "  %s  %-30s %s  %s\n", mem.Country, mem.Agency, mem.PeerID, strings.Join(mem.Addrs, ","))
			}
			fmt.Fprintf(out, "\nSignatures:\n")
			st := m.CheckSignatures()
			if len(st) == 0 {
				fmt.Fprintf(out, "  (none)\n")
			}
			for _, s := range st {
				if s.Valid {
					fmt.Fprintf(out, "  %s  valid\n", s.Country)
				} else {
					fmt.Fprintf(out, "  %s  INVALID: %s\n", s.Country, s.Reason)
				}
			}
			valid := len(m.ValidSigners())
			switch {
			case m.Expired(time.Now()):
				return fmt.Errorf("the manifest expired at %s", m.Expires.Format(time.RFC3339))
			case valid < m.Threshold:
				return fmt.Errorf("%d valid signature(s) of %d required", valid, m.Threshold)
			}
			fmt.Fprintf(out, "\nOK: %d valid signature(s) of %d required\n", valid, m.Threshold)
			return nil
		},
	}
	return cmd
}

func newFedInstallCmd() *cobra.Command {
	var dir, pskPath string
	cmd := &cobra.Command{
		Use:   "install --dir DIR --psk swarm.key FED.yaml",
		Short: "Install a signed manifest on a node (applied at once if it runs)",
		Long: `install installs the manifest if it has at least K valid member signatures,
a higher version than the installed one (and, after the first install, the
installed federation's quorum of signatures), is not expired, and names this
node; otherwise it refuses with the reason and changes nothing. A running node
applies it without a restart; a stopped one uses it when it starts. Members
then spread newer versions to each other automatically.`,
		Example: `  imtgt-node federation install --dir /var/lib/imtgt/th --psk swarm.key fed.yaml`,
		Args:    oneArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlag("dir", dir); err != nil {
				return err
			}
			if err := requireFlag("psk", pskPath); err != nil {
				return err
			}
			raw, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			psk, err := os.ReadFile(pskPath)
			if err != nil {
				return err
			}
			res, err := node.InstallManifest(cmd.Context(), dir, raw, psk)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Installed federation %s version %d (%d members): %s\n",
				res.Manifest.Federation, res.Manifest.Version, len(res.Manifest.Members), appliedHow(res.Running))
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "node directory (required)")
	cmd.Flags().StringVar(&pskPath, "psk", "", "the federation key file, swarm.key (required)")
	return cmd
}
