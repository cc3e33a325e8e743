package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jeturing/sajet-domains/controlplane/pgcluster"
	"github.com/jeturing/sajet-domains/migrations"
)

// Advisory lock classes (the first key of the two-key form), arbitrary but fixed: every process
// sharing a server must agree on them.
const (
	templateLockClass = 0x736a7474 // "sjtt": building the template; second key 0
	ownerLockClass    = 0x736a746f // "sjto": a live process; second key its owner id
)

// harness is one test process's server and template.
type harness struct {
	cluster  *pgcluster.Cluster // nil when EnvURL names the server
	server   *url.URL           // the server; its path is the maintenance database
	admin    *pgxpool.Pool      // on the maintenance database, for CREATE and DROP DATABASE
	owner    *pgx.Conn          // holds our owner lock for the life of the process
	ownerID  int32
	template string
	clone    string // the CREATE DATABASE options that clone the template
	report   string // how setup went, for the first test's log
}

func setup(ctx context.Context) (_ *harness, err error) {
	began := time.Now()
	h := &harness{template: "sajet_template_" + migrations.Fingerprint()}
	defer func() {
		if err != nil {
			_ = h.close(context.WithoutCancel(ctx))
		}
	}()
	var serverTook time.Duration
	if env := os.Getenv(EnvURL); env != "" {
		u, err := url.Parse(env)
		if err != nil {
			// Not wrapped: the parse error quotes the URL, password and all.
			return nil, fmt.Errorf("%s is not a valid URL", EnvURL)
		}
		if strings.Trim(u.Path, "/") == "" {
			u.Path = "/postgres"
		}
		h.server = u
	} else {
		if err := h.startCluster(ctx); err != nil {
			return nil, err
		}
		serverTook = time.Since(began)
	}

	if h.admin, err = pgxpool.New(ctx, h.server.String()); err != nil {
		return nil, fmt.Errorf("connect to the test server: %w", err)
	}
	var version int
	if err := h.admin.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		return nil, fmt.Errorf("connect to the test server: %w", err)
	}
	h.clone = "TEMPLATE " + pgx.Identifier{h.template}.Sanitize()
	if version >= 150000 && h.cluster != nil && pgcluster.IsTmpfs(h.cluster.Dir()) {
		// In memory, copying the files (and the two checkpoints around it) beats 15's default
		// of writing every block of the template to the WAL: 37 ms against 47 ms per clone,
		// connect and drop (BenchmarkClone). On this project's disk both took over 400 ms and
		// WAL_LOG was never the slower, so elsewhere the server's default stands.
		h.clone += " STRATEGY = FILE_COPY"
	}
	if err := h.takeOwnerID(ctx); err != nil {
		return nil, err
	}
	h.dropDeadOwnersDatabases(ctx)

	templateBegan := time.Now()
	built, err := h.ensureTemplate(ctx)
	if err != nil {
		return nil, err
	}

	if h.cluster != nil {
		h.report = fmt.Sprintf("private PostgreSQL on %s ready in %v", h.cluster.Where(), serverTook.Round(time.Millisecond))
	} else {
		h.report = "using the server at " + EnvURL
	}
	if built {
		h.report += fmt.Sprintf(", template %s migrated in %v", h.template, time.Since(templateBegan).Round(time.Millisecond))
	} else {
		h.report += ", template " + h.template + " already built"
	}
	h.report += fmt.Sprintf("; setup took %v", time.Since(began).Round(time.Millisecond))
	return h, nil
}

// startCluster starts the process's private cluster in a fresh directory under
// pgcluster.ScratchDir() (in memory when possible), after reclaiming those of test processes that
// died, wherever an earlier process with another TMPDIR may have put them.
func (h *harness) startCluster(ctx context.Context) error {
	parent := pgcluster.ScratchDir()
	for _, tmp := range slices.Compact(slices.Sorted(slices.Values([]string{parent, os.TempDir(), "/dev/shm"}))) {
		removeDeadClusters(ctx, tmp)
	}
	dir, err := os.MkdirTemp(parent, fmt.Sprintf("%s%d-", clusterDirPrefix, os.Getpid()))
	if err != nil {
		return fmt.Errorf("create cluster directory: %w", err)
	}
	// As root the server runs as the postgres user, who must enter the directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		_ = os.RemoveAll(dir)
		return fmt.Errorf("create cluster directory: %w", err)
	}
	c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir, StopOnExit: true})
	if err != nil {
		_ = os.RemoveAll(dir)
		return fmt.Errorf("start private PostgreSQL: %w", err)
	}
	h.cluster = c
	h.server, err = url.Parse(c.URL("postgres"))
	return err
}

// takeOwnerID holds, for the life of the process, an advisory lock on a random id that names
// this process's databases, so that others can tell them from those of dead processes.
func (h *harness) takeOwnerID(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, h.server.String())
	if err != nil {
		return fmt.Errorf("connect to the test server: %w", err)
	}
	h.owner = conn
	for range 10 {
		n, err := rand.Int(rand.Reader, big.NewInt(1<<31-1))
		if err != nil {
			return fmt.Errorf("owner id: %w", err)
		}
		id := int32(n.Int64()) + 1 // > 0: printed as 8 hex digits, and no sign games with pg_locks' oids
		var ok bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, $2)", ownerLockClass, id).Scan(&ok); err != nil {
			return fmt.Errorf("take owner lock: %w", err)
		}
		if ok {
			h.ownerID = id
			return nil
		}
	}
	return errors.New("take owner lock: every id tried is held")
}

