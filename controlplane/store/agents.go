package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Agent is an edge agent enrolled for one tunnel; its token is stored only as a SHA-256 hash.
type Agent struct {
	ID             int64           `db:"id" json:"id"`
	TunnelID       int64           `db:"tunnel_id" json:"tunnel_id"`
	TunnelName     string          `db:"tunnel_name" json:"tunnel"`
	Name           string          `db:"name" json:"name"`
	LastSeenAt     *time.Time      `db:"last_seen_at" json:"last_seen_at"`
	AppliedVersion *int64          `db:"applied_version" json:"applied_version"`
	AppliedSHA256  *string         `db:"applied_sha256" json:"applied_sha256"`
	Status         json.RawMessage `db:"status" json:"status,omitempty"`
	LastError      *string         `db:"last_error" json:"last_error"`
	CreatedAt      time.Time       `db:"created_at" json:"created_at"`
	RevokedAt      *time.Time      `db:"revoked_at" json:"revoked_at"`
	ConfigVersion  int64           `db:"config_version" json:"desired_version"`
}

const agentSelect = `SELECT a.id, a.tunnel_id, t.name AS tunnel_name, a.name, a.last_seen_at, a.applied_version,
	a.applied_sha256, a.status, a.last_error, a.created_at, a.revoked_at, t.config_version
FROM agents a JOIN tunnels t ON t.id = a.tunnel_id`

// CreateAgent enrols an agent for a tunnel with the hash of its token.
func (s *Store) CreateAgent(ctx context.Context, actor string, tunnelID int64, name string, tokenHash []byte) (Agent, error) {
	var out Agent
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var id int64
		err := tx.QueryRow(ctx, `INSERT INTO agents (tunnel_id, name, token_hash) VALUES ($1, $2, $3) RETURNING id`,
			tunnelID, name, tokenHash).Scan(&id)
		switch {
		case foreignKeyViolation(err) != "":
			return &ConflictError{Code: "tunnel_not_found", Message: fmt.Sprintf("tunnel %d does not exist", tunnelID)}
		case uniqueViolation(err) != "":
			return &ConflictError{Code: "agent_exists", Message: fmt.Sprintf("an agent named %q already exists", name)}
		case err != nil:
			return fmt.Errorf("insert agent: %w", err)
		}
		if err := audit(ctx, tx, actor, "agent.create", "agent", id, map[string]any{"tunnel_id": tunnelID, "name": name}); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, agentSelect+` WHERE a.id = $1`, id)
		out, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Agent])
		return err
	})
	return out, err
}

// ListAgents lists agents with what they last reported.
func (s *Store) ListAgents(ctx context.Context, after int64, limit int) ([]Agent, error) {
	rows, _ := s.pool.Query(ctx, agentSelect+` WHERE a.id > $1 ORDER BY a.id LIMIT $2`, after, limit)
	as, err := pgx.CollectRows(rows, pgx.RowToStructByName[Agent])
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	return as, nil
}

// AgentByToken finds a live agent by the hash of its token (the gateway's authentication).
func (s *Store) AgentByToken(ctx context.Context, tokenHash []byte) (Agent, error) {
	rows, _ := s.pool.Query(ctx, agentSelect+` WHERE a.token_hash = $1 AND a.revoked_at IS NULL`, tokenHash)
	a, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Agent])
	if errors.Is(err, pgx.ErrNoRows) {
		return Agent{}, ErrNotFound
	}
	if err != nil {
		return Agent{}, fmt.Errorf("look up agent: %w", err)
	}
	return a, nil
}
