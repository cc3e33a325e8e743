package storetest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jeturing/sajet-domains/controlplane/pgcluster"
	"github.com/jeturing/sajet-domains/internal/testwait"
)

// On a shared server, databases whose owner lock nobody holds (their process died before its
// cleanups) are dropped by the next process's setup; databases of live owners are kept.
func TestDeadOwnersDatabasesAreDropped(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	mine := NewDB(t)
	h := sharedHarness(t)
	var mineName string
	if err := mine.QueryRow(ctx, `SELECT current_database()`).Scan(&mineName); err != nil {
		t.Fatal(err)
	}
	// Owner id 0 is never handed out, so nobody holds its lock. The suffix keeps processes that
	// share a server from colliding.
	dead := fmt.Sprintf("t_00000000_%08x", h.ownerID)
	if _, err := h.admin.Exec(ctx, "CREATE DATABASE "+dead+" "+h.clone); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.dropDatabase(context.Background(), dead) })

	h.dropDeadOwnersDatabases(ctx)

	for name, want := range map[string]bool{dead: false, mineName: true} {
		var exists bool
		if err := h.admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if exists != want {
			t.Errorf("database %s exists = %v after the sweep, want %v", name, exists, want)
		}
	}
}

// Only directories of dead processes are reclaimed: not ours, not a live process's.
func TestRemoveDeadClustersSparesLiveOwners(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	deadPID := exitedPID(t)
	dirs := map[string]bool{ // name → should survive
		fmt.Sprintf("%s%d-1", clusterDirPrefix, deadPID):     false,
		fmt.Sprintf("%s%d-2", clusterDirPrefix, os.Getpid()): true,
		fmt.Sprintf("%s%d-3", clusterDirPrefix, 1):           true, // init: always alive
		"sajet-other-1": true,
	}
	for name := range dirs {
		if err := os.MkdirAll(filepath.Join(tmp, name, "data"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	removeDeadClusters(t.Context(), tmp)
	for name, survive := range dirs {
		_, err := os.Stat(filepath.Join(tmp, name))
		if got := err == nil; got != survive {
			t.Errorf("%s survives = %v, want %v (%v)", name, got, survive, err)
		}
	}
}

const helperEnv = "STORETEST_HELPER"

// TestHelperProcess is not a test: run by TestNoServerOutlivesItsTestBinary in a child test
// binary, it takes a database, reports where, and then either returns (so Main cleans up) or
// waits to be killed.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("helper process for TestNoServerOutlivesItsTestBinary")
	}
	_, url := NewDBURL(t)
	dir := "-" // with EnvURL, no private cluster
	if c := sharedHarness(t).cluster; c != nil {
		dir = c.Dir()
	}
	fmt.Printf("ready %s %s\n", url, dir)
	if mode == "wait" {
		select {} // until killed; -test.timeout bounds it should the parent fail to
	}
}

// A test binary's private cluster is gone after the binary ends: stopped and deleted by Main
// after a normal run, stopped by the watchdog and then reclaimed by the next process's setup when
// the binary is killed.
func TestNoServerOutlivesItsTestBinary(t *testing.T) {
	if os.Getenv(EnvURL) != "" {
		t.Skip("no private cluster with " + EnvURL)
	}
	t.Parallel()
	for _, mode := range []string{"return", "wait"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			// The child's TMPDIR: its cluster goes there, away from other processes'.
			tmp, err := os.MkdirTemp(pgcluster.ScratchDir(), "storetest-test-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.RemoveAll(tmp) })
			if err := os.Chmod(tmp, 0o755); err != nil { // the postgres user must enter it as root
				t.Fatal(err)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.timeout=2m")
			cmd.Env = append(os.Environ(), helperEnv+"="+mode, "TMPDIR="+tmp)
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				removeDeadClusters(context.Background(), tmp) // whatever happened, leave nothing running
			})
			line, _ := bufio.NewReader(out).ReadString('\n')
			fields := strings.Fields(line)
			if len(fields) != 3 || fields[0] != "ready" {
				t.Fatalf("helper said %q", line)
			}
			url, dir := fields[1], fields[2]

			if mode == "wait" {
				if err := cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
			}
			_ = cmd.Wait()
			testwait.Until(t, 30*time.Second, "the helper's server has stopped", func() bool { return !reachable(url) })
			if mode == "wait" {
				removeDeadClusters(t.Context(), tmp)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("cluster directory %s still exists (%v)", dir, err)
			}
		})
	}
}

// BenchmarkClone measures what each NewDB costs once the template exists: clone, connect, drop.
func BenchmarkClone(b *testing.B) {
	h := sharedHarness(b)
	ctx := b.Context()
	for _, strategy := range []string{"FILE_COPY", "WAL_LOG"} {
		b.Run(strategy, func(b *testing.B) {
			hs := *h
			hs.clone = "TEMPLATE " + pgx.Identifier{h.template}.Sanitize() + " STRATEGY = " + strategy
			for b.Loop() {
				name, err := hs.createDatabase(ctx)
				if err != nil {
					b.Fatal(err)
				}
				pool, err := pgxpool.New(ctx, hs.urlFor(name))
				if err != nil {
					b.Fatal(err)
				}
				if err := pool.Ping(ctx); err != nil {
					b.Fatal(err)
				}
				pool.Close()
				if err := hs.dropDatabase(ctx, name); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// exitedPID is the pid of a process that has exited (and been reaped).
func exitedPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func reachable(url string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return false
	}
	_ = conn.Close(ctx)
	return true
}