// dropDeadOwnersDatabases drops test databases whose process no longer holds its owner lock: the
// leftovers of test binaries killed before their cleanups ran, on a shared server. Failures only
// leave garbage, so they are not errors.
func (h *harness) dropDeadOwnersDatabases(ctx context.Context) {
	rows, err := h.admin.Query(ctx, `
		SELECT datname FROM pg_database
		WHERE datname ~ '^t_[0-9a-f]{8}_[0-9a-f]+$'
		  AND ('x' || substr(datname, 3, 8))::bit(32)::int NOT IN (
			SELECT objid::bigint FROM pg_locks
			WHERE locktype = 'advisory' AND classid::bigint = $1 AND objsubid = 2)`, ownerLockClass)
	if err != nil {
		return
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return
	}
	for _, name := range names {
		_ = h.dropDatabase(ctx, name)
	}
}

// ensureTemplate builds the template unless it is ready, and reports whether it built it.
// Processes sharing a server serialise on an advisory lock, and the template is marked ready
// (IS_TEMPLATE, no connections) only once migrated; a half-built one, left by a builder that
// died, is not ready and is rebuilt.
func (h *harness) ensureTemplate(ctx context.Context) (bool, error) {
	if ready, err := h.templateReady(ctx, h.admin); err != nil || ready {
		return false, err
	}
	conn, err := h.admin.Acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("build template: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1, 0)", templateLockClass); err != nil {
		return false, fmt.Errorf("build template: lock: %w", err)
	}
	defer func() {
		// Even when ctx is done: a lock left held would make the other processes wait for ours.
		_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1, 0)", templateLockClass)
	}()
	if ready, err := h.templateReady(ctx, conn); err != nil || ready {
		return false, err
	}

	tpl := pgx.Identifier{h.template}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+tpl+" WITH (FORCE)"); err != nil {
		return false, fmt.Errorf("build template: drop a half-built one: %w", err)
	}
	// template0, not template1, so that whatever a shared server's template1 holds stays out.
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+tpl+" TEMPLATE template0 ENCODING 'UTF8'"); err != nil {
		return false, fmt.Errorf("build template: %w", err)
	}
	cfg, err := pgxpool.ParseConfig(h.urlFor(h.template))
	if err != nil {
		return false, fmt.Errorf("build template: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return false, fmt.Errorf("build template: %w", err)
	}
	_, err = migrations.Apply(ctx, pool, slog.New(slog.DiscardHandler))
	// Closed before publishing: nothing may stay connected to a template that is to be cloned.
	pool.Close()
	if err != nil {
		return false, fmt.Errorf("build template: %w", err)
	}
	err = retryInUse(ctx, func() error {
		_, err := conn.Exec(ctx, "ALTER DATABASE "+tpl+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")
		return err
	})
	if err != nil {
		return false, fmt.Errorf("build template: publish: %w", err)
	}
	return true, nil
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (h *harness) templateReady(ctx context.Context, q querier) (bool, error) {
	var ready bool
	err := q.QueryRow(ctx, "SELECT datistemplate AND NOT datallowconn FROM pg_database WHERE datname = $1", h.template).Scan(&ready)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look for template %s: %w", h.template, err)
	}
	return ready, nil
}

func (h *harness) createDatabase(ctx context.Context) (string, error) {
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	name := fmt.Sprintf("t_%08x_%s", h.ownerID, hex.EncodeToString(suffix))
	err := retryInUse(ctx, func() error {
		_, err := h.admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" "+h.clone)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("create test database from %s: %w", h.template, err)
	}
	return name, nil
}

func (h *harness) dropDatabase(ctx context.Context, name string) error {
	if _, err := h.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop test database %s: %w", name, err)
	}
	return nil
}

// retryInUse runs f again while PostgreSQL says a database it needs to itself is "being accessed
// by other users" (55006): a session that has just disconnected from a template, or from a
// database being renamed, takes a moment to exit.
func retryInUse(ctx context.Context, f func() error) error {
	delay := 20 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := f()
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != "55006" || attempt == 10 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}

func (h *harness) urlFor(dbname string) string {
	u := *h.server
	u.Path = "/" + dbname
	return u.String()
}

// close releases what setup acquired: connections, and the private cluster with its directory.
func (h *harness) close(ctx context.Context) error {
	if h.admin != nil {
		h.admin.Close()
	}
	if h.owner != nil {
		_ = h.owner.Close(ctx)
	}
	if h.cluster == nil {
		return nil
	}
	if err := h.cluster.Stop(ctx); err != nil {
		return fmt.Errorf("stop private PostgreSQL: %w", err)
	}
	if err := os.RemoveAll(h.cluster.Dir()); err != nil {
		return fmt.Errorf("remove private PostgreSQL: %w", err)
	}
	return nil
}
