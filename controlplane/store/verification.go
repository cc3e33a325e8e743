// Verification and activation of domains (docs/LIFECYCLE.md, "Verify" and "Activate").

package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// Verification is the outcome of a DNS check, stored on the domain.
type Verification struct {
	Verified bool
	TXTFound bool
	// Inconclusive: no resolver gave a usable answer (timeouts, SERVFAIL), so the check says
	// nothing about the customer's records.
	Inconclusive bool
	Error        i18n.Text // user-facing reason when not verified
	Check        any       // the full per-resolver result, kept for diagnostics
	CheckedAt    time.Time
	// Automatic: the check was the automation's, not a person's (no audit row unless the domain's
	// health changes).
	Automatic bool
	// Decide, when set, applies the health rules (package domains) to the domain's state before
	// the check; see applyHealth.
	Decide func(HealthState) HealthChange
}

// RecordVerification stores a check's outcome. A verified check sets verified_at once, and from
// then on the domain stays verified: a later failed check is recorded in last_check_status and
// last_error but never un-verifies it, so a domain cannot expire (or be taken over) because a
// resolver failed once. A TXT match records ownership proof.
func (s *Store) RecordVerification(ctx context.Context, actor string, id int64, v Verification) (Domain, error) {
	check := "failed"
	switch {
	case v.Verified:
		check = "ok"
	case v.Inconclusive:
		check = "error"
	}
	var lastErr *i18n.Text
	if !v.Verified && !v.Error.IsZero() {
		lastErr = &v.Error
	}
	var out Domain
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var firstProof, wasVerified bool
		err := tx.QueryRow(ctx, `SELECT d.txt_verified_at IS NULL AND (c.require_txt OR d.txt_required), d.verified_at IS NOT NULL
			FROM custom_domains d JOIN customers c ON c.id = d.customer_id
			WHERE d.id = $1 AND d.deleting_at IS NULL FOR UPDATE OF d`, id).Scan(&firstProof, &wasVerified)
		if err == pgx.ErrNoRows {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("lock domain %d: %w", id, err)
		}
		before, err := readHealth(ctx, tx, id)
		if err != nil {
			return err
		}
		status := "failed"
		if v.Verified || wasVerified {
			status = "verified"
		}
		// The check and the health it leads to are one UPDATE: every check moves next_check_at,
		// which is indexed, so each UPDATE of the row writes every index of the table.
		var ch HealthChange
		if v.Decide != nil {
			ch = v.Decide(before)
		}
		tag, err := tx.Exec(ctx, `UPDATE custom_domains SET
				verification_status = $2::domain_verification_status,
				verified_at = CASE WHEN $3 THEN coalesce(verified_at, $6) ELSE verified_at END,
				txt_verified_at = CASE WHEN $4 THEN coalesce(txt_verified_at, $6) ELSE txt_verified_at END,
				expires_at = CASE WHEN $3 OR $4 THEN NULL ELSE expires_at END,
				last_checked_at = $6, last_error = $5, last_check = $7, last_check_status = $8, updated_at = now(),
				pending_checks = CASE WHEN $9 THEN $10 ELSE pending_checks END,
				wrong_streak = CASE WHEN $9 THEN $11 ELSE wrong_streak END,
				wrong_since = CASE WHEN $9 THEN $12 ELSE wrong_since END,
				dns_error_since = CASE WHEN $9 THEN $13 ELSE dns_error_since END,
				disagree_since = CASE WHEN $9 THEN $14 ELSE disagree_since END,
				misconfigured_at = CASE WHEN $9 THEN $15 ELSE misconfigured_at END,
				grace_until = CASE WHEN $9 THEN $16 ELSE grace_until END,
				negative_ttl = CASE WHEN $9 THEN $17 ELSE negative_ttl END,
				next_check_at = CASE WHEN $9 THEN $18 ELSE next_check_at END,
				due_since = CASE WHEN $9 THEN NULL ELSE due_since END
			WHERE id = $1 AND deleting_at IS NULL`,
			id, status, v.Verified, v.TXTFound, lastErr, v.CheckedAt, v.Check, check,
			v.Decide != nil, ch.PendingChecks, ch.WrongStreak, ch.WrongSince, ch.DNSErrorSince, ch.DisagreeSince,
			ch.MisconfiguredAt, ch.GraceUntil, nullInt(ch.NegativeTTL), ch.NextCheckAt)
		if err != nil {
			return fmt.Errorf("record verification of domain %d: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		if !v.Automatic {
			if err := audit(ctx, tx, actor, "domain.verify", "domain", id, map[string]any{"status": status, "check": check, "txt": v.TXTFound}); err != nil {
				return err
			}
		}
		if v.Decide != nil {
			if err := s.applyHealth(ctx, tx, actor, before, ch, v); err != nil {
				return err
			}
		}
		if firstProof && v.TXTFound {
			if err := addToIngress(ctx, tx, id); err != nil {
				return fmt.Errorf("add domain %d to its tunnel: %w", id, err)
			}
			if s.outbox != nil {
				if err := s.outbox.ProvisionTx(ctx, tx, id); err != nil {
					return fmt.Errorf("enqueue provisioning of domain %d: %w", id, err)
				}
			}
		}
		if v.Automatic {
			// Nobody reads an automatic check's row back: the sweep runs hundreds a second, and
			// the full read (ingress, agents, hostname conflicts) would be most of its cost.
			out = Domain{ID: id, LastCheckStatus: &check}
			return nil
		}
		out, err = getDomain(ctx, tx, id)
		return err
	})
	return out, err
}

