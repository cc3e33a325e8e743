// The health of a domain after verification: checks that never stop, misconfiguration after a
// run of wrong answers, deactivation after a grace period, recovery (docs/LIFECYCLE.md,
// "Health"; docs/AUTOMATION.md). The rules are decided by package domains (Health.Decide) and
// applied here under the domain's row lock, with their events, alerts and notifications, in the
// transaction of the check that caused them.

package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// What a check found, for the health rules.
const (
	CheckOK       = "ok"       // every resolver that answered sees the right records
	CheckWrong    = "wrong"    // they answered, with the wrong records
	CheckError    = "error"    // none answered (timeouts, SERVFAIL, REFUSED): says nothing about the records
	CheckDisagree = "disagree" // they answered and disagree (propagation in progress)
	CheckExpired  = "expired"  // an unverified registration reached its expiry: checks stop
)

// Transitions of a domain's health.
const (
	TransitionVerified      = "verified"
	TransitionMisconfigured = "misconfigured"
	TransitionRecovered     = "recovered"
	TransitionDeactivated   = "deactivated"
)

// HealthState is a domain's health as the rules read it before a check (under its row lock).
type HealthState struct {
	ID              int64
	CustomerID      int64
	Hostname        string
	Platform        string
	IsActive        bool
	VerifiedAt      *time.Time
	ExpiresAt       *time.Time
	CreatedAt       time.Time
	PendingChecks   int
	WrongStreak     int
	WrongSince      *time.Time
	DNSErrorSince   *time.Time
	DisagreeSince   *time.Time
	MisconfiguredAt *time.Time
	GraceUntil      *time.Time
	DeactivatedAt   *time.Time
}

// HealthChange is what the rules decided about a check: the new health columns, the next check,
// the transition (if any) and the words the customer is told.
type HealthChange struct {
	Result          string // CheckOK, CheckWrong, CheckError or CheckDisagree
	PendingChecks   int
	WrongStreak     int
	WrongSince      *time.Time
	DNSErrorSince   *time.Time
	DisagreeSince   *time.Time
	MisconfiguredAt *time.Time
	GraceUntil      *time.Time
	NegativeTTL     int // seconds; 0: none
	NextCheckAt     time.Time
	Transition      string // "" or a Transition*
	Reason          string // the check's reason code (dnsverify), carried by events
	Alerts          []AlertChange
	// Problem and Fix are what the check found and the record to publish, for the email.
	Problem, Fix i18n.Text
}

const healthColumns = `d.id, d.customer_id, d.external_domain, d.sajet_full_domain, d.is_active, d.verified_at, d.expires_at,
	d.created_at, d.pending_checks, d.wrong_streak, d.wrong_since, d.dns_error_since, d.disagree_since, d.misconfigured_at,
	d.grace_until, d.deactivated_at`

// readHealth reads (and locks) a domain's health.
func readHealth(ctx context.Context, tx pgx.Tx, id int64) (HealthState, error) {
	var h HealthState
	err := tx.QueryRow(ctx, `SELECT `+healthColumns+` FROM custom_domains d WHERE d.id = $1 FOR UPDATE`, id).Scan(&h.ID, &h.CustomerID,
		&h.Hostname, &h.Platform, &h.IsActive, &h.VerifiedAt, &h.ExpiresAt, &h.CreatedAt, &h.PendingChecks, &h.WrongStreak,
		&h.WrongSince, &h.DNSErrorSince, &h.DisagreeSince, &h.MisconfiguredAt, &h.GraceUntil, &h.DeactivatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return h, ErrNotFound
	}
	if err != nil {
		return h, fmt.Errorf("read health of domain %d: %w", id, err)
	}
	return h, nil
}

// coarse is the state an event carries for a domain in health h.
func (h HealthState) coarse() string {
	switch {
	case h.DeactivatedAt != nil:
		return coarseDeactivated
	case h.MisconfiguredAt != nil:
		return coarseMisconfigured
	case h.IsActive:
		return coarseActive
	case h.VerifiedAt != nil:
		return coarseVerified
	}
	return coarsePending
}

