// What the periodic sweeps of package automation read and write: alert evaluation, the custom
// hostname sweep, purging old delivery logs, and the gauges /metrics shows (docs/AUTOMATION.md).

package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// AlertPolicy says when the time-based alerts open.
type AlertPolicy struct {
	Now                time.Time
	UnverifiedAfter    time.Duration   // domain_unverified: registered this long ago and never verified (7 days)
	DNSErrorAfter      time.Duration   // dns_propagation_error: no resolver answered for this long (1h)
	DisagreeAfter      time.Duration   // … or they disagreed for this long (24h)
	CertificateWarning time.Duration   // certificate_expiring: the certificate ends within this (14 days)
	StalledAfter       time.Duration   // checks_stalled: a check has been due for this long (1h)
	Reminders          []time.Duration // emails to customers whose domain is still unverified this long after registration
}

// AlertSummary is what an evaluation changed.
type AlertSummary struct {
	Opened, Resolved int
}

type alertCandidate struct {
	id, customer int64
	host         string
	message      i18n.Text
	// disagree: for dns_propagation_error, the resolvers answer but disagree (rather than fail).
	disagree bool
}

// EvaluateAlerts opens the time-based alerts whose condition holds and resolves those whose
// condition ended, in one transaction: domain_unverified, dns_propagation_error,
// certificate_expiring (with its event and email when it opens), checks_stalled; alerts of
// domains that are gone or being deleted are resolved; and unverified domains get their reminder
// emails.
func (s *Store) EvaluateAlerts(ctx context.Context, p AlertPolicy) (AlertSummary, error) {
	var sum AlertSummary
	now := p.Now
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// Serialises evaluations (the periodic one and one asked for by hand).
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(1936351596)`); err != nil { // "sjal"
			return fmt.Errorf("lock alert evaluation: %w", err)
		}
		kinds := []struct {
			kind  string
			query string
			args  []any
			msg   func(c alertCandidate, extra *time.Time) i18n.Text
		}{
			{AlertDomainUnverified, `SELECT d.id, d.customer_id, d.external_domain, d.created_at, false FROM custom_domains d
				WHERE d.deleting_at IS NULL AND d.verified_at IS NULL AND d.created_at <= $1`,
				[]any{now.Add(-p.UnverifiedAfter)}, func(c alertCandidate, since *time.Time) i18n.Text {
					return i18n.F("%s sigue sin verificar desde su registro el %s", "%s is still unverified since it was registered on %s",
						c.host, since.UTC().Format(time.DateOnly))
				}},
			{AlertDNSPropagation, `SELECT d.id, d.customer_id, d.external_domain, coalesce(d.dns_error_since, d.disagree_since),
					d.dns_error_since IS NULL FROM custom_domains d
				WHERE d.deleting_at IS NULL AND (d.dns_error_since <= $1 OR d.disagree_since <= $2)`,
				[]any{now.Add(-p.DNSErrorAfter), now.Add(-p.DisagreeAfter)}, func(c alertCandidate, since *time.Time) i18n.Text {
					if c.disagree {
						return i18n.F("los resolvers DNS no coinciden sobre %s desde %s", "the DNS resolvers disagree about %s since %s",
							c.host, since.UTC().Format(time.DateTime))
					}
					return i18n.F("ningún resolver DNS responde por %s desde %s (timeouts o SERVFAIL)",
						"no DNS resolver answers for %s since %s (timeouts or SERVFAIL)", c.host, since.UTC().Format(time.DateTime))
				}},
			{AlertCertificateExpiring, `SELECT d.id, d.customer_id, d.external_domain, d.cert_expires_at, true FROM custom_domains d
				WHERE d.deleting_at IS NULL AND d.deactivated_at IS NULL AND d.cloudflare_custom_hostname_id IS NOT NULL
				  AND (d.cert_expires_at <= $1 OR d.ssl_status = 'pending_expiration')`,
				[]any{now.Add(p.CertificateWarning)}, func(c alertCandidate, at *time.Time) i18n.Text {
					if at == nil {
						return i18n.F("el certificado de %s está por vencer", "the certificate of %s is about to expire", c.host)
					}
					return i18n.F("el certificado de %s vence el %s", "the certificate of %s expires on %s", c.host, at.UTC().Format(time.DateTime))
				}},
		}
		for _, k := range kinds {
			rows, _ := tx.Query(ctx, k.query, k.args...)
			var cands []alertCandidate
			var at *time.Time
			var c alertCandidate
			var flag bool
			if _, err := pgx.ForEachRow(rows, []any{&c.id, &c.customer, &c.host, &at, &flag}, func() error {
				c.disagree = flag
				c.message = k.msg(c, at)
				cands = append(cands, c)
				return nil
			}); err != nil {
				return fmt.Errorf("evaluate %s: %w", k.kind, err)
			}
			ids := make([]int64, 0, len(cands))
			for _, c := range cands {
				ids = append(ids, c.id)
				severity := SeverityWarning
				if k.kind == AlertCertificateExpiring {
					severity = SeverityCritical
				}
				id, customer, host := c.id, c.customer, c.host
				opened, err := openAlert(ctx, tx, Alert{Kind: k.kind, Severity: severity, DomainID: &id, CustomerID: &customer,
					Hostname: &host, Message: c.message}, now)
				if err != nil {
					return err
				}
				if opened {
					sum.Opened++
					if k.kind == AlertCertificateExpiring {
						if err := s.certificateTrouble(ctx, tx, id, EventDomainCertificateExpiring, c.message, now); err != nil {
							return err
						}
					}
				}
			}
			tag, err := tx.Exec(ctx, `UPDATE alerts SET resolved_at = $3 WHERE kind = $1 AND resolved_at IS NULL
				AND domain_id IS NOT NULL AND NOT (domain_id = ANY ($2))`, k.kind, ids, now)
			if err != nil {
				return fmt.Errorf("resolve %s: %w", k.kind, err)
			}
			sum.Resolved += int(tag.RowsAffected())
		}

		// checks_stalled is platform-wide: due checks that have not run.
		var stalled int64
		var oldest *time.Time
		if err := tx.QueryRow(ctx, `SELECT count(*), min(due_since) FROM custom_domains
			WHERE deleting_at IS NULL AND due_since <= $1`, now.Add(-p.StalledAfter)).Scan(&stalled, &oldest); err != nil {
			return fmt.Errorf("evaluate checks_stalled: %w", err)
		}
		if stalled > 0 {
			opened, err := openAlert(ctx, tx, Alert{Kind: AlertChecksStalled, Severity: SeverityCritical, Message: i18n.F(
				"%d comprobaciones de DNS esperan desde %s sin ejecutarse: revise los trabajos de River (cola checks) y los resolvers",
				"%d DNS checks have been due since %s without running: check the River jobs (queue checks) and the resolvers",
				stalled, oldest.UTC().Format(time.DateTime))}, now)
			if err != nil {
				return err
			}
			if opened {
				sum.Opened++
			}
		} else if resolved, err := resolveAlert(ctx, tx, AlertChecksStalled, 0, now); err != nil {
			return err
		} else if resolved {
			sum.Resolved++
		}

		// Alerts of domains that are gone or being deleted.
		tag, err := tx.Exec(ctx, `UPDATE alerts a SET resolved_at = $1 WHERE a.resolved_at IS NULL AND a.domain_id IS NOT NULL
			AND NOT EXISTS (SELECT 1 FROM custom_domains d WHERE d.id = a.domain_id AND d.deleting_at IS NULL)`, now)
		if err != nil {
			return fmt.Errorf("resolve alerts of removed domains: %w", err)
		}
		sum.Resolved += int(tag.RowsAffected())
		return s.remindUnverified(ctx, tx, p)
	})
	return sum, err
}

// remindUnverified emails the owners of domains still unverified at each reminder age (once
// each), while the registration has not expired.
func (s *Store) remindUnverified(ctx context.Context, tx pgx.Tx, p AlertPolicy) error {
	for _, age := range p.Reminders {
		rows, _ := tx.Query(ctx, `SELECT d.id, d.customer_id, d.external_domain, d.sajet_full_domain, d.created_at, d.expires_at
			FROM custom_domains d WHERE d.deleting_at IS NULL AND d.verified_at IS NULL
			  AND d.created_at <= $1 AND d.created_at > $1 - interval '7 days' AND (d.expires_at IS NULL OR d.expires_at > $2)
			  AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.dedupe_key = 'domain:' || d.id || ':unverified:' || $3::int)`,
			p.Now.Add(-age), p.Now, int(age/time.Hour))
		type due struct {
			id, customer   int64
			host, platform string
			created        time.Time
			expires        *time.Time
		}
		var dues []due
		var d due
		if _, err := pgx.ForEachRow(rows, []any{&d.id, &d.customer, &d.host, &d.platform, &d.created, &d.expires}, func() error {
			dues = append(dues, d)
			return nil
		}); err != nil {
			return fmt.Errorf("find unverified domains: %w", err)
		}
		for _, d := range dues {
			id, customer := d.id, d.customer
			if err := s.notify(ctx, tx, Notification{Kind: NotifyDomainUnverified, CustomerID: &customer, DomainID: &id,
				DedupeKey: fmt.Sprintf("domain:%d:unverified:%d", d.id, int(age/time.Hour)),
				Data: NotificationData{Hostname: d.host, PlatformHostname: d.platform, Days: int(p.Now.Sub(d.created).Hours() / 24),
					ExpiresAt: d.expires, Fix: i18n.F("CNAME %s → %s", "CNAME %s → %s", d.host, d.platform)}}, p.Now); err != nil {
				return err
			}
		}
	}
	return nil
}

// certificateTrouble emits the certificate event of a domain and emails its owner, once per alert.
func (s *Store) certificateTrouble(ctx context.Context, tx pgx.Tx, id int64, eventType string, problem i18n.Text, now time.Time) error {
	var customer int64
	var host string
	var expires *time.Time
	var detail []byte
	if err := tx.QueryRow(ctx, `SELECT customer_id, external_domain, cert_expires_at, custom_hostname_detail FROM custom_domains WHERE id = $1`, id).
		Scan(&customer, &host, &expires, &detail); err != nil {
		return fmt.Errorf("read domain %d: %w", id, err)
	}
	extra := map[string]any{}
	if expires != nil {
		extra["certificate_expires_at"] = expires.UTC().Format(time.RFC3339)
	}
	if _, err := s.emit(ctx, tx, Event{Type: eventType, DomainID: id, CustomerID: &customer, Hostname: host, OccurredAt: now,
		State: coarseActive, Previous: coarseActive, Extra: extra}); err != nil {
		return err
	}
	fix := i18n.Text{}
	if d := parseDetail(detail); len(d.Records) > 0 {
		var recs []string
		for _, r := range d.Records {
			if r.Purpose == "ssl" {
				recs = append(recs, r.Type+" "+r.Name+" "+r.Value)
			}
		}
		if len(recs) > 0 {
			fix = i18n.Same(strings.Join(recs, "; "))
		}
	}
	domainID := id
	return s.notify(ctx, tx, Notification{Kind: NotifyCertificateTrouble, CustomerID: &customer, DomainID: &domainID,
		DedupeKey: fmt.Sprintf("domain:%d:%s:%d", id, eventType, now.UnixNano()),
		Data:      NotificationData{Hostname: host, Problem: problem, ExpiresAt: expires, Fix: fix}}, now)
}

// HostnameRecord is what the custom hostname sweep knows of a domain.
type HostnameRecord struct {
	DomainID      int64
	HostnameID    string
	Status        string
	SSLStatus     string
	CertExpiresAt *time.Time
	DNSOK         bool // the last DNS check found the right records
	Deactivated   bool
}

// HostnameRecords returns every live domain with a custom hostname, by the hostname's id.
func (s *Store) HostnameRecords(ctx context.Context) (map[string]HostnameRecord, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id, cloudflare_custom_hostname_id, coalesce(custom_hostname_status, ''), ssl_status,
			cert_expires_at, coalesce(last_check_status = 'ok', false), deactivated_at IS NOT NULL
		FROM custom_domains WHERE cloudflare_custom_hostname_id IS NOT NULL AND deleting_at IS NULL`)
	out := map[string]HostnameRecord{}
	var r HostnameRecord
	if _, err := pgx.ForEachRow(rows, []any{&r.DomainID, &r.HostnameID, &r.Status, &r.SSLStatus, &r.CertExpiresAt, &r.DNSOK, &r.Deactivated},
		func() error {
			out[r.HostnameID] = r
			return nil
		}); err != nil {
		return nil, fmt.Errorf("read custom hostnames: %w", err)
	}
	return out, nil
}

