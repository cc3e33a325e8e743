package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Web UI sessions and sign-in codes (migration 00010; docs/SECURITY.md, "The web UI"). A session
// acts as the API token it was opened with: it ends when the token is revoked or deleted, when it
// expires, or at logout. Only SHA-256 hashes of session secrets and codes are stored.

// UISession is a live session with the principal of its token.
type UISession struct {
	ID         int64      `db:"id"`
	TokenID    int64      `db:"token_id"`
	Role       string     `db:"role"`
	CustomerID *int64     `db:"customer_id"`
	CreatedAt  time.Time  `db:"created_at"`
	LastSeenAt time.Time  `db:"last_seen_at"`
	ExpiresAt  time.Time  `db:"expires_at"`
	Revoked    *time.Time `db:"revoked_at"`
}

// SessionLimits bound a session's life: it ends Idle after its last use, and at the latest
// Absolute after it was opened.
type SessionLimits struct {
	Idle, Absolute time.Duration
}

// CreateUISession opens a session for token tokenID (which must be live) and returns it.
func (s *Store) CreateUISession(ctx context.Context, secretHash []byte, tokenID int64, lim SessionLimits) (UISession, error) {
	rows, _ := s.pool.Query(ctx, `WITH t AS (SELECT id, role, customer_id FROM api_tokens WHERE id = $2 AND revoked_at IS NULL),
		s AS (INSERT INTO ui_sessions (secret_hash, token_id, expires_at)
			SELECT $1, t.id, now() + least($3::interval, $4::interval) FROM t
			RETURNING id, token_id, created_at, last_seen_at, expires_at)
		SELECT s.id, s.token_id, t.role, t.customer_id, s.created_at, s.last_seen_at, s.expires_at, NULL::timestamptz AS revoked_at
		FROM s JOIN t ON t.id = s.token_id`, secretHash, tokenID, lim.Idle, lim.Absolute)
	out, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[UISession])
	if errors.Is(err, pgx.ErrNoRows) {
		return UISession{}, ErrNotFound
	}
	if err != nil {
		return UISession{}, fmt.Errorf("create ui session: %w", err)
	}
	return out, nil
}

// LookupUISession finds a live session by the hash of its secret: not expired, its token not
// revoked.
func (s *Store) LookupUISession(ctx context.Context, secretHash []byte) (UISession, error) {
	rows, _ := s.pool.Query(ctx, `SELECT s.id, s.token_id, t.role, t.customer_id, s.created_at, s.last_seen_at, s.expires_at, t.revoked_at
		FROM ui_sessions s JOIN api_tokens t ON t.id = s.token_id
		WHERE s.secret_hash = $1 AND s.expires_at > now() AND t.revoked_at IS NULL`, secretHash)
	out, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[UISession])
	if errors.Is(err, pgx.ErrNoRows) {
		return UISession{}, ErrNotFound
	}
	if err != nil {
		return UISession{}, fmt.Errorf("look up ui session: %w", err)
	}
	return out, nil
}

// TouchUISession records a use of session id and slides its expiry: Idle from now, never past
// Absolute from its start.
func (s *Store) TouchUISession(ctx context.Context, id int64, lim SessionLimits) error {
	_, err := s.pool.Exec(ctx, `UPDATE ui_sessions SET last_seen_at = now(),
			expires_at = least(now() + $2::interval, created_at + $3::interval)
		WHERE id = $1 AND expires_at > now()`, id, lim.Idle, lim.Absolute)
	if err != nil {
		return fmt.Errorf("touch ui session %d: %w", id, err)
	}
	return nil
}

// DeleteUISession ends the session with this secret hash (logout); ending one that is already
// gone is not an error.
func (s *Store) DeleteUISession(ctx context.Context, secretHash []byte) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM ui_sessions WHERE secret_hash = $1`, secretHash); err != nil {
		return fmt.Errorf("delete ui session: %w", err)
	}
	return nil
}

// PruneUISessions removes expired sessions and sign-in codes.
func (s *Store) PruneUISessions(ctx context.Context) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM ui_sessions WHERE expires_at < now()`); err != nil {
		return fmt.Errorf("prune ui sessions: %w", err)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM signin_codes WHERE expires_at < now()`); err != nil {
		return fmt.Errorf("prune sign-in codes: %w", err)
	}
	return nil
}

// CreateSigninCode stores a single-use sign-in code for token tokenID, valid for ttl.
func (s *Store) CreateSigninCode(ctx context.Context, codeHash []byte, tokenID int64, ttl time.Duration) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO signin_codes (code_hash, token_id, expires_at) VALUES ($1, $2, now() + $3::interval)`,
		codeHash, tokenID, ttl)
	if err != nil {
		return fmt.Errorf("create sign-in code: %w", err)
	}
	return nil
}

// ConsumeSigninCode uses up a sign-in code and returns its token's id: the row is deleted in the
// same statement that reads it, so a code opens at most one session even when two requests race.
// An unknown, used or expired code, or one whose token was revoked, is ErrNotFound.
func (s *Store) ConsumeSigninCode(ctx context.Context, codeHash []byte) (int64, error) {
	var tokenID int64
	err := s.pool.QueryRow(ctx, `WITH c AS (DELETE FROM signin_codes WHERE code_hash = $1 RETURNING token_id, expires_at)
		SELECT c.token_id FROM c JOIN api_tokens t ON t.id = c.token_id
		WHERE c.expires_at > now() AND t.revoked_at IS NULL`, codeHash).Scan(&tokenID)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("consume sign-in code: %w", err)
	}
	return tokenID, nil
}
