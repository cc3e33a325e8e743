// Package store is the control plane's only door to PostgreSQL: every query and transaction lives
// here, so the rest of the control plane speaks in domain terms and tests run against a real
// database through the same code.
//
// The database is authoritative for everything the control plane decides. Invariants that must hold
// under concurrency (quotas, one live registration per hostname, unique subdomains, which rules a
// tunnel gets) are enforced inside a single transaction or by a constraint, never by a read
// followed by an unguarded write. docs/LIFECYCLE.md lists every transition of a domain and which
// function here (or in package domains) enforces each rule.
package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// ErrNotFound is returned when the row asked for does not exist (or is not visible to the caller).
var ErrNotFound = errors.New("not found")

// Store runs queries on a pgx pool.
type Store struct {
	pool       *pgxpool.Pool
	outbox     Outbox           // nil: provisioning disabled
	automation AutomationOutbox // nil: events and notifications are only recorded
}

// New returns a Store on pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Pool exposes the pool for components that need their own connections (LISTEN, River).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Ping checks that the database answers; used by /readyz.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// inTx runs fn in a transaction, committing when it returns nil.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// uniqueViolation returns the constraint name when err is a unique violation, else "".
func uniqueViolation(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return pgErr.ConstraintName
	}
	return ""
}

// foreignKeyViolation returns the constraint name when err is a foreign key violation, else "".
func foreignKeyViolation(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" {
		return pgErr.ConstraintName
	}
	return ""
}

// ConflictError reports that a write collided with existing data (HTTP 409). Code is a stable
// machine code the API passes through.
type ConflictError struct {
	Code    string
	Message i18n.Text
}

func (e *ConflictError) Error() string { return e.Message.EN }

// MissingError reports that a row a write refers to does not exist (HTTP 404): the customer of a
// registration, the tunnel of a deployment. Code is a stable machine code (customer_not_found…).
// It is not ErrNotFound, which means the row asked for itself does not exist.
type MissingError struct {
	Code    string
	Message i18n.Text
}

func (e *MissingError) Error() string { return e.Message.EN }

func audit(ctx context.Context, tx pgx.Tx, actor, action, entity string, entityID int64, detail any) error {
	if detail == nil {
		detail = map[string]any{}
	}
	_, err := tx.Exec(ctx,
		`INSERT INTO audit_log (actor, action, entity, entity_id, detail) VALUES ($1, $2, $3, $4, $5)`,
		actor, action, entity, entityID, detail)
	if err != nil {
		return fmt.Errorf("write audit log: %w", err)
	}
	return nil
}

// querier is what both a pool and a transaction offer.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}
