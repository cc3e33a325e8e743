package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// Tunnel is a Cloudflare Tunnel served by one or more agents.
type Tunnel struct {
	ID                 int64     `db:"id" json:"id"`
	Name               string    `db:"name" json:"name"`
	CloudflareTunnelID string    `db:"cloudflare_tunnel_id" json:"cloudflare_tunnel_id"`
	ConfigVersion      int64     `db:"config_version" json:"config_version"`
	CreatedAt          time.Time `db:"created_at" json:"created_at"`
}

// CreateTunnel inserts a tunnel.
func (s *Store) CreateTunnel(ctx context.Context, actor string, t Tunnel) (Tunnel, error) {
	var out Tunnel
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `INSERT INTO tunnels (name, cloudflare_tunnel_id) VALUES ($1, $2)
			RETURNING id, name, cloudflare_tunnel_id::text, config_version, created_at`, t.Name, t.CloudflareTunnelID)
		var err error
		out, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Tunnel])
		if c := uniqueViolation(err); c != "" {
			return &ConflictError{Code: "tunnel_exists", Message: tunnelExists}
		}
		if err != nil {
			return fmt.Errorf("insert tunnel: %w", err)
		}
		return audit(ctx, tx, actor, "tunnel.create", "tunnel", out.ID, map[string]any{"name": t.Name})
	})
	return out, err
}

// ListTunnels returns all tunnels by id after the cursor.
func (s *Store) ListTunnels(ctx context.Context, after int64, limit int) ([]Tunnel, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id, name, cloudflare_tunnel_id::text, config_version, created_at
		FROM tunnels WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
	ts, err := pgx.CollectRows(rows, pgx.RowToStructByName[Tunnel])
	if err != nil {
		return nil, fmt.Errorf("list tunnels: %w", err)
	}
	return ts, nil
}

// GetTunnel returns one tunnel.
func (s *Store) GetTunnel(ctx context.Context, id int64) (Tunnel, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id, name, cloudflare_tunnel_id::text, config_version, created_at
		FROM tunnels WHERE id = $1`, id)
	t, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Tunnel])
	if errors.Is(err, pgx.ErrNoRows) {
		return Tunnel{}, ErrNotFound
	}
	if err != nil {
		return Tunnel{}, fmt.Errorf("get tunnel %d: %w", id, err)
	}
	return t, nil
}

// TunnelPatch is a partial update of a tunnel.
type TunnelPatch struct {
	Name               Change[string]
	CloudflareTunnelID Change[string]
}

// UpdateTunnel renames a tunnel or changes its Cloudflare tunnel id. A new id changes the CNAME
// target of every domain routed through the tunnel, so their records are provisioned again. The
// tunnel's rules do not change: its agents get no new version.
func (s *Store) UpdateTunnel(ctx context.Context, actor string, id int64, p TunnelPatch) (Tunnel, error) {
	var out Tunnel
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var provision []int64
		if p.CloudflareTunnelID.Set {
			// Domains before the tunnel row: the order every routing change locks them in.
			rows, _ := tx.Query(ctx, `SELECT d.id FROM custom_domains d
				JOIN customers c ON c.id = d.customer_id
				JOIN tenant_deployments td ON td.id = d.tenant_deployment_id
				JOIN tunnels t ON t.id = td.tunnel_id
				WHERE t.id = $1 AND t.cloudflare_tunnel_id <> $2::uuid AND d.deleting_at IS NULL
				  AND `+ownershipProven+`
				ORDER BY d.id`, id, p.CloudflareTunnelID.Value)
			var err error
			if provision, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
				return fmt.Errorf("list domains of tunnel %d: %w", id, err)
			}
			if err := s.reprovision(ctx, tx, provision); err != nil {
				return err
			}
		}
		rows, _ := tx.Query(ctx, `SELECT id, name, cloudflare_tunnel_id::text, config_version, created_at
			FROM tunnels WHERE id = $1 FOR UPDATE`, id)
		old, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Tunnel])
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("lock tunnel %d: %w", id, err)
		}
		rows, _ = tx.Query(ctx, `UPDATE tunnels SET name = $2, cloudflare_tunnel_id = $3 WHERE id = $1
			RETURNING id, name, cloudflare_tunnel_id::text, config_version, created_at`,
			id, p.Name.To(old.Name), p.CloudflareTunnelID.To(old.CloudflareTunnelID))
		out, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Tunnel])
		if uniqueViolation(err) != "" {
			return &ConflictError{Code: "tunnel_exists", Message: tunnelExists}
		}
		if err != nil {
			return fmt.Errorf("update tunnel %d: %w", id, err)
		}
		ch := changes{}
		note(ch, "name", old.Name, out.Name)
		note(ch, "cloudflare_tunnel_id", old.CloudflareTunnelID, out.CloudflareTunnelID)
		if len(ch) == 0 {
			return nil
		}
		detail := map[string]any{"changes": ch}
		if s.outbox != nil && len(provision) > 0 {
			detail["provision"] = provision
		}
		return audit(ctx, tx, actor, "tunnel.update", "tunnel", id, detail)
	})
	return out, err
}

// DeleteTunnel removes a tunnel nothing uses: no tenant deployment and no enrolled agent (revoked
// agents go with it).
func (s *Store) DeleteTunnel(ctx context.Context, actor string, id int64) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var name, uuid string
		err := tx.QueryRow(ctx, `SELECT name, cloudflare_tunnel_id::text FROM tunnels WHERE id = $1 FOR UPDATE`, id).Scan(&name, &uuid)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("lock tunnel %d: %w", id, err)
		}
		deployments, err := usedBy(ctx, tx, i18n.T("despliegue(s)", "tenant deployment(s)"),
			i18n.T("mueva los despliegues a otro túnel (o ponga su tunnel_id a null)", "move the tenant deployments to another tunnel (or set their tunnel_id to null)"),
			`SELECT name || ' #' || id, count(*) OVER () FROM tenant_deployments WHERE tunnel_id = $1 ORDER BY id`, id)
		if err != nil {
			return err
		}
		agents, err := usedBy(ctx, tx, i18n.T("agente(s) inscrito(s)", "enrolled agent(s)"), i18n.T("revoque los agentes", "revoke the agents"),
			`SELECT name || ' #' || id, count(*) OVER () FROM agents WHERE tunnel_id = $1 AND revoked_at IS NULL ORDER BY id`, id)
		if err != nil {
			return err
		}
		if err := inUse("tunnel_in_use", i18n.F("el túnel %d (%s)", "tunnel %d (%s)", id, name), deployments, agents); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM tunnels WHERE id = $1`, id); err != nil {
			return fmt.Errorf("delete tunnel %d: %w", id, err)
		}
		return audit(ctx, tx, actor, "tunnel.delete", "tunnel", id, map[string]any{"name": name, "cloudflare_tunnel_id": uuid})
	})
}

var tunnelExists = i18n.T("ya existe un túnel con este nombre o id de túnel de Cloudflare", "a tunnel with this name or Cloudflare tunnel id already exists")
