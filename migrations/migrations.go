// Package migrations holds the control plane's schema as goose SQL files embedded in the binary, and
// applies them together with River's own tables.
//
// Apply is idempotent and safe to run from several replicas at once: the whole run holds a
// PostgreSQL advisory lock, so a second caller waits and then finds nothing to do.
package migrations

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

//go:embed *.sql
var files embed.FS

// advisoryLockKey is an arbitrary constant shared by every replica ("sajet" in ASCII).
const advisoryLockKey = 0x73616a6574

// Result says what a run changed, for the migrate command's output.
type Result struct {
	Applied      []string // goose migration files applied by this run
	RiverApplied []int    // River migration versions applied by this run
}

// Apply brings the database at pool up to the newest schema: ours (goose) and River's.
func Apply(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) (Result, error) {
	var res Result
	// The lock is held on a connection of its own, outside the pool: waiting callers must not
	// occupy pool connections the lock holder needs to migrate.
	conn, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig.Copy())
	if err != nil {
		return res, fmt.Errorf("connect for migration lock: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", advisoryLockKey); err != nil {
		return res, fmt.Errorf("take migration lock: %w", err)
	}
	defer func() {
		// A fresh context: the lock must be released even when ctx is already cancelled.
		_, _ = conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", advisoryLockKey)
	}()

	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	applied, err := applyGoose(ctx, db, logger)
	if err != nil {
		return res, err
	}
	res.Applied = applied

	migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Logger: logger})
	if err != nil {
		return res, fmt.Errorf("river migrator: %w", err)
	}
	rr, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return res, fmt.Errorf("river migrations: %w", err)
	}
	for _, v := range rr.Versions {
		res.RiverApplied = append(res.RiverApplied, v.Version)
	}
	return res, nil
}

func applyGoose(ctx context.Context, db *sql.DB, logger *slog.Logger) ([]string, error) {
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	if logger != nil {
		opts = append(opts, goose.WithSlog(logger))
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, files, opts...)
	if err != nil {
		return nil, fmt.Errorf("goose provider: %w", err)
	}
	results, err := provider.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("apply migrations: %w", err)
	}
	var names []string
	for _, r := range results {
		names = append(names, r.Source.Path)
	}
	return names, nil
}

// Fingerprint identifies the schema the embedded files produce, so test harnesses can reuse a
// template database built from the same files and rebuild it when they change.
func Fingerprint() string {
	h := sha256.New()
	entries, _ := fs.ReadDir(files, ".")
	for _, e := range entries {
		b, _ := fs.ReadFile(files, e.Name())
		fmt.Fprintf(h, "%s\x00%d\x00", e.Name(), len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}
