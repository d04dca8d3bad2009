package httpapi

import (
	"fmt"
	"net/http"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/store"
)

func TestClassifyFullDisk(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("apply: %w", store.ErrNoSpace),
		fmt.Errorf("commit: %w", &os.PathError{Op: "write", Path: "/var/lib/imtgt/node.db", Err: syscall.ENOSPC}),
	} {
		he := classify(err)
		require.Equal(t, http.StatusInsufficientStorage, he.status)
		require.Equal(t, "insufficient_storage", he.Code)
		require.NotContains(t, he.Message, "/var/lib", "no local paths to clients")
	}
}

// TestClassifyStoreUnavailable: both are 503 store_unavailable, but only a
// failure before the commit says that nothing was stored; a commit whose
// outcome is unknown says so, and how to retry safely.
func TestClassifyStoreUnavailable(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("place orders: %w: dial tcp: connection refused", store.ErrUnavailable), "nothing of this request was stored"},
		{fmt.Errorf("write: %w", store.ErrFenced), "nothing of this request was stored"},
		{fmt.Errorf("place orders: %w: unexpected EOF", store.ErrCommitUnknown), "whether it was stored is unknown; retry with the same Idempotency-Key, or read before retrying"},
	} {
		he := classify(c.err)
		require.Equal(t, http.StatusServiceUnavailable, he.status, "%v", c.err)
		require.Equal(t, "store_unavailable", he.Code)
		require.Contains(t, he.Message, c.want)
	}
	require.NotContains(t, classify(store.ErrCommitUnknown).Message, "nothing of this request was stored")
}
