package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// lockDir takes the exclusive, non-blocking flock on dir/lock that makes us the cluster's owner,
// and writes our pid into the file for the error another would-be owner gets. flock locks belong
// to the open file, so a second Start in this same process is refused like one from elsewhere,
// and the kernel releases the lock when the owner dies however it dies. The descriptor is
// close-on-exec, so the server and the watchdog never hold it.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open cluster lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			owner := "another process"
			if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
				owner = "process " + strings.TrimSpace(string(b))
			}
			return nil, fmt.Errorf("%w: the cluster in %s is started by %s", ErrInUse, dir, owner)
		}
		return nil, fmt.Errorf("lock cluster directory: %w", err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// Remove deletes the cluster in dir, first shutting down in immediate mode (the data is being
// discarded, so nothing is worth a clean shutdown) a server still running on it. It refuses with
// ErrInUse while a live process has the cluster started, so it is safe to call on every cluster
// directory found lying around, e.g. those of killed test processes. A missing dir is not an
// error.
func Remove(ctx context.Context, dir string) error {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	lock, err := lockDir(dir)
	if err != nil {
		return err
	}
	// Held until the directory is gone, so nobody starts a server in it meanwhile.
	defer lock.Close()
	srv, err := newServer(dir)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(srv.data, "postmaster.pid")); err == nil && srv.running(ctx) {
		if err := srv.stop(ctx, "immediate"); err != nil {
			return fmt.Errorf("remove cluster %s: %w", dir, err)
		}
	}
	removeTempSocketDir(dir)
	if err := removeAll(ctx, dir); err != nil {
		return fmt.Errorf("remove cluster %s: %w", dir, err)
	}
	return nil
}

// removeAll retries os.RemoveAll briefly: a server that has just exited may still be unlinking
// its socket and pid files, which makes a concurrent RemoveAll fail with "directory not empty".
func removeAll(ctx context.Context, dir string) error {
	var err error
	for range 20 {
		if err = os.RemoveAll(dir); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
	return err
}
