package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// MaxTunnelAgents bounds TunnelAgents: a tunnel has a handful of hosts; a diagnostics report
// about one domain must not grow with a runaway enrolment.
const MaxTunnelAgents = 100

// TunnelAgents returns the agents of a tunnel that are not revoked (at most MaxTunnelAgents, by
// id), with what they last reported: the agents whose configuration carries a domain of it.
func (s *Store) TunnelAgents(ctx context.Context, tunnelID int64) ([]Agent, error) {
	rows, _ := s.pool.Query(ctx, agentSelect+` WHERE a.tunnel_id = $1 AND a.revoked_at IS NULL ORDER BY a.id LIMIT $2`,
		tunnelID, MaxTunnelAgents)
	as, err := pgx.CollectRows(rows, pgx.RowToStructByName[Agent])
	if err != nil {
		return nil, fmt.Errorf("agents of tunnel %d: %w", tunnelID, err)
	}
	return as, nil
}
