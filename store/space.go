package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrNoSpace means a write failed because the disk that holds the store is
// full. bbolt rolls a failed commit back whole, so nothing of the write
// was stored, and what was committed before stays as it was.
var ErrNoSpace = errors.New("no space left on the store's disk")

// MinFreeBytes is how much free space the store's file system must show
// before a store that ran out of space reports ready again. It is well
// above what one commit needs (a 50,000-row import is a few tens of MB at
// most, but bbolt grows its file in steps of up to 16 MiB), so readiness
// does not flap between full and ready while writes keep failing.
const MinFreeBytes = 16 << 20

// spaceState is set while the store is out of space.
type spaceState struct {
	at    time.Time
	cause string
}

// noSpace reports whether err is the file system's "no space left".
// bbolt wraps the write and fsync errors (errors.Is works), but formats
// the error of growing the file with %s, so its text is the only sign.
func noSpace(err error) bool {
	return err != nil && (errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), syscall.ENOSPC.Error()))
}

// noted records the outcome of a write: a failure for want of space puts
// the store in the out-of-space state (see SpaceCheck) and is returned
// wrapping ErrNoSpace; other outcomes are returned unchanged.
func (db *DB) noted(err error) error {
	if !noSpace(err) {
		return err
	}
	db.full.Store(&spaceState{at: time.Now().UTC(), cause: err.Error()})
	if errors.Is(err, ErrNoSpace) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrNoSpace, err)
}

// SpaceCheck is the store's disk-space readiness check: nil, or an error
// saying since when writes have failed for want of space. Once a write
// has failed that way the check fails until the file system shows at
// least MinFreeBytes free again (a statfs of the store's directory, made
// on each check while the store is out of space).
func (db *DB) SpaceCheck() error {
	s := db.full.Load()
	if s == nil {
		return nil
	}
	free, err := freeBytes(filepath.Dir(db.path))
	if err == nil && free >= MinFreeBytes {
		db.full.CompareAndSwap(s, nil)
		return nil
	}
	msg := fmt.Sprintf("insufficient storage: writes to the store have failed since %s for want of disk space", s.at.Format(time.RFC3339))
	if err == nil {
		msg += fmt.Sprintf("; %d bytes free, the node needs %d", free, MinFreeBytes)
	}
	return fmt.Errorf("%s: %w", msg, ErrNoSpace)
}

// freeBytes is the space an unprivileged writer may still use on the file
// system that holds dir.
func freeBytes(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil // Bsize is int64 on Linux, uint32 elsewhere
}

// spaceFlag is the out-of-space state of a DB.
type spaceFlag = atomic.Pointer[spaceState]
