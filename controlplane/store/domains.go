package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// Domain is a custom_domains row joined with what the lifecycle needs from its tenant and tunnel.
type Domain struct {
	ID                      int64           `db:"id"`
	CustomerID              int64           `db:"customer_id"`
	TenantDeploymentID      *int64          `db:"tenant_deployment_id"`
	ExternalDomain          string          `db:"external_domain"`
	SajetSubdomain          string          `db:"sajet_subdomain"`
	SajetZone               string          `db:"sajet_zone"`
	SajetFullDomain         string          `db:"sajet_full_domain"`
	VerificationStatus      string          `db:"verification_status"`
	VerificationToken       string          `db:"verification_token"`
	VerifiedAt              *time.Time      `db:"verified_at"`
	TXTVerifiedAt           *time.Time      `db:"txt_verified_at"`
	CloudflareDNSRecordID   *string         `db:"cloudflare_dns_record_id"`
	CloudflareConfigured    bool            `db:"cloudflare_configured"`
	TunnelIngressConfigured bool            `db:"tunnel_ingress_configured"`
	SSLStatus               string          `db:"ssl_status"`
	IsActive                bool            `db:"is_active"`
	IsPrimary               bool            `db:"is_primary"`
	CreatedAt               time.Time       `db:"created_at"`
	UpdatedAt               time.Time       `db:"updated_at"`
	CreatedBy               *string         `db:"created_by"`
	LastCheckedAt           *time.Time      `db:"last_checked_at"`
	LastError               *i18n.Text      `db:"last_error"`
	LastCheck               json.RawMessage `db:"last_check"`
	IngressVersion          *int64          `db:"ingress_version"`
	DeletingAt              *time.Time      `db:"deleting_at"`
	ExpiresAt               *time.Time      `db:"expires_at"`
	// RequireTXT: the TXT proof is needed, by the plan or because TXTRequired.
	RequireTXT bool `db:"require_txt"`
	// TXTRequired: another customer held the hostname before, so this registration needs the TXT
	// proof whatever the plan says.
	TXTRequired bool `db:"txt_required"`
	// LastCheckStatus is the last DNS check's result (ok, failed, error), apart from
	// VerificationStatus: a verified domain stays verified when a later check fails.
	LastCheckStatus      *string         `db:"last_check_status"`
	TunnelUUID           *string         `db:"tunnel_uuid"`
	CustomHostnameID     *string         `db:"cloudflare_custom_hostname_id"`
	CustomHostnameStatus *string         `db:"custom_hostname_status"`
	CustomHostnameDetail json.RawMessage `db:"custom_hostname_detail"`
	ProvisionErrorStep   *string         `db:"provision_error_step"`
	// What decides whether the domain's rules go into its tunnel (IngressProblem).
	BackendURL            *string    `db:"backend_url"`
	Qualifies             bool       `db:"qualifies"`
	IngressRejectedKind   *string    `db:"ingress_rejected_kind"`
	IngressRejectedReason *i18n.Text `db:"ingress_rejected_reason"`
	BaseConflict          bool       `db:"base_conflict"`
	HostnameTaken         bool       `db:"hostname_taken"`
	// Health after verification (docs/AUTOMATION.md): when the next automatic check is due, the
	// current run of wrong answers, since when no resolver answers or they disagree, the SOA
	// negative TTL of the last negative answer, and the misconfigured → deactivated path.
	NextCheckAt     *time.Time `db:"next_check_at"`
	WrongStreak     int        `db:"wrong_streak"`
	WrongSince      *time.Time `db:"wrong_since"`
	DNSErrorSince   *time.Time `db:"dns_error_since"`
	DisagreeSince   *time.Time `db:"disagree_since"`
	NegativeTTL     *int       `db:"negative_ttl"`
	MisconfiguredAt *time.Time `db:"misconfigured_at"`
	GraceUntil      *time.Time `db:"grace_until"`
	DeactivatedAt   *time.Time `db:"deactivated_at"`
	EventSeq        int64      `db:"event_seq"`
	CertExpiresAt   *time.Time `db:"cert_expires_at"`
}

// IngressProblem says, in a sentence for the domain's owner, why its rules are left out of its
// tunnel's desired set; the zero Text when they are in it (or the domain does not qualify yet). It is the
// same decision the desired set makes (ingressProblem), except that a hostname counts as taken
// when an older qualifying domain of the tunnel names it, whether or not that one is left out
// itself (only hand-written rows can collide so).
func (d Domain) IngressProblem() i18n.Text {
	if !d.Qualifies {
		return i18n.Text{}
	}
	_, reason := ingressProblem(routedDomain{id: d.ID, external: d.ExternalDomain, platform: d.SajetFullDomain,
		service: *d.BackendURL, rejectedKind: d.IngressRejectedKind, rejectedReason: d.IngressRejectedReason,
		taken: d.HostnameTaken, baseConflict: d.BaseConflict})
	return reason
}

