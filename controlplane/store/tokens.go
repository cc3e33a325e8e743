package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// APIToken is a bearer token's row; the secret itself is never stored, only its SHA-256.
type APIToken struct {
	ID         int64      `db:"id" json:"id"`
	Role       string     `db:"role" json:"role"`
	CustomerID *int64     `db:"customer_id" json:"customer_id"`
	Name       string     `db:"name" json:"name"`
	CreatedAt  time.Time  `db:"created_at" json:"created_at"`
	LastUsedAt *time.Time `db:"last_used_at" json:"last_used_at"`
	RevokedAt  *time.Time `db:"revoked_at" json:"revoked_at"`
}

const tokenColumns = `id, role, customer_id, name, created_at, last_used_at, revoked_at`

// CreateAPIToken stores the hash of a new token.
func (s *Store) CreateAPIToken(ctx context.Context, actor string, hash []byte, role string, customerID *int64, name string) (APIToken, error) {
	var out APIToken
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `INSERT INTO api_tokens (token_hash, role, customer_id, name)
			VALUES ($1, $2, $3, $4) RETURNING `+tokenColumns, hash, role, customerID, name)
		var err error
		out, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[APIToken])
		if foreignKeyViolation(err) != "" {
			return &MissingError{Code: "customer_not_found", Message: i18n.F("el cliente %d no existe", "customer %d does not exist", *customerID)}
		}
		if err != nil {
			return fmt.Errorf("insert api token: %w", err)
		}
		return audit(ctx, tx, actor, "token.create", "api_token", out.ID, map[string]any{"role": role, "customer_id": customerID})
	})
	return out, err
}

// LookupAPIToken finds a live (not revoked) token by hash.
func (s *Store) LookupAPIToken(ctx context.Context, hash []byte) (APIToken, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+tokenColumns+` FROM api_tokens
		WHERE token_hash = $1 AND revoked_at IS NULL`, hash)
	t, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[APIToken])
	if errors.Is(err, pgx.ErrNoRows) {
		return APIToken{}, ErrNotFound
	}
	if err != nil {
		return APIToken{}, fmt.Errorf("look up api token: %w", err)
	}
	return t, nil
}

// APITokenChannel is the LISTEN/NOTIFY channel of API tokens: a trigger (migration 00008) sends
// a token's id whenever a row is inserted, deleted, or has its hash, role, customer or revocation
// changed — by this code, by `token create`, by a cascade or by hand in psql — so every replica can
// update its in-memory set of valid tokens at once. Payloads starting with "sync:" are barriers a
// replica sends itself (SyncAPITokenChannel).
const APITokenChannel = "sajet_api_token"

// LiveAPIToken is what authentication needs of a valid token, hash included.
type LiveAPIToken struct {
	ID         int64  `db:"id"`
	Hash       []byte `db:"token_hash"`
	Role       string `db:"role"`
	CustomerID *int64 `db:"customer_id"`
}

// LiveAPITokens returns every token that is not revoked.
func (s *Store) LiveAPITokens(ctx context.Context) ([]LiveAPIToken, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id, token_hash, role, customer_id FROM api_tokens WHERE revoked_at IS NULL`)
	ts, err := pgx.CollectRows(rows, pgx.RowToStructByName[LiveAPIToken])
	if err != nil {
		return nil, fmt.Errorf("load api tokens: %w", err)
	}
	return ts, nil
}

// LiveAPITokenByID returns token id unless it is revoked or gone (ErrNotFound).
func (s *Store) LiveAPITokenByID(ctx context.Context, id int64) (LiveAPIToken, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id, token_hash, role, customer_id FROM api_tokens WHERE id = $1 AND revoked_at IS NULL`, id)
	t, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[LiveAPIToken])
	if errors.Is(err, pgx.ErrNoRows) {
		return LiveAPIToken{}, ErrNotFound
	}
	if err != nil {
		return LiveAPIToken{}, fmt.Errorf("load api token %d: %w", id, err)
	}
	return t, nil
}

// SyncAPITokenChannel sends "sync:"+payload on APITokenChannel. PostgreSQL delivers the
// notifications of different transactions in commit order, so once a listener receives it, it has
// received every token change committed before this call.
func (s *Store) SyncAPITokenChannel(ctx context.Context, payload string) error {
	if _, err := s.pool.Exec(ctx, `SELECT pg_notify($1, 'sync:' || $2)`, APITokenChannel, payload); err != nil {
		return fmt.Errorf("notify %s: %w", APITokenChannel, err)
	}
	return nil
}

// TouchMinInterval is how often a token's last_used_at is written at most.
const TouchMinInterval = time.Minute

// TouchAPIToken records that a token authenticated a request. The write is guarded so that
// replicas authenticating the same token write it at most once a minute between them; it
// reports whether the row was written.
func (s *Store) TouchAPIToken(ctx context.Context, id int64) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE api_tokens SET last_used_at = now()
		WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - $2::interval)`, id, TouchMinInterval)
	if err != nil {
		return false, fmt.Errorf("touch api token %d: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// ListAPITokens lists tokens (never their secrets).
func (s *Store) ListAPITokens(ctx context.Context, after int64, limit int) ([]APIToken, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
	ts, err := pgx.CollectRows(rows, pgx.RowToStructByName[APIToken])
	if err != nil {
		return nil, fmt.Errorf("list api tokens: %w", err)
	}
	return ts, nil
}

// RevokeAPIToken marks a token revoked; revoking twice is not an error.
func (s *Store) RevokeAPIToken(ctx context.Context, actor string, id int64) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1`, id)
		if err != nil {
			return fmt.Errorf("revoke api token %d: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		return audit(ctx, tx, actor, "token.revoke", "api_token", id, nil)
	})
}

// RevokeAPITokensNamed revokes every live token with a label, e.g. the previous `dev` run's token.
func (s *Store) RevokeAPITokensNamed(ctx context.Context, actor, name string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `UPDATE api_tokens SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL RETURNING id`, name)
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("revoke tokens named %q: %w", name, err)
		}
		for _, id := range ids {
			if err := audit(ctx, tx, actor, "token.revoke", "api_token", id, nil); err != nil {
				return err
			}
		}
		return nil
	})
}