// HostnameObservation is what the sweep read of one custom hostname.
type HostnameObservation struct {
	DomainID      int64
	Status        string
	SSLStatus     string
	CertExpiresAt *time.Time
	Revived       bool // the sweep sent a PATCH that revived it
	Now           time.Time
}

// renewalFailed says whether an SSL status means Cloudflare could not issue or renew the
// certificate: a certificate that was active dropping back to issuance or validation (Cloudflare's
// renewal.failed), an expired one, or a timed-out step.
func renewalFailed(wasActive bool, ssl string) bool {
	switch {
	case wasActive && (ssl == "pending_issuance" || ssl == "pending_validation"):
		return true
	case ssl == "expired" || strings.HasSuffix(ssl, "_timed_out"):
		return true
	}
	return false
}

// RecordHostname stores what the sweep read of a domain's custom hostname and opens (with its
// event and email) or resolves the certificate_renewal_failed alert.
func (s *Store) RecordHostname(ctx context.Context, o HostnameObservation) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var wasActive bool
		var customer int64
		var host string
		err := tx.QueryRow(ctx, `SELECT ssl_was_active, customer_id, external_domain FROM custom_domains
			WHERE id = $1 AND deleting_at IS NULL FOR UPDATE`, o.DomainID).Scan(&wasActive, &customer, &host)
		if err == pgx.ErrNoRows {
			return nil
		}
		if err != nil {
			return fmt.Errorf("lock domain %d: %w", o.DomainID, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE custom_domains SET custom_hostname_status = $2, ssl_status = $3::text, cert_expires_at = $4,
				ssl_was_active = ssl_was_active OR $3::text = 'active', hostname_checked_at = $5, updated_at = now()
			WHERE id = $1`, o.DomainID, o.Status, o.SSLStatus, o.CertExpiresAt, o.Now); err != nil {
			return fmt.Errorf("record custom hostname of domain %d: %w", o.DomainID, err)
		}
		if o.Revived {
			if err := audit(ctx, tx, "automation", "cloudflare.custom_hostname.revived", "domain", o.DomainID,
				map[string]any{"status": o.Status, "ssl_status": o.SSLStatus}); err != nil {
				return err
			}
		}
		if !renewalFailed(wasActive, o.SSLStatus) {
			if o.SSLStatus == "active" {
				_, err := resolveAlert(ctx, tx, AlertCertificateRenewalFailed, o.DomainID, o.Now)
				return err
			}
			return nil
		}
		msg := i18n.F("Cloudflare no pudo emitir o renovar el certificado de %s (estado SSL %s)",
			"Cloudflare could not issue or renew the certificate of %s (SSL status %s)", host, o.SSLStatus)
		id := o.DomainID
		opened, err := openAlert(ctx, tx, Alert{Kind: AlertCertificateRenewalFailed, Severity: SeverityCritical, DomainID: &id,
			CustomerID: &customer, Hostname: &host, Message: msg}, o.Now)
		if err != nil || !opened {
			return err
		}
		return s.certificateTrouble(ctx, tx, o.DomainID, EventDomainCertificateRenewalFailed, msg, o.Now)
	})
}

// Retention says how long the delivery log and events are kept.
type Retention struct {
	Deliveries    time.Duration // attempts, finished deliveries, events without pending deliveries
	Notifications time.Duration // sent or recorded notifications, resolved alerts
}

// Purge removes what Retention no longer keeps, and returns how many rows went.
func (s *Store) Purge(ctx context.Context, now time.Time, r Retention) (int64, error) {
	var total int64
	for _, q := range []struct {
		sql string
		at  time.Time
	}{
		{`DELETE FROM webhook_attempts WHERE attempted_at < $1`, now.Add(-r.Deliveries)},
		{`DELETE FROM webhook_deliveries WHERE finished_at < $1`, now.Add(-r.Deliveries)},
		{`DELETE FROM domain_events e WHERE e.occurred_at < $1
			AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id AND d.status = 'pending')`, now.Add(-r.Deliveries)},
		{`DELETE FROM notifications WHERE created_at < $1 AND status IN ('sent', 'recorded', 'failed')`, now.Add(-r.Notifications)},
		{`DELETE FROM alerts WHERE resolved_at < $1`, now.Add(-r.Notifications)},
	} {
		tag, err := s.pool.Exec(ctx, q.sql, q.at)
		if err != nil {
			return total, fmt.Errorf("purge: %w", err)
		}
		total += tag.RowsAffected()
	}
	return total, nil
}

// Gauges are the database-wide numbers /metrics shows. Every replica computes the same ones, so
// rules take max, never sum, across instances.
type Gauges struct {
	Domains              map[string]int64 // by health: pending, expired, healthy, misconfigured, deactivated, deleting
	AlertsOpen           map[[2]string]int64
	ChecksDue            int64      // due now
	OldestDue            *time.Time // since when the oldest claimed check waits
	LastCheck            *time.Time
	CertificateSoonest   *time.Time
	EndpointsEnabled     int64
	EndpointsDisabled    int64
	DeliveriesPending    int64
	DeliveriesFailed     int64
	NotificationsPending int64
	NotificationsFailed  int64
}

// AutomationGauges computes Gauges at now.
func (s *Store) AutomationGauges(ctx context.Context, now time.Time) (Gauges, error) {
	g := Gauges{Domains: map[string]int64{}, AlertsOpen: map[[2]string]int64{}}
	var pending, expired, healthy, misconfigured, deactivated, deleting int64
	err := s.pool.QueryRow(ctx, `SELECT
			count(*) FILTER (WHERE deleting_at IS NULL AND verified_at IS NULL AND (expires_at IS NULL OR expires_at > $1)),
			count(*) FILTER (WHERE deleting_at IS NULL AND verified_at IS NULL AND expires_at <= $1),
			count(*) FILTER (WHERE deleting_at IS NULL AND verified_at IS NOT NULL AND misconfigured_at IS NULL AND deactivated_at IS NULL),
			count(*) FILTER (WHERE deleting_at IS NULL AND misconfigured_at IS NOT NULL AND deactivated_at IS NULL),
			count(*) FILTER (WHERE deleting_at IS NULL AND deactivated_at IS NOT NULL),
			count(*) FILTER (WHERE deleting_at IS NOT NULL),
			count(*) FILTER (WHERE deleting_at IS NULL AND next_check_at <= $1),
			min(due_since) FILTER (WHERE deleting_at IS NULL),
			max(last_checked_at),
			min(cert_expires_at) FILTER (WHERE deleting_at IS NULL AND deactivated_at IS NULL)
		FROM custom_domains`, now).Scan(&pending, &expired, &healthy, &misconfigured, &deactivated, &deleting,
		&g.ChecksDue, &g.OldestDue, &g.LastCheck, &g.CertificateSoonest)
	if err != nil {
		return g, fmt.Errorf("domain gauges: %w", err)
	}
	g.Domains = map[string]int64{"pending": pending, "expired": expired, "healthy": healthy, "misconfigured": misconfigured,
		"deactivated": deactivated, "deleting": deleting}
	rows, _ := s.pool.Query(ctx, `SELECT kind, severity, count(*) FROM alerts WHERE resolved_at IS NULL GROUP BY kind, severity`)
	var kind, severity string
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&kind, &severity, &n}, func() error {
		g.AlertsOpen[[2]string{kind, severity}] = n
		return nil
	}); err != nil {
		return g, fmt.Errorf("alert gauges: %w", err)
	}
	err = s.pool.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM webhook_endpoints WHERE enabled),
			(SELECT count(*) FROM webhook_endpoints WHERE NOT enabled),
			(SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'),
			(SELECT count(*) FROM webhook_deliveries WHERE status = 'failed'),
			(SELECT count(*) FROM notifications WHERE status = 'pending'),
			(SELECT count(*) FROM notifications WHERE status = 'failed')`).Scan(&g.EndpointsEnabled, &g.EndpointsDisabled,
		&g.DeliveriesPending, &g.DeliveriesFailed, &g.NotificationsPending, &g.NotificationsFailed)
	if err != nil {
		return g, fmt.Errorf("webhook gauges: %w", err)
	}
	return g, nil
}

func parseDetail(raw []byte) CustomHostnameDetail {
	var d CustomHostnameDetail
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &d) // a detail we cannot read names no records
	}
	return d
}