// applyHealth applies the consequences of a check's health decision ch (v.Decide on the state
// before the check, already written with the check by RecordVerification): its transition with
// the tunnel and Cloudflare side effects, the event, the notification, the alerts, the audit
// row, and the check's evidence.
func (s *Store) applyHealth(ctx context.Context, tx pgx.Tx, actor string, before HealthState, ch HealthChange, v Verification) error {
	now := v.CheckedAt
	id := before.ID
	after := before
	after.MisconfiguredAt, after.GraceUntil = ch.MisconfiguredAt, ch.GraceUntil
	if v.Verified && after.VerifiedAt == nil {
		after.VerifiedAt = &now
	}
	customer := before.CustomerID
	event := Event{DomainID: id, CustomerID: &customer, Hostname: before.Hostname, Previous: before.coarse(), OccurredAt: now, Reason: ch.Reason}
	var n *Notification
	domainID := id
	key := func(what string) string { return fmt.Sprintf("domain:%d:%s:%d", id, what, now.UnixNano()) }
	switch ch.Transition {
	case TransitionVerified:
		event.Type = EventDomainVerified
		n = &Notification{Kind: NotifyDomainVerified, DedupeKey: fmt.Sprintf("domain:%d:verified", id),
			Data: NotificationData{Hostname: before.Hostname, PlatformHostname: before.Platform}}
	case TransitionMisconfigured:
		event.Type = EventDomainMisconfigured
		n = &Notification{Kind: NotifyDomainMisconfigured, DedupeKey: key("misconfigured"),
			Data: NotificationData{Hostname: before.Hostname, PlatformHostname: before.Platform, Problem: ch.Problem, Fix: ch.Fix,
				GraceUntil: ch.GraceUntil}}
	case TransitionDeactivated:
		if err := s.deactivate(ctx, tx, id, now); err != nil {
			return err
		}
		after.DeactivatedAt, after.IsActive = &now, false
		event.Type = EventDomainDeactivated
		n = &Notification{Kind: NotifyDomainDeactivated, DedupeKey: key("deactivated"),
			Data: NotificationData{Hostname: before.Hostname, PlatformHostname: before.Platform, Problem: ch.Problem, Fix: ch.Fix,
				Since: before.MisconfiguredAt}}
	case TransitionRecovered:
		if before.DeactivatedAt != nil {
			active, err := s.reactivate(ctx, tx, id)
			if err != nil {
				return err
			}
			after.DeactivatedAt, after.IsActive = nil, active
		}
		event.Type = EventDomainRecovered
		n = &Notification{Kind: NotifyDomainRecovered, DedupeKey: key("recovered"),
			Data: NotificationData{Hostname: before.Hostname, PlatformHostname: before.Platform}}
	}
	if event.Type != "" {
		event.State = after.coarse()
		if _, err := s.emit(ctx, tx, event); err != nil {
			return err
		}
		if err := audit(ctx, tx, actor, "domain."+ch.Transition, "domain", id, map[string]any{
			"check": ch.Result, "reason": ch.Reason, "grace_until": ch.GraceUntil, "wrong_streak": ch.WrongStreak}); err != nil {
			return err
		}
	}
	if n != nil {
		n.CustomerID, n.DomainID = &customer, &domainID
		if err := s.notify(ctx, tx, *n, now); err != nil {
			return err
		}
	}
	if err := applyAlerts(ctx, tx, id, customer, before.Hostname, ch.Alerts, now); err != nil {
		return err
	}
	// The evidence of every check that was not a plain success, of the success that ended a run of
	// them, and of checks people asked for.
	if ch.Result != CheckOK || ch.Transition != "" || !v.Automatic || before.WrongStreak > 0 ||
		before.DNSErrorSince != nil || before.DisagreeSince != nil {
		if err := recordCheck(ctx, tx, id, now, ch.Result, v.Automatic, after.coarse(), v.Check); err != nil {
			return err
		}
	}
	return nil
}

func nullInt(n int) *int {
	if n == 0 {
		return nil
	}
	return &n
}

// checksKept is how many checks of a domain are kept.
const checksKept = 20

func recordCheck(ctx context.Context, tx pgx.Tx, id int64, at time.Time, result string, automatic bool, health string, evidence any) error {
	if evidence == nil {
		evidence = map[string]any{}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO domain_checks (domain_id, checked_at, result, automatic, health, evidence)
		VALUES ($1, $2, $3, $4, $5, $6)`, id, at, result, automatic, health, evidence); err != nil {
		return fmt.Errorf("record check of domain %d: %w", id, err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM domain_checks WHERE domain_id = $1 AND id <= (
			SELECT id FROM domain_checks WHERE domain_id = $1 ORDER BY id DESC OFFSET $2 LIMIT 1)`, id, checksKept); err != nil {
		return fmt.Errorf("prune checks of domain %d: %w", id, err)
	}
	return nil
}

