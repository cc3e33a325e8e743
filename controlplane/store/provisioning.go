package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// Outbox enqueues follow-up work in the caller's transaction, so the work exists if and only if
// the change that needs it commits (River's InsertTx is the implementation).
type Outbox interface {
	ProvisionTx(ctx context.Context, tx pgx.Tx, domainID int64) error
	DeprovisionTx(ctx context.Context, tx pgx.Tx, domainID int64) error
}

// UseOutbox makes domain changes enqueue provisioning work. Call it once, before serving; without
// it (Cloudflare provider disabled) nothing outside the database ever references a domain, so
// deletions are immediate.
func (s *Store) UseOutbox(o Outbox) { s.outbox = o }

// MarkCloudflareConfigured records the DNS record provisioning created or adopted. It returns
// ErrNotFound when the domain is gone or being deleted: the caller then owns removing the record.
func (s *Store) MarkCloudflareConfigured(ctx context.Context, id int64, recordID string) error {
	// One statement (update + audit row), so the hot path of provisioning costs one round trip.
	var got int64
	err := s.pool.QueryRow(ctx, `WITH u AS (
			UPDATE custom_domains SET cloudflare_dns_record_id = $2, cloudflare_configured = true,
				last_error = CASE WHEN provision_error_step = 'cloudflare' THEN NULL ELSE last_error END,
				provision_error_step = CASE WHEN provision_error_step = 'cloudflare' THEN NULL ELSE provision_error_step END,
				updated_at = now()
			WHERE id = $1 AND deleting_at IS NULL RETURNING id)
		INSERT INTO audit_log (actor, action, entity, entity_id, detail)
		SELECT 'provisioner', 'cloudflare.record.ready', 'domain', id, jsonb_build_object('record_id', $2::text) FROM u
		RETURNING entity_id`, id, recordID).Scan(&got)
	if err == pgx.ErrNoRows {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("mark domain %d configured: %w", id, err)
	}
	return nil
}

// CustomHostnameState is what Cloudflare for SaaS reports for a domain's custom hostname.
type CustomHostnameState struct {
	ID        string
	Status    string
	SSLStatus string
	Detail    CustomHostnameDetail
}

// CustomHostnameDetail is stored as JSON and shown by the API: what the customer must publish
// for ownership and certificate validation, and what Cloudflare says is wrong.
type CustomHostnameDetail struct {
	Records []ValidationRecord `json:"records"`
	Errors  []string           `json:"errors,omitempty"`
}

// ValidationRecord is a TXT record or an HTTP token Cloudflare wants to see.
type ValidationRecord struct {
	Purpose string `json:"purpose"` // "ownership" or "ssl"
	Type    string `json:"type"`    // "TXT" or "HTTP"
	Name    string `json:"name"`    // record name, or URL for HTTP
	Value   string `json:"value"`   // record value, or body for HTTP
}

