package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNotedNoSpace(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "node.db"), Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, db.SpaceCheck())

	for _, tt := range []struct {
		name string
		err  error
		full bool
	}{
		{"other error", errors.New("boom"), false},
		{"nil", nil, false},
		{"write", &os.PathError{Op: "write", Path: db.Path(), Err: syscall.ENOSPC}, true},
		// bbolt's grow formats the cause with %s.
		{"grow", fmt.Errorf("file resize error: %s", &os.PathError{Op: "truncate", Path: db.Path(), Err: syscall.ENOSPC}), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db.full.Store(nil)
			got := db.noted(tt.err)
			require.Equal(t, tt.full, errors.Is(got, ErrNoSpace), "%v", got)
			require.Equal(t, tt.full, db.full.Load() != nil)
			if !tt.full {
				require.Equal(t, tt.err, got)
			}
		})
	}
}

func TestSpaceCheckRecoversWhenSpaceIsBack(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "node.db"), Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	free, err := freeBytes(filepath.Dir(db.Path()))
	require.NoError(t, err)
	if free < MinFreeBytes {
		t.Skipf("the temporary directory's disk has only %d bytes free", free)
	}
	// A batch write that fails for want of space.
	err = db.batch(func(kvTx) error { return &os.PathError{Op: "write", Path: db.Path(), Err: syscall.ENOSPC} })
	require.ErrorIs(t, err, ErrNoSpace)
	require.NotNil(t, db.full.Load())
	// The disk here has space: the check clears.
	require.NoError(t, db.SpaceCheck())
	require.Nil(t, db.full.Load())
}
