package store

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// Lock takes the store file's lock the way bbolt does (an exclusive
// flock), without opening the database: it proves no node runs on the
// file, even on a file too damaged to open. The lock holds until the
// returned file is closed.
func Lock(path string, timeout time.Duration) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, fmt.Errorf("lock %s: %w", path, ErrLocked)
			}
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		time.Sleep(10 * time.Millisecond) // the lock holder gives no signal to wait on
	}
}