// RecordCustomHostname stores the custom hostname's id and status.
func (s *Store) RecordCustomHostname(ctx context.Context, id int64, ch CustomHostnameState) error {
	detail, err := json.Marshal(ch.Detail)
	if err != nil {
		return fmt.Errorf("encode custom hostname detail: %w", err)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE custom_domains SET cloudflare_custom_hostname_id = $2, custom_hostname_status = $3,
			ssl_status = $4, custom_hostname_detail = $5,
			last_error = CASE WHEN provision_error_step = 'custom_hostname' THEN NULL ELSE last_error END,
			provision_error_step = CASE WHEN provision_error_step = 'custom_hostname' THEN NULL ELSE provision_error_step END,
			updated_at = now()
		WHERE id = $1 AND deleting_at IS NULL`, id, ch.ID, ch.Status, ch.SSLStatus, detail)
	if err != nil {
		return fmt.Errorf("record custom hostname of domain %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// RecordProvisionError shows a provisioning failure on the domain (last_error) with the step.
func (s *Store) RecordProvisionError(ctx context.Context, id int64, step string, message i18n.Text) error {
	_, err := s.pool.Exec(ctx, `UPDATE custom_domains SET last_error = $3, provision_error_step = $2, updated_at = now()
		WHERE id = $1`, id, step, message)
	if err != nil {
		return fmt.Errorf("record provisioning error of domain %d: %w", id, err)
	}
	return nil
}

// FinishCloudflareRemoval records that the domain's Cloudflare objects are gone and removes the
// row when nothing else (the tunnel's ingress) references it any more. It reports whether the row
// was removed.
func (s *Store) FinishCloudflareRemoval(ctx context.Context, id int64) (bool, error) {
	removed := false
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE custom_domains SET cloudflare_dns_record_id = NULL, cloudflare_configured = false,
				cloudflare_custom_hostname_id = NULL, updated_at = now()
			WHERE id = $1 AND deleting_at IS NOT NULL`, id)
		if err != nil {
			return fmt.Errorf("finish removal of domain %d: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		referenced, err := referencedByAgents(ctx, tx, id)
		if err != nil {
			return err
		}
		if referenced {
			// An agent may still route it: the row goes when the agents apply a newer version.
			return audit(ctx, tx, "provisioner", "cloudflare.removed", "domain", id, nil)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM custom_domains WHERE id = $1`, id); err != nil {
			return fmt.Errorf("remove domain %d: %w", id, err)
		}
		removed = true
		return audit(ctx, tx, "provisioner", "domain.removed", "domain", id, nil)
	})
	return removed, err
}

// WantedRecord is a platform hostname that must have our CNAME in the zone.
type WantedRecord struct {
	DomainID   int64
	Name       string
	TunnelUUID string
	RecordID   string
}

// WantedRecords lists every domain whose record provisioning already created (and which is not
// being deleted): the reconciler recreates those that disappeared.
func (s *Store) WantedRecords(ctx context.Context) ([]WantedRecord, error) {
	rows, _ := s.pool.Query(ctx, `SELECT d.id, d.sajet_full_domain, t.cloudflare_tunnel_id::text, coalesce(d.cloudflare_dns_record_id, '')
		FROM custom_domains d
		JOIN tenant_deployments td ON td.id = d.tenant_deployment_id
		JOIN tunnels t ON t.id = td.tunnel_id
		WHERE d.deleting_at IS NULL AND d.cloudflare_configured`)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (WantedRecord, error) {
		var w WantedRecord
		err := r.Scan(&w.DomainID, &w.Name, &w.TunnelUUID, &w.RecordID)
		return w, err
	})
	if err != nil {
		return nil, fmt.Errorf("list wanted records: %w", err)
	}
	return out, nil
}

// LiveDomainIDs returns which of ids are domains not being deleted (a record naming one of them is
// not an orphan even if provisioning has not recorded it yet).
func (s *Store) LiveDomainIDs(ctx context.Context, ids []int64) (map[int64]bool, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id FROM custom_domains WHERE id = ANY($1) AND deleting_at IS NULL`, ids)
	live, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("check live domains: %w", err)
	}
	out := make(map[int64]bool, len(live))
	for _, id := range live {
		out[id] = true
	}
	return out, nil
}

// NoteOrphans records first sightings of orphan records and forgets ones no longer orphaned; it
// returns the orphans first seen before olderThan, which may now be removed.
func (s *Store) NoteOrphans(ctx context.Context, orphans map[string]string, olderThan time.Time) ([]string, error) {
	var expired []string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		ids := make([]string, 0, len(orphans))
		names := make([]string, 0, len(orphans))
		for id, name := range orphans {
			ids = append(ids, id)
			names = append(names, name)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM cloudflare_orphans WHERE NOT (record_id = ANY($1))`, ids); err != nil {
			return fmt.Errorf("forget orphans: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO cloudflare_orphans (record_id, name)
			SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT (record_id) DO NOTHING`, ids, names); err != nil {
			return fmt.Errorf("note orphans: %w", err)
		}
		rows, _ := tx.Query(ctx, `SELECT record_id FROM cloudflare_orphans WHERE first_seen_at < $1`, olderThan)
		var err error
		expired, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	return expired, err
}

// ForgetOrphan drops an orphan after its record was removed, and audits the removal.
func (s *Store) ForgetOrphan(ctx context.Context, recordID, name string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM cloudflare_orphans WHERE record_id = $1`, recordID); err != nil {
			return fmt.Errorf("forget orphan %s: %w", recordID, err)
		}
		return audit(ctx, tx, "reconciler", "cloudflare.record.orphan_removed", "cloudflare_record", 0,
			map[string]any{"record_id": recordID, "name": name})
	})
}

// Audit writes one audit row outside any other change (reconciler repairs).
func (s *Store) Audit(ctx context.Context, actor, action, entity string, entityID int64, detail any) error {
	return s.inTx(ctx, func(tx pgx.Tx) error { return audit(ctx, tx, actor, action, entity, entityID, detail) })
}
