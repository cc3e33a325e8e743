// Package storetest gives each test its own real PostgreSQL database, migrated, in milliseconds.
//
// One private cluster per test process (package pgcluster, fsync off) is started on first use, or
// the server at SAJET_TEST_DATABASE_URL is used when set. The schema is migrated once into a
// template database named after the migrations' fingerprint; every test then gets
// `CREATE DATABASE … TEMPLATE …`, so tests run in parallel without seeing each other's rows.
//
// Process-wide state is unavoidable here (one cluster per test binary) and lives only in this test
// helper. Main stops the cluster after the tests; a cluster left by a killed test binary is found
// and removed by the next run (its directory name carries the owner's pid).
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jeturing/sajet-domains/controlplane/pgcluster"
	"github.com/jeturing/sajet-domains/migrations"
)

// EnvURL names the variable that points the tests at an existing server instead.
const EnvURL = "SAJET_TEST_DATABASE_URL"

type harness struct {
	cluster  *pgcluster.Cluster // nil with EnvURL
	base     *url.URL           // URL of the server; the path is replaced per database
	admin    *pgxpool.Pool      // on the maintenance database, for CREATE/DROP DATABASE
	template string
}

var (
	once    sync.Once
	shared  *harness
	initErr error
)

// Main runs the tests and then stops the process's cluster. Use it from TestMain:
//
//	func TestMain(m *testing.M) { storetest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.close()
	}
	os.Exit(code)
}

// NewDB returns a pool on a fresh migrated database for this test, dropped in t.Cleanup.
func NewDB(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, _ := NewDBURL(t)
	return pool
}

// NewDBURL is NewDB that also returns the database's URL (to start a real binary against it).
func NewDBURL(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	once.Do(func() { shared, initErr = start() })
	if initErr != nil {
		t.Fatalf("test database: %v", initErr)
	}
	h := shared
	ctx := context.Background()
	name := "t_" + randomHex(8)
	create := fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s STRATEGY FILE_COPY", name, h.template)
	for attempt := 0; ; attempt++ {
		_, err := h.admin.Exec(ctx, create)
		if err == nil {
			break
		}
		var pgErr *pgconn.PgError
		// 55006: "source database is being accessed by other users" — a short-lived connection
		// to the template (autovacuum, another process creating it) is still closing.
		if errors.As(err, &pgErr) && pgErr.Code == "55006" && attempt < 50 {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		t.Fatalf("create test database: %v", err)
	}
	dbURL := h.urlFor(name)
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect to test database: %v", err)
	}
	t.Cleanup(func() {
		pool.Close()
		if _, err := h.admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	return pool, dbURL
}

func start() (*harness, error) {
	ctx := context.Background()
	h := &harness{template: "sajet_tpl_" + migrations.Fingerprint()}
	if env := os.Getenv(EnvURL); env != "" {
		u, err := url.Parse(env)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvURL, err)
		}
		h.base = u
	} else {
		removeStaleClusters()
		dir, err := os.MkdirTemp("", fmt.Sprintf("sajet-pgtest-%d-", os.Getpid()))
		if err != nil {
			return nil, err
		}
		// As root the cluster runs as the postgres user, who must be able to enter the directory.
		if err := os.Chmod(dir, 0o755); err != nil {
			return nil, err
		}
		c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir, Fsync: false})
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		h.cluster = c
		h.base, _ = url.Parse(c.URL("postgres"))
	}
	admin, err := pgxpool.New(ctx, h.urlFor(maintenanceDB(h.base)))
	if err != nil {
		h.close()
		return nil, fmt.Errorf("connect to test server: %w", err)
	}
	h.admin = admin
	if err := h.ensureTemplate(ctx); err != nil {
		h.close()
		return nil, err
	}
	return h, nil
}

// ensureTemplate builds the template once per schema version; with a shared server several test
// processes may race, so creation holds an advisory lock.
func (h *harness) ensureTemplate(ctx context.Context) error {
	conn, err := h.admin.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	const lockKey = 0x73746573 // "stes"
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", lockKey); err != nil {
		return fmt.Errorf("lock template creation: %w", err)
	}
	defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", lockKey) //nolint:errcheck
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, h.template).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	building := h.template + "_building"
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+building+" WITH (FORCE)"); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+building); err != nil {
		return fmt.Errorf("create template: %w", err)
	}
	pool, err := pgxpool.New(ctx, h.urlFor(building))
	if err != nil {
		return err
	}
	_, err = migrations.Apply(ctx, pool, nil)
	pool.Close()
	if err != nil {
		return fmt.Errorf("migrate template: %w", err)
	}
	// Renamed only when complete, so a half-built template is never cloned.
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+building+" RENAME TO "+h.template); err != nil {
		return fmt.Errorf("publish template: %w", err)
	}
	return nil
}

func (h *harness) urlFor(db string) string {
	u := *h.base
	u.Path = "/" + db
	return u.String()
}

func (h *harness) close() {
	if h.admin != nil {
		h.admin.Close()
	}
	if h.cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = h.cluster.Stop(ctx)
		os.RemoveAll(h.cluster.Dir())
	}
}

func maintenanceDB(u *url.URL) string {
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		return db
	}
	return "postgres"
}

// removeStaleClusters stops and deletes clusters of test processes that no longer exist.
func removeStaleClusters() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "sajet-pgtest-*"))
	for _, dir := range dirs {
		parts := strings.SplitN(filepath.Base(dir), "-", 4)
		if len(parts) < 3 {
			continue
		}
		pid, err := strconv.Atoi(parts[2])
		if err != nil || processAlive(pid) {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid")); err == nil {
			if pm, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])); err == nil {
				_ = syscall.Kill(pm, syscall.SIGQUIT) // immediate shutdown: the data is disposable
			}
		}
		os.RemoveAll(dir)
	}
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
