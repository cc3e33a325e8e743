package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// TunnelChannel is the LISTEN/NOTIFY channel on which a tunnel's id is sent when its desired
// ingress changes. The payload is only the id: receivers re-read the database.
const TunnelChannel = "sajet_tunnel"

// IngressRule is one hostname the tunnel routes to a tenant's backend.
type IngressRule struct {
	DomainID int64
	Hostname string
	Service  string
}

// DesiredIngress is a tunnel's complete desired rule set and the version it carries.
type DesiredIngress struct {
	TunnelID int64
	Version  int64
	Rules    []IngressRule // both hostnames of every routed domain, sorted by hostname
}

// inIngress is the condition for a domain's rules to be in its tunnel's desired set: alive, on a
// tenant deployment with a tunnel and a backend, and, when the plan requires it, proven by TXT.
const inIngress = `d.deleting_at IS NULL AND td.tunnel_id IS NOT NULL AND td.backend_url IS NOT NULL
	AND (NOT c.require_txt OR d.txt_verified_at IS NOT NULL)`

// GetDesiredIngress computes a tunnel's desired ingress from the database.
func (s *Store) GetDesiredIngress(ctx context.Context, tunnelID int64) (DesiredIngress, error) {
	m, err := s.GetDesiredIngressMany(ctx, []int64{tunnelID})
	if err != nil {
		return DesiredIngress{}, err
	}
	d, ok := m[tunnelID]
	if !ok {
		return DesiredIngress{}, fmt.Errorf("desired ingress of tunnel %d: %w", tunnelID, ErrNotFound)
	}
	return d, nil
}

// GetDesiredIngressMany computes the desired ingress of several tunnels in one snapshot (the
// gateway batches the tunnels whose agents need a push: a change to every tunnel costs a few
// queries, not one transaction per tunnel). Tunnels that do not exist are absent from the map.
func (s *Store) GetDesiredIngressMany(ctx context.Context, tunnelIDs []int64) (map[int64]DesiredIngress, error) {
	out := make(map[int64]DesiredIngress, len(tunnelIDs))
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT id, config_version FROM tunnels WHERE id = ANY($1)`, tunnelIDs)
		var id, version int64
		if _, err := pgx.ForEachRow(rows, []any{&id, &version}, func() error {
			out[id] = DesiredIngress{TunnelID: id, Version: version, Rules: []IngressRule{}}
			return nil
		}); err != nil {
			return fmt.Errorf("read tunnels: %w", err)
		}
		rows, _ = tx.Query(ctx, `SELECT td.tunnel_id, d.id, h.hostname, td.backend_url
			FROM custom_domains d
			JOIN customers c ON c.id = d.customer_id
			JOIN tenant_deployments td ON td.id = d.tenant_deployment_id
			CROSS JOIN LATERAL (VALUES (d.sajet_full_domain::text), (d.external_domain::text)) AS h(hostname)
			WHERE td.tunnel_id = ANY($1) AND `+inIngress+`
			ORDER BY td.tunnel_id, h.hostname COLLATE "C"`, tunnelIDs)
		var tunnel int64
		var rule IngressRule
		_, err := pgx.ForEachRow(rows, []any{&tunnel, &rule.DomainID, &rule.Hostname, &rule.Service}, func() error {
			d := out[tunnel]
			d.Rules = append(d.Rules, rule)
			out[tunnel] = d
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("desired ingress of %d tunnels: %w", len(tunnelIDs), err)
	}
	return out, nil
}

// bumpTunnel raises the config version of the domain's tunnel and notifies every replica at
// commit. It returns tunnel 0 when the domain is not routed through a tunnel.
func bumpTunnel(ctx context.Context, tx pgx.Tx, domainID int64) (tunnelID, version int64, err error) {
	err = tx.QueryRow(ctx, `UPDATE tunnels SET config_version = config_version + 1
		WHERE id = (SELECT td.tunnel_id FROM custom_domains d JOIN tenant_deployments td ON td.id = d.tenant_deployment_id
		            WHERE d.id = $1 AND td.tunnel_id IS NOT NULL AND td.backend_url IS NOT NULL)
		RETURNING id, config_version`, domainID).Scan(&tunnelID, &version)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("bump tunnel of domain %d: %w", domainID, err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2::bigint::text)`, TunnelChannel, tunnelID); err != nil {
		return 0, 0, fmt.Errorf("notify tunnel %d: %w", tunnelID, err)
	}
	return tunnelID, version, nil
}

// addToIngress puts a domain that now qualifies into its tunnel's desired set (new version) and
// records the first version containing it.
func addToIngress(ctx context.Context, tx pgx.Tx, domainID int64) error {
	var qualifies bool
	err := tx.QueryRow(ctx, `SELECT `+inIngress+` AND d.ingress_version IS NULL
		FROM custom_domains d JOIN customers c ON c.id = d.customer_id
		LEFT JOIN tenant_deployments td ON td.id = d.tenant_deployment_id WHERE d.id = $1`, domainID).Scan(&qualifies)
	if err != nil || !qualifies {
		return err
	}
	_, version, err := bumpTunnel(ctx, tx, domainID)
	if err != nil || version == 0 {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE custom_domains SET ingress_version = $2 WHERE id = $1`, domainID, version)
	return err
}

// removeFromIngress takes a deleted domain's rules out of its tunnel (new version) and reports
// whether an agent may still run a config that contains them, in which case the row must stay
// until the agents have applied the new version.
func removeFromIngress(ctx context.Context, tx pgx.Tx, domainID int64) (referenced bool, err error) {
	_, version, err := bumpTunnel(ctx, tx, domainID)
	if err != nil || version == 0 {
		return false, err
	}
	if _, err := tx.Exec(ctx, `UPDATE custom_domains SET ingress_removal_version = $2 WHERE id = $1`, domainID, version); err != nil {
		return false, fmt.Errorf("record ingress removal of domain %d: %w", domainID, err)
	}
	return referencedByAgents(ctx, tx, domainID)
}

// referencedByAgents: does an enrolled agent of the domain's tunnel run a config version that
// contains the domain (applied ≥ ingress_version and below the removal version)?
func referencedByAgents(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, domainID int64) (bool, error) {
	var referenced bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM custom_domains d
			JOIN tenant_deployments td ON td.id = d.tenant_deployment_id
			JOIN agents a ON a.tunnel_id = td.tunnel_id
			WHERE d.id = $1 AND a.revoked_at IS NULL AND d.ingress_version IS NOT NULL
			  AND a.applied_version >= d.ingress_version
			  AND a.applied_version < coalesce(d.ingress_removal_version, 9223372036854775807))`, domainID).Scan(&referenced)
	if err != nil {
		return false, fmt.Errorf("check agents referencing domain %d: %w", domainID, err)
	}
	return referenced, nil
}