// domainSelect reads domains. hostname_taken is two EXISTS, one per hostname column, each an index
// lookup (idx_custom_domains_external, idx_custom_domains_full_domain). external_domain is
// COLLATE "C" and the generated sajet_full_domain has the default collation: compared as they
// are, the collation is indeterminate and neither index applies, so the old single EXISTS with
// an OR scanned every older domain (about 2,000 rows per check of 2,000 domains, BenchmarkReverify).
// The values are ASCII hostnames; equality is the same under either collation.
const domainSelect = `SELECT d.id, d.customer_id, d.tenant_deployment_id, d.external_domain, d.sajet_subdomain,
	d.sajet_zone, d.sajet_full_domain, d.verification_status::text AS verification_status, d.verification_token,
	d.verified_at, d.txt_verified_at, d.cloudflare_dns_record_id, d.cloudflare_configured,
	d.tunnel_ingress_configured, d.ssl_status, d.is_active, d.is_primary, d.created_at, d.updated_at,
	d.created_by, d.last_checked_at, d.last_error, d.last_check, d.ingress_version, d.deleting_at,
	d.expires_at, c.require_txt OR d.txt_required AS require_txt, d.txt_required, d.last_check_status,
	t.cloudflare_tunnel_id::text AS tunnel_uuid, d.cloudflare_custom_hostname_id,
	d.custom_hostname_status, d.custom_hostname_detail, d.provision_error_step,
	td.backend_url, (` + inIngress + `) IS TRUE AS qualifies, d.ingress_rejected_kind, d.ingress_rejected_reason,
	EXISTS (SELECT 1 FROM agents a WHERE a.tunnel_id = td.tunnel_id AND a.revoked_at IS NULL
		AND a.base_hostnames && ARRAY[d.external_domain::text, d.sajet_full_domain::text]) AS base_conflict,
	(EXISTS (SELECT 1 FROM custom_domains o JOIN tenant_deployments otd ON otd.id = o.tenant_deployment_id
		WHERE o.external_domain IN (d.external_domain, d.sajet_full_domain COLLATE "C")
		  AND otd.tunnel_id = td.tunnel_id AND o.id < d.id AND o.deleting_at IS NULL)
	 OR EXISTS (SELECT 1 FROM custom_domains o JOIN tenant_deployments otd ON otd.id = o.tenant_deployment_id
		WHERE o.sajet_full_domain IN (d.external_domain COLLATE "default", d.sajet_full_domain)
		  AND otd.tunnel_id = td.tunnel_id AND o.id < d.id AND o.deleting_at IS NULL)) AS hostname_taken,
	d.next_check_at, d.wrong_streak, d.wrong_since, d.dns_error_since, d.disagree_since, d.negative_ttl,
	d.misconfigured_at, d.grace_until, d.deactivated_at, d.event_seq, d.cert_expires_at
FROM custom_domains d
JOIN customers c ON c.id = d.customer_id
LEFT JOIN tenant_deployments td ON td.id = d.tenant_deployment_id
LEFT JOIN tunnels t ON t.id = td.tunnel_id`

// GetDomain returns a domain by id, including one being deleted.
func (s *Store) GetDomain(ctx context.Context, id int64) (Domain, error) {
	return getDomain(ctx, s.pool, id)
}

func getDomain(ctx context.Context, q querier, id int64) (Domain, error) {
	rows, _ := q.Query(ctx, domainSelect+` WHERE d.id = $1`, id)
	return oneDomain(rows, fmt.Sprint(id))
}

// GetDomainByHostname returns the live registration whose external or platform hostname is name,
// or else the most recent one being deleted.
func (s *Store) GetDomainByHostname(ctx context.Context, name string) (Domain, error) {
	rows, _ := s.pool.Query(ctx, domainSelect+`
		WHERE d.id = (SELECT x.id FROM (
			SELECT id, deleting_at FROM custom_domains WHERE external_domain = $1
			UNION ALL
			SELECT id, deleting_at FROM custom_domains WHERE sajet_full_domain = $1) x
			ORDER BY x.deleting_at IS NOT NULL, x.id DESC LIMIT 1)`, name)
	return oneDomain(rows, name)
}

func oneDomain(rows pgx.Rows, key string) (Domain, error) {
	d, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Domain])
	if errors.Is(err, pgx.ErrNoRows) {
		return Domain{}, ErrNotFound
	}
	if err != nil {
		return Domain{}, fmt.Errorf("get domain %s: %w", key, err)
	}
	return d, nil
}

