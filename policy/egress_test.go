package policy_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestOneEgressPoint keeps policy.Project the only code that builds a
// domain record for the wire: outside package policy (and the generated
// wire package and tests), no Go file constructs a pb.Listing or
// pb.SellerProfile.
func TestOneEgressPoint(t *testing.T) {
	root := ".."
	build := regexp.MustCompile(`pb\.(Listing|SellerProfile)\{`)
	var offenders []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		dir := filepath.ToSlash(filepath.Dir(path))
		if dir == "." || strings.HasSuffix(dir, "/policy") && !strings.Contains(dir, "/policy/") || strings.HasSuffix(dir, "federation/pb") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if build.Match(src) {
			offenders = append(offenders, path)
		}
		return nil
	})
	require.NoError(t, err)
	require.Empty(t, offenders, "only package policy may build wire records of domain data")
}
