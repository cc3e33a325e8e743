package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// TenantDeployment is a customer's Odoo tenant, reached through a tunnel at backend_url.
type TenantDeployment struct {
	ID         int64     `db:"id" json:"id"`
	CustomerID int64     `db:"customer_id" json:"customer_id"`
	Name       string    `db:"name" json:"name"`
	TunnelID   *int64    `db:"tunnel_id" json:"tunnel_id"`
	BackendURL *string   `db:"backend_url" json:"backend_url"`
	CreatedAt  time.Time `db:"created_at" json:"created_at"`
}

// CreateTenantDeployment inserts a tenant deployment.
func (s *Store) CreateTenantDeployment(ctx context.Context, actor string, d TenantDeployment) (TenantDeployment, error) {
	var out TenantDeployment
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `INSERT INTO tenant_deployments (customer_id, name, tunnel_id, backend_url)
			VALUES ($1, $2, $3, $4) RETURNING id, customer_id, name, tunnel_id, backend_url, created_at`,
			d.CustomerID, d.Name, d.TunnelID, d.BackendURL)
		var err error
		out, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[TenantDeployment])
		switch foreignKeyViolation(err) {
		case "":
		case "tenant_deployments_tunnel_id_fkey":
			return &MissingError{Code: "tunnel_not_found", Message: i18n.F("el túnel %d no existe", "tunnel %d does not exist", *d.TunnelID)}
		default:
			return &MissingError{Code: "customer_not_found", Message: i18n.F("el cliente %d no existe", "customer %d does not exist", d.CustomerID)}
		}
		if err != nil {
			return fmt.Errorf("insert tenant deployment: %w", err)
		}
		return audit(ctx, tx, actor, "tenant_deployment.create", "tenant_deployment", out.ID, map[string]any{"name": d.Name})
	})
	return out, err
}

// GetTenantDeployment returns one tenant deployment.
func (s *Store) GetTenantDeployment(ctx context.Context, id int64) (TenantDeployment, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id, customer_id, name, tunnel_id, backend_url, created_at
		FROM tenant_deployments WHERE id = $1`, id)
	d, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[TenantDeployment])
	if errors.Is(err, pgx.ErrNoRows) {
		return TenantDeployment{}, ErrNotFound
	}
	if err != nil {
		return TenantDeployment{}, fmt.Errorf("get tenant deployment %d: %w", id, err)
	}
	return d, nil
}

// ListTenantDeployments returns tenant deployments (of one customer when customerID > 0).
func (s *Store) ListTenantDeployments(ctx context.Context, customerID, after int64, limit int) ([]TenantDeployment, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id, customer_id, name, tunnel_id, backend_url, created_at
		FROM tenant_deployments WHERE ($1::bigint = 0 OR customer_id = $1) AND id > $2 ORDER BY id LIMIT $3`,
		customerID, after, limit)
	ds, err := pgx.CollectRows(rows, pgx.RowToStructByName[TenantDeployment])
	if err != nil {
		return nil, fmt.Errorf("list tenant deployments: %w", err)
	}
	return ds, nil
}

// DeploymentPatch is a partial update of a tenant deployment; TunnelID and BackendURL are
// nullable (nil takes the deployment's domains out of the tunnel).
type DeploymentPatch struct {
	Name       Change[string]
	TunnelID   Change[*int64]
	BackendURL Change[*string]
}

const deploymentColumns = `id, customer_id, name, tunnel_id, backend_url, created_at`

