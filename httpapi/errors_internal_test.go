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
