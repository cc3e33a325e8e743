package storetest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// EnvURL names the variable that points the tests at an existing server instead of a private
// cluster.
const EnvURL = "SAJET_TEST_DATABASE_URL"

// poolMaxConns is the size of each test's pool: what app.Open gives production, and the same on
// every machine (pgxpool's default follows the CPU count, so a test could deadlock on a 2-CPU CI
// runner and pass on a laptop).
const poolMaxConns = 16

// The process's server and template, set up by the first NewDB and shut down by Main.
var shared struct {
	mu   sync.Mutex
	h    *harness
	err  error // setup failed: every later NewDB fails with it rather than retrying
	done bool  // Main has shut the server down
}

// Main runs the tests and then stops the process's private cluster and deletes its directory.
// Every package that uses NewDB should call it from TestMain:
//
//	func TestMain(m *testing.M) { storetest.Main(m) }
//
// Without it the cluster is still stopped when the test binary exits (by its watchdog) and its
// directory deleted by a later run, but a clean exit is quicker and leaves nothing behind.
func Main(m *testing.M) {
	code := m.Run()
	if err := shutdown(); err != nil {
		fmt.Fprintf(os.Stderr, "storetest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// NewDB returns a pool on a fresh migrated database for this test, dropped in t.Cleanup.
func NewDB(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, _ := NewDBURL(t)
	return pool
}

// NewDBURL is NewDB but also returns the connection URL (for starting a real binary against it).
// The database is dropped with (FORCE) at cleanup, so connections the binary leaves are no
// obstacle.
func NewDBURL(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	h := sharedHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name, err := h.createDatabase(ctx)
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := h.dropDatabase(ctx, name); err != nil {
			t.Errorf("storetest: %v", err)
		}
	})
	dbURL := h.urlFor(name)
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatalf("storetest: parse test database URL: %v", err)
	}
	cfg.MaxConns = poolMaxConns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("storetest: open pool on test database: %v", err)
	}
	t.Cleanup(pool.Close) // before the drop: cleanups run last-registered first
	return pool, dbURL
}

// sharedHarness sets the process's server and template up on first use. Setup holds the lock,
// so parallel tests that arrive meanwhile wait for it instead of starting clusters of their own.
func sharedHarness(t testing.TB) *harness {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.done {
		t.Fatal("storetest: NewDB called after Main shut the server down")
	}
	if shared.h == nil && shared.err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		shared.h, shared.err = setup(ctx)
		if shared.err == nil {
			t.Logf("storetest: %s", shared.h.report)
		}
	}
	if shared.err != nil {
		t.Fatalf("storetest: %v", shared.err)
	}
	return shared.h
}

func shutdown() error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	shared.done = true
	if shared.h == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return shared.h.close(ctx)
}