// GetCheckTarget returns what a DNS check of a domain needs (hostnames, token, whether TXT is
// required, the tunnel, and the dates that decide whether it is checked or expired); the other
// fields are zero. It is the automation's read, cheaper than GetDomain.
func (s *Store) GetCheckTarget(ctx context.Context, id int64) (Domain, error) {
	var d Domain
	err := s.pool.QueryRow(ctx, `SELECT d.id, d.customer_id, d.external_domain, d.sajet_full_domain, d.verification_token,
			c.require_txt OR d.txt_required, t.cloudflare_tunnel_id::text, d.verified_at, d.txt_verified_at, d.expires_at, d.deleting_at
		FROM custom_domains d
		JOIN customers c ON c.id = d.customer_id
		LEFT JOIN tenant_deployments td ON td.id = d.tenant_deployment_id
		LEFT JOIN tunnels t ON t.id = td.tunnel_id
		WHERE d.id = $1`, id).Scan(&d.ID, &d.CustomerID, &d.ExternalDomain, &d.SajetFullDomain, &d.VerificationToken,
		&d.RequireTXT, &d.TunnelUUID, &d.VerifiedAt, &d.TXTVerifiedAt, &d.ExpiresAt, &d.DeletingAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return d, ErrNotFound
	}
	if err != nil {
		return d, fmt.Errorf("read check target of domain %d: %w", id, err)
	}
	return d, nil
}

// Activate sets is_active when the domain is still verified and not being deleted; the caller has
// checked the other conditions and passes them here so the update is guarded by the same facts.
func (s *Store) Activate(ctx context.Context, actor string, id int64, requireCloudflare bool) (Domain, error) {
	var out Domain
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		before, err := readHealth(ctx, tx, id)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE custom_domains SET is_active = true, updated_at = now()
			WHERE id = $1 AND deleting_at IS NULL AND verification_status = 'verified' AND deactivated_at IS NULL
			  AND tunnel_ingress_configured AND (cloudflare_configured OR NOT $2)`, id, requireCloudflare)
		if err != nil {
			return fmt.Errorf("activate domain %d: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return &ConflictError{Code: "not_ready", Message: i18n.T("el dominio cambió mientras se activaba; revise su estado y vuelva a intentarlo", "the domain changed while activating; check its state and retry")}
		}
		if err := audit(ctx, tx, actor, "domain.activate", "domain", id, nil); err != nil {
			return err
		}
		if !before.IsActive {
			after := before
			after.IsActive = true
			if _, err := s.emit(ctx, tx, Event{Type: EventDomainActivated, DomainID: id, CustomerID: &before.CustomerID,
				Hostname: before.Hostname, State: after.coarse(), Previous: before.coarse(), OccurredAt: time.Now()}); err != nil {
				return err
			}
		}
		out, err = getDomain(ctx, tx, id)
		return err
	})
	return out, err
}