// DomainFilter selects domains for a list; zero values mean "any".
type DomainFilter struct {
	CustomerID int64
	Status     string // verification_status
	Active     *bool
	Query      string // substring of the external or platform hostname
	After      int64  // cursor: ids greater than this
	Limit      int
}

func (f DomainFilter) where() (string, []any) {
	w := where("d.deleting_at IS NULL")
	if f.CustomerID != 0 {
		w.add("d.customer_id = $%d", f.CustomerID)
	}
	if f.Status != "" {
		w.add("d.verification_status = $%d::domain_verification_status", f.Status)
	}
	if f.Active != nil {
		w.add("d.is_active = $%d", *f.Active)
	}
	if f.Query != "" {
		w.add("(d.external_domain LIKE $%[1]d OR d.sajet_full_domain LIKE $%[1]d)", "%"+escapeLike(f.Query)+"%")
	}
	return w.String(), w.args
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// ListDomains returns one page of domains in id order and the total matching the filter.
func (s *Store) ListDomains(ctx context.Context, f DomainFilter) ([]Domain, int64, error) {
	where, args := f.where()
	var total int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM custom_domains d WHERE `+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count domains: %w", err)
	}
	pageArgs := append(args, f.After, f.Limit)
	rows, _ := s.pool.Query(ctx, domainSelect+` WHERE `+where+
		fmt.Sprintf(` AND d.id > $%d ORDER BY d.id LIMIT $%d`, len(args)+1, len(args)+2), pageArgs...)
	ds, err := pgx.CollectRows(rows, pgx.RowToStructByName[Domain])
	if err != nil {
		return nil, 0, fmt.Errorf("list domains: %w", err)
	}
	return ds, total, nil
}

// DomainStats are the dashboard counts (the frontend's dashboard).
type DomainStats struct {
	Total               int64 `json:"total"`
	Pending             int64 `json:"pending"`
	Verifying           int64 `json:"verifying"`
	Verified            int64 `json:"verified"`
	Failed              int64 `json:"failed"`
	Active              int64 `json:"active"`
	Inactive            int64 `json:"inactive"`
	WithErrors          int64 `json:"with_errors"`
	Deleting            int64 `json:"deleting"`
	UnverifiedOver7Days int64 `json:"unverified_over_7_days"`
	// Misconfigured: verified, but the DNS no longer points at us (still serving, in its grace
	// period); Deactivated: out of service after the grace period (docs/AUTOMATION.md).
	Misconfigured int64 `json:"misconfigured"`
	Deactivated   int64 `json:"deactivated"`
	// AlertsOpen counts open alerts (GET /api/alerts).
	AlertsOpen int64 `json:"alerts_open"`
}

// Stats counts domains, of one customer when customerID > 0.
func (s *Store) Stats(ctx context.Context, customerID int64) (DomainStats, error) {
	var st DomainStats
	err := s.pool.QueryRow(ctx, `SELECT
			count(*) FILTER (WHERE deleting_at IS NULL),
			count(*) FILTER (WHERE deleting_at IS NULL AND verification_status = 'pending'),
			count(*) FILTER (WHERE deleting_at IS NULL AND verification_status = 'verifying'),
			count(*) FILTER (WHERE deleting_at IS NULL AND verification_status = 'verified'),
			count(*) FILTER (WHERE deleting_at IS NULL AND verification_status = 'failed'),
			count(*) FILTER (WHERE deleting_at IS NULL AND is_active),
			count(*) FILTER (WHERE deleting_at IS NULL AND NOT is_active),
			count(*) FILTER (WHERE deleting_at IS NULL AND last_error IS NOT NULL),
			count(*) FILTER (WHERE deleting_at IS NOT NULL),
			count(*) FILTER (WHERE deleting_at IS NULL AND verification_status <> 'verified'
			                 AND created_at < now() - interval '7 days'),
			count(*) FILTER (WHERE deleting_at IS NULL AND misconfigured_at IS NOT NULL AND deactivated_at IS NULL),
			count(*) FILTER (WHERE deleting_at IS NULL AND deactivated_at IS NOT NULL),
			(SELECT count(*) FROM alerts WHERE resolved_at IS NULL AND ($1::bigint = 0 OR customer_id = $1))
		FROM custom_domains WHERE ($1::bigint = 0 OR customer_id = $1)`, customerID).Scan(
		&st.Total, &st.Pending, &st.Verifying, &st.Verified, &st.Failed, &st.Active, &st.Inactive,
		&st.WithErrors, &st.Deleting, &st.UnverifiedOver7Days, &st.Misconfigured, &st.Deactivated, &st.AlertsOpen)
	if err != nil {
		return st, fmt.Errorf("domain stats: %w", err)
	}
	return st, nil
}