// deactivate takes a domain whose grace period ended out of service: its rules leave its tunnel
// in a new version, it stops being active (remembering that it was, for its recovery), and its
// Cloudflare objects are removed the way a deletion removes them, the row staying.
func (s *Store) deactivate(ctx context.Context, tx pgx.Tx, id int64, now time.Time) error {
	var routed bool
	if err := tx.QueryRow(ctx, `SELECT ingress_version IS NOT NULL FROM custom_domains WHERE id = $1`, id).Scan(&routed); err != nil {
		return fmt.Errorf("read routing of domain %d: %w", id, err)
	}
	// deactivated_at first: the domain no longer qualifies for its tunnel (inIngress), so the new
	// version leaves its rules out.
	if _, err := tx.Exec(ctx, `UPDATE custom_domains SET deactivated_at = $2, reactivate = is_active, is_active = false,
			ingress_version = NULL, tunnel_ingress_configured = false, updated_at = now()
		WHERE id = $1`, id, now); err != nil {
		return fmt.Errorf("deactivate domain %d: %w", id, err)
	}
	if routed {
		if _, _, err := bumpTunnel(ctx, tx, id); err != nil {
			return err
		}
	}
	if s.outbox != nil {
		if err := s.outbox.DeprovisionTx(ctx, tx, id); err != nil {
			return fmt.Errorf("enqueue cleanup of domain %d: %w", id, err)
		}
	}
	return nil
}

// reactivate brings a deactivated domain back: active again if it was, its rules back in its
// tunnel (a new version), its Cloudflare objects provisioned again. It returns is_active.
func (s *Store) reactivate(ctx context.Context, tx pgx.Tx, id int64) (bool, error) {
	var active, provisionable bool
	err := tx.QueryRow(ctx, `UPDATE custom_domains d SET deactivated_at = NULL, is_active = d.reactivate, reactivate = false,
			cloudflare_configured = false, updated_at = now()
		FROM customers c WHERE d.id = $1 AND c.id = d.customer_id
		RETURNING d.is_active, `+ownershipProven, id).Scan(&active, &provisionable)
	if err != nil {
		return false, fmt.Errorf("reactivate domain %d: %w", id, err)
	}
	if err := addToIngress(ctx, tx, id); err != nil {
		return false, fmt.Errorf("add domain %d back to its tunnel: %w", id, err)
	}
	if s.outbox != nil && provisionable {
		if err := s.outbox.ProvisionTx(ctx, tx, id); err != nil {
			return false, fmt.Errorf("enqueue provisioning of domain %d: %w", id, err)
		}
	}
	return active, nil
}

