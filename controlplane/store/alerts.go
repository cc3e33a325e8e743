// Alerts: one open row per kind and domain (or platform-wide), opened when a condition starts and
// resolved when it ends (docs/AUTOMATION.md, "Alerts").

package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// Alert kinds.
const (
	AlertDomainUnverified         = "domain_unverified"          // never verified, registered more than 7 days ago
	AlertDNSPropagation           = "dns_propagation_error"      // no resolver answers, or they disagree, for too long
	AlertCertificateExpiring      = "certificate_expiring"       // the custom hostname's certificate ends soon
	AlertCertificateRenewalFailed = "certificate_renewal_failed" // Cloudflare could not renew or issue it
	AlertDomainMisconfigured      = "domain_misconfigured"       // verified, but its DNS no longer points at us
	AlertChecksStalled            = "checks_stalled"             // platform-wide: due checks are not running
)

// AlertKinds lists every kind.
var AlertKinds = []string{AlertDomainUnverified, AlertDNSPropagation, AlertCertificateExpiring, AlertCertificateRenewalFailed,
	AlertDomainMisconfigured, AlertChecksStalled}

// Severities.
const (
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

// Alert is an alert row.
type Alert struct {
	ID         int64
	Kind       string
	Severity   string
	DomainID   *int64
	CustomerID *int64
	Hostname   *string
	Message    i18n.Text
	OpenedAt   time.Time
	LastSeenAt time.Time
	ResolvedAt *time.Time
}

// AlertChange opens (or refreshes) or resolves one alert of a domain.
type AlertChange struct {
	Kind     string
	Open     bool
	Severity string
	Message  i18n.Text
}

// openAlert opens kind for the domain, or refreshes the open one (last_seen_at, severity,
// message). It reports whether a new alert was opened.
func openAlert(ctx context.Context, tx pgx.Tx, a Alert, now time.Time) (bool, error) {
	msg, err := json.Marshal(a.Message)
	if err != nil {
		return false, err
	}
	var inserted bool
	err = tx.QueryRow(ctx, `INSERT INTO alerts (kind, severity, domain_id, customer_id, hostname, message, opened_at, last_seen_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
		ON CONFLICT (kind, coalesce(domain_id, 0)) WHERE resolved_at IS NULL
		DO UPDATE SET last_seen_at = excluded.last_seen_at, severity = excluded.severity, message = excluded.message
		RETURNING xmax = 0`, a.Kind, a.Severity, a.DomainID, a.CustomerID, a.Hostname, msg, now).Scan(&inserted)
	if err != nil {
		return false, fmt.Errorf("open alert %s: %w", a.Kind, err)
	}
	return inserted, nil
}

// resolveAlert resolves the open alert of kind for the domain (0: platform-wide); it reports
// whether one was open.
func resolveAlert(ctx context.Context, tx pgx.Tx, kind string, domainID int64, now time.Time) (bool, error) {
	tag, err := tx.Exec(ctx, `UPDATE alerts SET resolved_at = $3 WHERE kind = $1 AND coalesce(domain_id, 0) = $2 AND resolved_at IS NULL`,
		kind, domainID, now)
	if err != nil {
		return false, fmt.Errorf("resolve alert %s of domain %d: %w", kind, domainID, err)
	}
	return tag.RowsAffected() > 0, nil
}

// applyAlerts opens and resolves a domain's alerts as decided.
func applyAlerts(ctx context.Context, tx pgx.Tx, domainID, customerID int64, hostname string, changes []AlertChange, now time.Time) error {
	for _, c := range changes {
		var err error
		if c.Open {
			_, err = openAlert(ctx, tx, Alert{Kind: c.Kind, Severity: c.Severity, DomainID: &domainID, CustomerID: &customerID,
				Hostname: &hostname, Message: c.Message}, now)
		} else {
			_, err = resolveAlert(ctx, tx, c.Kind, domainID, now)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// AlertFilter selects alerts for a list; zero values mean "any".
type AlertFilter struct {
	CustomerID int64
	DomainID   int64
	Kind       string
	Status     string // "open", "resolved" or "" (both)
	Before     int64  // cursor: ids smaller than this (newest first)
	Limit      int
}

const alertColumns = `id, kind, severity, domain_id, customer_id, hostname, message, opened_at, last_seen_at, resolved_at`

func scanAlert(r pgx.CollectableRow) (Alert, error) {
	var a Alert
	err := r.Scan(&a.ID, &a.Kind, &a.Severity, &a.DomainID, &a.CustomerID, &a.Hostname, &a.Message, &a.OpenedAt, &a.LastSeenAt, &a.ResolvedAt)
	return a, err
}

// ListAlerts returns alerts newest first. A customer's filter never shows platform-wide alerts.
func (s *Store) ListAlerts(ctx context.Context, f AlertFilter) ([]Alert, error) {
	w := where()
	if f.CustomerID != 0 {
		w.add("customer_id = $%d", f.CustomerID)
	}
	if f.DomainID != 0 {
		w.add("domain_id = $%d", f.DomainID)
	}
	if f.Kind != "" {
		w.add("kind = $%d", f.Kind)
	}
	switch f.Status {
	case "open":
		w.fixed("resolved_at IS NULL")
	case "resolved":
		w.fixed("resolved_at IS NOT NULL")
	}
	if f.Before > 0 {
		w.add("id < $%d", f.Before)
	}
	clause, args := w.newestFirst(f.Limit)
	rows, _ := s.pool.Query(ctx, `SELECT `+alertColumns+` FROM alerts WHERE `+clause, args...)
	out, err := pgx.CollectRows(rows, scanAlert)
	if err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	return out, nil
}

// GetAlert returns one alert.
func (s *Store) GetAlert(ctx context.Context, id int64) (Alert, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+alertColumns+` FROM alerts WHERE id = $1`, id)
	a, err := pgx.CollectExactlyOneRow(rows, scanAlert)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, ErrNotFound
	}
	if err != nil {
		return a, fmt.Errorf("get alert %d: %w", id, err)
	}
	return a, nil
}

// OpenAlertsOf returns the open alerts of the given domains, by domain.
func (s *Store) OpenAlertsOf(ctx context.Context, domainIDs []int64) (map[int64][]Alert, error) {
	out := map[int64][]Alert{}
	if len(domainIDs) == 0 {
		return out, nil
	}
	rows, _ := s.pool.Query(ctx, `SELECT `+alertColumns+` FROM alerts WHERE domain_id = ANY($1) AND resolved_at IS NULL ORDER BY id`, domainIDs)
	as, err := pgx.CollectRows(rows, scanAlert)
	if err != nil {
		return nil, fmt.Errorf("open alerts of %d domains: %w", len(domainIDs), err)
	}
	for _, a := range as {
		out[*a.DomainID] = append(out[*a.DomainID], a)
	}
	return out, nil
}

// CountOpenAlerts counts open alerts, of one customer when customerID > 0.
func (s *Store) CountOpenAlerts(ctx context.Context, customerID int64) (map[string]int64, error) {
	rows, _ := s.pool.Query(ctx, `SELECT kind, count(*) FROM alerts WHERE resolved_at IS NULL
		AND ($1::bigint = 0 OR customer_id = $1) GROUP BY kind`, customerID)
	out := map[string]int64{}
	var kind string
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&kind, &n}, func() error {
		out[kind] = n
		return nil
	}); err != nil {
		return nil, fmt.Errorf("count open alerts: %w", err)
	}
	return out, nil
}