// UpdateTenantDeployment changes a tenant deployment. A change of its tunnel or backend re-routes
// its live domains in the same transaction (see applyRoutes): the old tunnel drops their rules,
// the new one gets them, both in new config versions announced at commit.
//
// Moving to another tunnel (or to none) is refused while domains of the deployment that were in
// the tunnel are still being deleted: their rows wait for that tunnel's agents to apply the
// removal, and the bookkeeping finds those agents through the deployment's tunnel.
func (s *Store) UpdateTenantDeployment(ctx context.Context, actor string, id int64, p DeploymentPatch) (TenantDeployment, error) {
	var out TenantDeployment
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT `+deploymentColumns+` FROM tenant_deployments WHERE id = $1 FOR UPDATE`, id)
		old, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[TenantDeployment])
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("lock tenant deployment %d: %w", id, err)
		}
		name, tunnel, backend := p.Name.To(old.Name), p.TunnelID.To(old.TunnelID), p.BackendURL.To(old.BackendURL)
		ch := changes{}
		note(ch, "name", old.Name, name)
		notePtr(ch, "tunnel_id", old.TunnelID, tunnel)
		notePtr(ch, "backend_url", old.BackendURL, backend)
		if len(ch) == 0 {
			out = old
			return nil
		}
		_, tunnelChanged := ch["tunnel_id"]
		if tunnelChanged && old.TunnelID != nil {
			removing, err := usedBy(ctx, tx, beingRemoved, i18n.Text{}, `SELECT external_domain, count(*) OVER ()
				FROM custom_domains WHERE tenant_deployment_id = $1 AND deleting_at IS NOT NULL AND ingress_version IS NOT NULL
				ORDER BY id`, id)
			if err != nil {
				return err
			}
			if removing.total > 0 {
				return &ConflictError{Code: "removal_in_progress", Message: i18n.F(
					"el despliegue %d aún no puede dejar el túnel %d: tiene %s, cuyas filas esperan a que los agentes de ese túnel "+
						"(y Cloudflare) dejen de enrutarlos; vuelva a intentarlo cuando hayan desaparecido (un agente que nunca responde se puede revocar)",
					"tenant deployment %d cannot leave tunnel %d yet: it has %s, whose rows wait until that tunnel's agents "+
						"(and Cloudflare) no longer route them; retry once they are gone (an agent that never answers can be revoked)",
					id, *old.TunnelID, removing.Text())}
			}
		}
		ids, err := lockDomains(ctx, tx, `d.tenant_deployment_id = $1`, id)
		if err != nil {
			return err
		}
		before, err := routes(ctx, tx, ids, true)
		if err != nil {
			return err
		}
		rows, _ = tx.Query(ctx, `UPDATE tenant_deployments SET name = $2, tunnel_id = $3, backend_url = $4 WHERE id = $1
			RETURNING `+deploymentColumns, id, name, tunnel, backend)
		out, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[TenantDeployment])
		if foreignKeyViolation(err) != "" {
			return &MissingError{Code: "tunnel_not_found", Message: i18n.F("el túnel %d no existe", "tunnel %d does not exist", *tunnel)}
		}
		if err != nil {
			return fmt.Errorf("update tenant deployment %d: %w", id, err)
		}
		after, err := routes(ctx, tx, ids, false)
		if err != nil {
			return err
		}
		r, err := s.applyRoutes(ctx, tx, before, after)
		if err != nil {
			return err
		}
		return audit(ctx, tx, actor, "tenant_deployment.update", "tenant_deployment", id, map[string]any{"changes": ch, "rerouted": r})
	})
	return out, err
}

// DeleteTenantDeployment removes a tenant deployment no domain uses (live or still being
// removed: the removal's bookkeeping goes through the deployment).
func (s *Store) DeleteTenantDeployment(ctx context.Context, actor string, id int64) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT `+deploymentColumns+` FROM tenant_deployments WHERE id = $1 FOR UPDATE`, id)
		old, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[TenantDeployment])
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("lock tenant deployment %d: %w", id, err)
		}
		live, err := usedBy(ctx, tx, i18n.T("dominio(s) vivo(s)", "live domain(s)"),
			i18n.T("elimine los dominios o muévalos a otro despliegue", "delete the domains or move them to another tenant deployment"),
			`SELECT external_domain, count(*) OVER () FROM custom_domains
			WHERE tenant_deployment_id = $1 AND deleting_at IS NULL ORDER BY id`, id)
		if err != nil {
			return err
		}
		removing, err := usedBy(ctx, tx, beingRemoved, removalFix,
			`SELECT external_domain, count(*) OVER () FROM custom_domains
			WHERE tenant_deployment_id = $1 AND deleting_at IS NOT NULL ORDER BY id`, id)
		if err != nil {
			return err
		}
		if err := inUse("tenant_deployment_in_use", i18n.F("el despliegue %d (%s)", "tenant deployment %d (%s)", id, old.Name), live, removing); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM tenant_deployments WHERE id = $1`, id); err != nil {
			return fmt.Errorf("delete tenant deployment %d: %w", id, err)
		}
		return audit(ctx, tx, actor, "tenant_deployment.delete", "tenant_deployment", id, map[string]any{
			"name": old.Name, "customer_id": old.CustomerID, "tunnel_id": old.TunnelID, "backend_url": old.BackendURL})
	})
}