// FinishDeactivation records that a deactivated domain's Cloudflare objects are gone. It does
// nothing to a domain that recovered meanwhile (its provisioning owns them again).
func (s *Store) FinishDeactivation(ctx context.Context, id int64) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE custom_domains SET cloudflare_dns_record_id = NULL, cloudflare_configured = false,
				cloudflare_custom_hostname_id = NULL, custom_hostname_status = NULL, custom_hostname_detail = NULL, updated_at = now()
			WHERE id = $1 AND deactivated_at IS NOT NULL AND deleting_at IS NULL`, id)
		if err != nil {
			return fmt.Errorf("finish deactivation of domain %d: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		return audit(ctx, tx, "provisioner", "cloudflare.removed_deactivated", "domain", id, nil)
	})
}

// ExpireRegistration stops the checks of a registration that reached its expiry without ever being
// verified, and says so (domain.verification_expired). It reports whether it expired now.
func (s *Store) ExpireRegistration(ctx context.Context, id int64, now time.Time) (bool, error) {
	expired := false
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var customer int64
		var host string
		err := tx.QueryRow(ctx, `UPDATE custom_domains SET next_check_at = NULL, due_since = NULL
			WHERE id = $1 AND deleting_at IS NULL AND verified_at IS NULL AND txt_verified_at IS NULL
			  AND expires_at <= $2 AND next_check_at IS NOT NULL
			RETURNING customer_id, external_domain`, id, now).Scan(&customer, &host)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("expire domain %d: %w", id, err)
		}
		expired = true
		if _, err := s.emit(ctx, tx, Event{Type: EventDomainVerificationExpired, DomainID: id, CustomerID: &customer, Hostname: host,
			State: coarseExpired, Previous: coarsePending, OccurredAt: now}); err != nil {
			return err
		}
		if err := recordCheck(ctx, tx, id, now, CheckExpired, true, coarseExpired, nil); err != nil {
			return err
		}
		return audit(ctx, tx, "automation", "domain.verification_expired", "domain", id, nil)
	})
	return expired, err
}

// Enqueue enqueues jobs for the ids (domains) in the transaction that found them.
type Enqueue func(ctx context.Context, tx pgx.Tx, ids []int64) error

// ClaimDueChecks finds up to limit domains whose check is due at now, pushes their next check to
// now+lease (so the next sweep does not pick them again while their check job waits; a check
// records the real next time, and a lost job is retried when the lease ends), notes since when
// they are due, and calls enqueue with their ids in the same transaction.
func (s *Store) ClaimDueChecks(ctx context.Context, now time.Time, lease time.Duration, limit int, enqueue Enqueue) (int, error) {
	var n int
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// A claim is bookkeeping: not announced to the pages watching these domains (00021).
		if _, err := tx.Exec(ctx, `SET LOCAL sajet.quiet_domain_events = 'on'`); err != nil {
			return fmt.Errorf("claim due checks: %w", err)
		}
		rows, _ := tx.Query(ctx, `UPDATE custom_domains d SET next_check_at = $2, due_since = coalesce(d.due_since, d.next_check_at)
			FROM (SELECT id FROM custom_domains WHERE next_check_at <= $1 AND deleting_at IS NULL
				ORDER BY next_check_at LIMIT $3 FOR UPDATE SKIP LOCKED) due
			WHERE d.id = due.id RETURNING d.id`, now, now.Add(lease), limit)
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("claim due checks: %w", err)
		}
		n = len(ids)
		if n == 0 {
			return nil
		}
		return enqueue(ctx, tx, ids)
	})
	return n, err
}

// Check is a recorded DNS check of a domain.
type Check struct {
	ID        int64     `json:"id"`
	CheckedAt time.Time `json:"checked_at"`
	Result    string    `json:"result"`
	Automatic bool      `json:"automatic"`
	Health    string    `json:"health"`
	Evidence  []byte    `json:"-"`
}

// DomainChecks returns a domain's recorded checks, newest first.
func (s *Store) DomainChecks(ctx context.Context, domainID int64, limit int) ([]Check, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id, checked_at, result, automatic, health, evidence FROM domain_checks
		WHERE domain_id = $1 ORDER BY id DESC LIMIT $2`, domainID, limit)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Check, error) {
		var c Check
		err := r.Scan(&c.ID, &c.CheckedAt, &c.Result, &c.Automatic, &c.Health, &c.Evidence)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("checks of domain %d: %w", domainID, err)
	}
	return out, nil
}

// retiring records what a retirement means for automation, before the row is marked or removed:
// a domain.deleted event, its open alerts resolved, its checks stopped.
func (s *Store) retiring(ctx context.Context, tx pgx.Tx, id int64, action string) error {
	before, err := readHealth(ctx, tx, id)
	if err != nil {
		return err
	}
	now := time.Now()
	reason := map[string]string{"domain.delete": "deleted", "domain.expire": "expired", "domain.reclaimed": "claimed"}[action]
	if _, err := s.emit(ctx, tx, Event{Type: EventDomainDeleted, DomainID: id, CustomerID: &before.CustomerID, Hostname: before.Hostname,
		State: coarseDeleted, Previous: before.coarse(), Reason: reason, OccurredAt: now}); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE alerts SET resolved_at = $2 WHERE domain_id = $1 AND resolved_at IS NULL`, id, now); err != nil {
		return fmt.Errorf("resolve alerts of domain %d: %w", id, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE custom_domains SET next_check_at = NULL, due_since = NULL WHERE id = $1`, id); err != nil {
		return fmt.Errorf("stop checks of domain %d: %w", id, err)
	}
	return nil
}
