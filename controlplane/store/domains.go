package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
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
	LastError               *string         `db:"last_error"`
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
	BackendURL            *string `db:"backend_url"`
	Qualifies             bool    `db:"qualifies"`
	IngressRejectedKind   *string `db:"ingress_rejected_kind"`
	IngressRejectedReason *string `db:"ingress_rejected_reason"`
	BaseConflict          bool    `db:"base_conflict"`
	HostnameTaken         bool    `db:"hostname_taken"`
}

// IngressProblem says, in a sentence for the domain's owner, why its rules are left out of its
// tunnel's desired set; "" when they are in it (or the domain does not qualify yet). It is the
// same decision the desired set makes (ingressProblem), except that a hostname counts as taken
// when an older qualifying domain of the tunnel names it, whether or not that one is left out
// itself (only hand-written rows can collide so).
func (d Domain) IngressProblem() string {
	if !d.Qualifies {
		return ""
	}
	_, reason := ingressProblem(routedDomain{id: d.ID, external: d.ExternalDomain, platform: d.SajetFullDomain,
		service: *d.BackendURL, rejectedKind: d.IngressRejectedKind, rejectedReason: d.IngressRejectedReason,
		taken: d.HostnameTaken, baseConflict: d.BaseConflict})
	return reason
}

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
	EXISTS (SELECT 1 FROM custom_domains o JOIN tenant_deployments otd ON otd.id = o.tenant_deployment_id
		WHERE otd.tunnel_id = td.tunnel_id AND o.id < d.id AND o.deleting_at IS NULL
		  AND (o.external_domain IN (d.external_domain, d.sajet_full_domain)
		    OR o.sajet_full_domain IN (d.external_domain, d.sajet_full_domain))) AS hostname_taken
FROM custom_domains d
JOIN customers c ON c.id = d.customer_id
LEFT JOIN tenant_deployments td ON td.id = d.tenant_deployment_id
LEFT JOIN tunnels t ON t.id = td.tunnel_id`

// NewDomain is a registration the domains package has already normalised and validated.
type NewDomain struct {
	CustomerID         int64
	TenantDeploymentID *int64
	ExternalDomain     string
	Zone               string
	// Subdomains are the candidates in order of preference; the first one not taken is used. An
	// explicitly requested subdomain is passed alone, so "taken" is a conflict, not a suffix.
	Subdomains []string
	Explicit   bool
	Token      string
	IsPrimary  bool
	CreatedBy  string
	ExpiresAt  *time.Time
	// PlanQuota is the number of live domains each plan allows, unless the customer overrides it.
	PlanQuota map[string]int
	// ClaimProven is set when the caller proved with TXT that it controls the hostname: an
	// unproven registration by another customer is then retired in this same transaction.
	ClaimProven bool
}

// ErrSubdomainRace is internal: a concurrent insert took the chosen subdomain; the insert retries.
var errSubdomainRace = errors.New("subdomain taken concurrently")

// TakenError reports that another customer holds the hostname; the caller may offer a claim.
type TakenError struct {
	HolderVerified bool // the holder proved ownership with TXT: no claim can win
}

func (e *TakenError) Error() string { return "hostname registered by another customer" }

// InsertDomain registers a domain, enforcing the customer's quota, one live registration per
// hostname and unique subdomains in one transaction. The quota holds under any concurrency because
// every insert for a customer first locks that customer's row.
func (s *Store) InsertDomain(ctx context.Context, nd NewDomain) (Domain, error) {
	for attempt := 0; ; attempt++ {
		d, err := s.insertDomainOnce(ctx, nd)
		if errors.Is(err, errSubdomainRace) && attempt < 5 {
			continue
		}
		if errors.Is(err, errSubdomainRace) {
			return Domain{}, &ConflictError{Code: "subdomain_taken", Message: "could not reserve a subdomain under concurrent registrations; retry"}
		}
		return d, err
	}
}

func (s *Store) insertDomainOnce(ctx context.Context, nd NewDomain) (Domain, error) {
	var out Domain
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var plan string
		var override *int32
		var requireTXT bool
		err := tx.QueryRow(ctx, `SELECT plan, domain_quota, require_txt FROM customers WHERE id = $1 FOR UPDATE`, nd.CustomerID).
			Scan(&plan, &override, &requireTXT)
		if errors.Is(err, pgx.ErrNoRows) {
			return &MissingError{Code: "customer_not_found", Message: fmt.Sprintf("customer %d does not exist", nd.CustomerID)}
		}
		if err != nil {
			return fmt.Errorf("lock customer %d: %w", nd.CustomerID, err)
		}

		if nd.TenantDeploymentID != nil {
			var owner int64
			err := tx.QueryRow(ctx, `SELECT customer_id FROM tenant_deployments WHERE id = $1`, *nd.TenantDeploymentID).Scan(&owner)
			if errors.Is(err, pgx.ErrNoRows) || (err == nil && owner != nd.CustomerID) {
				return &MissingError{Code: "tenant_deployment_not_found",
					Message: fmt.Sprintf("tenant deployment %d does not exist for customer %d", *nd.TenantDeploymentID, nd.CustomerID)}
			}
			if err != nil {
				return fmt.Errorf("check tenant deployment: %w", err)
			}
		}

		if err := s.resolveExisting(ctx, tx, nd); err != nil {
			return err
		}
		var reserved bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM agents WHERE revoked_at IS NULL
				AND base_hostnames && ARRAY[$1::text])`, nd.ExternalDomain).Scan(&reserved); err != nil {
			return fmt.Errorf("check the tunnels' own hostnames: %w", err)
		}
		if reserved {
			return &ConflictError{Code: "hostname_reserved", Message: fmt.Sprintf(
				"%s is routed by the platform's own tunnel configuration and cannot be registered as a customer domain; contact support if you own it",
				nd.ExternalDomain)}
		}

		quota := nd.PlanQuota[plan]
		if override != nil {
			quota = int(*override)
		}
		var live int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM custom_domains WHERE customer_id = $1 AND deleting_at IS NULL`,
			nd.CustomerID).Scan(&live); err != nil {
			return fmt.Errorf("count domains: %w", err)
		}
		if live >= quota {
			return &ConflictError{Code: "quota_exceeded", Message: fmt.Sprintf(
				"customer %d has %d of %d domains allowed by plan %q; delete a domain or raise the quota",
				nd.CustomerID, live, quota, plan)}
		}

		sub, err := pickSubdomain(ctx, tx, nd)
		if err != nil {
			return err
		}
		// Another customer held this hostname (it expired, was deleted or claimed): whatever
		// they left in DNS proves nothing about this customer, so only the TXT record will.
		var txtRequired bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM released_domains
				WHERE external_domain = $1 AND customer_id <> $2)`, nd.ExternalDomain, nd.CustomerID).Scan(&txtRequired); err != nil {
			return fmt.Errorf("check earlier holders of %s: %w", nd.ExternalDomain, err)
		}

		var id int64
		err = tx.QueryRow(ctx, `INSERT INTO custom_domains
			(customer_id, tenant_deployment_id, external_domain, sajet_subdomain, sajet_zone, verification_token,
			 is_primary, created_by, expires_at, txt_verified_at, txt_required)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, CASE WHEN $10 THEN now() END, $11) RETURNING id`,
			nd.CustomerID, nd.TenantDeploymentID, nd.ExternalDomain, sub, nd.Zone, nd.Token,
			nd.IsPrimary, nd.CreatedBy, nd.ExpiresAt, nd.ClaimProven, txtRequired).Scan(&id)
		switch uniqueViolation(err) {
		case "":
		case "unique_sajet_subdomain":
			if nd.Explicit {
				return &ConflictError{Code: "subdomain_taken", Message: fmt.Sprintf("subdomain %s.%s is already in use", sub, nd.Zone)}
			}
			return errSubdomainRace
		case "unique_external_domain":
			return &TakenError{}
		case "unique_primary_per_tenant":
			return &ConflictError{Code: "primary_exists", Message: fmt.Sprintf(
				"tenant deployment %d already has a primary domain", *nd.TenantDeploymentID)}
		default:
			return fmt.Errorf("insert domain: %w", err)
		}
		if err != nil {
			return fmt.Errorf("insert domain %s: %w", nd.ExternalDomain, err)
		}
		if err := audit(ctx, tx, nd.CreatedBy, "domain.create", "domain", id, map[string]any{
			"external_domain": nd.ExternalDomain, "sajet_subdomain": sub, "claim": nd.ClaimProven, "txt_required": txtRequired}); err != nil {
			return err
		}
		if err := addToIngress(ctx, tx, id); err != nil {
			return fmt.Errorf("add domain %d to its tunnel: %w", id, err)
		}
		// Provisioning starts now, unless the plan wants ownership proven first (then it starts
		// when the TXT record is found).
		if s.outbox != nil && (!(requireTXT || txtRequired) || nd.ClaimProven) {
			if err := s.outbox.ProvisionTx(ctx, tx, id); err != nil {
				return fmt.Errorf("enqueue provisioning of domain %d: %w", id, err)
			}
		}
		out, err = getDomain(ctx, tx, id)
		return err
	})
	return out, err
}

// resolveExisting decides what an existing live registration of the same hostname means for nd.
func (s *Store) resolveExisting(ctx context.Context, tx pgx.Tx, nd NewDomain) error {
	var (
		id, owner   int64
		txtProven   bool
		expired     bool
		cfRecord    *string
		ingressSeen *int64
	)
	err := tx.QueryRow(ctx, `SELECT id, customer_id, txt_verified_at IS NOT NULL,
			coalesce(expires_at < now() AND verified_at IS NULL AND txt_verified_at IS NULL, false),
			cloudflare_dns_record_id, ingress_version
		FROM custom_domains WHERE external_domain = $1 AND deleting_at IS NULL FOR UPDATE`, nd.ExternalDomain).
		Scan(&id, &owner, &txtProven, &expired, &cfRecord, &ingressSeen)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check existing registration: %w", err)
	}
	switch {
	case owner == nd.CustomerID:
		return &ConflictError{Code: "domain_exists", Message: fmt.Sprintf("%s is already registered (domain %d)", nd.ExternalDomain, id)}
	case expired:
		return s.retire(ctx, tx, "system", "domain.expire", id, cfRecord, ingressSeen)
	case nd.ClaimProven && !txtProven:
		// Only a TXT-proven claim displaces a holder, even one verified by CNAME: the CNAME shows
		// where the name points, not who controls the zone.
		return s.retire(ctx, tx, nd.CreatedBy, "domain.reclaimed", id, cfRecord, ingressSeen)
	default:
		return &TakenError{HolderVerified: txtProven}
	}
}

// retire removes a registration: at once when nothing outside the database can reference it, else
// by marking it deleting (its subdomain stays reserved) and enqueueing the cleanup. With
// provisioning on, a record may exist before its id is stored (a provision job in flight), so
// removal always goes through the cleanup job then.
func (s *Store) retire(ctx context.Context, tx pgx.Tx, actor, action string, id int64, cfRecord *string, ingressSeen *int64) error {
	// Remembered for good: the platform subdomain is never handed to another customer, and the
	// hostname registered again by another customer needs the TXT proof.
	var holder int64
	if err := tx.QueryRow(ctx, `INSERT INTO released_domains (domain_id, customer_id, external_domain, sajet_subdomain, sajet_zone, reason)
		SELECT id, customer_id, external_domain, sajet_subdomain, sajet_zone, $2 FROM custom_domains WHERE id = $1
		RETURNING customer_id`, id, action).Scan(&holder); err != nil {
		return fmt.Errorf("record release of domain %d: %w", id, err)
	}
	referenced := false
	if ingressSeen != nil {
		var err error
		if referenced, err = removeFromIngress(ctx, tx, id); err != nil {
			return err
		}
	}
	immediate := cfRecord == nil && !referenced && s.outbox == nil
	var err error
	if immediate {
		_, err = tx.Exec(ctx, `DELETE FROM custom_domains WHERE id = $1`, id)
	} else {
		_, err = tx.Exec(ctx, `UPDATE custom_domains SET deleting_at = now(), is_active = false, updated_at = now()
			WHERE id = $1`, id)
	}
	if err != nil {
		return fmt.Errorf("retire domain %d: %w", id, err)
	}
	if !immediate && s.outbox != nil {
		if err := s.outbox.DeprovisionTx(ctx, tx, id); err != nil {
			return fmt.Errorf("enqueue removal of domain %d: %w", id, err)
		}
	}
	return audit(ctx, tx, actor, action, "domain", id, map[string]any{"immediate": immediate, "holder_customer_id": holder})
}

func pickSubdomain(ctx context.Context, tx pgx.Tx, nd NewDomain) (string, error) {
	if len(nd.Subdomains) == 0 {
		return "", fmt.Errorf("no subdomain candidates for %s", nd.ExternalDomain)
	}
	// Taken: by a domain (also one being deleted), by a registration of another customer that was
	// removed (a CNAME to it may still exist in someone's DNS), or as a hostname a tunnel's
	// operator routes.
	rows, _ := tx.Query(ctx, `SELECT sajet_subdomain FROM custom_domains
		WHERE sajet_zone = $1 AND sajet_subdomain = ANY($2)
		UNION
		SELECT sajet_subdomain FROM released_domains
		WHERE sajet_zone = $1 AND sajet_subdomain = ANY($2) AND customer_id <> $3
		UNION
		SELECT left(h, -length($1) - 1) FROM agents a CROSS JOIN LATERAL unnest(a.base_hostnames) AS h
		WHERE a.revoked_at IS NULL AND h = ANY(SELECT c || '.' || $1 FROM unnest($2::text[]) AS c)`, nd.Zone, nd.Subdomains, nd.CustomerID)
	taken, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", fmt.Errorf("check subdomains: %w", err)
	}
	used := make(map[string]bool, len(taken))
	for _, t := range taken {
		used[t] = true
	}
	for _, c := range nd.Subdomains {
		if !used[c] {
			return c, nil
		}
	}
	if nd.Explicit {
		return "", &ConflictError{Code: "subdomain_taken", Message: fmt.Sprintf("subdomain %s.%s is already in use", nd.Subdomains[0], nd.Zone)}
	}
	return "", &ConflictError{Code: "subdomain_taken", Message: fmt.Sprintf(
		"every subdomain derived from %s is taken; request one explicitly with sajet_subdomain", nd.ExternalDomain)}
}

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
	conds := []string{"d.deleting_at IS NULL"}
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, fmt.Sprintf(cond, len(args)))
	}
	if f.CustomerID != 0 {
		add("d.customer_id = $%d", f.CustomerID)
	}
	if f.Status != "" {
		add("d.verification_status = $%d::domain_verification_status", f.Status)
	}
	if f.Active != nil {
		add("d.is_active = $%d", *f.Active)
	}
	if f.Query != "" {
		add("(d.external_domain LIKE $%[1]d OR d.sajet_full_domain LIKE $%[1]d)", "%"+escapeLike(f.Query)+"%")
	}
	return strings.Join(conds, " AND "), args
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

// Verification is the outcome of a DNS check, stored on the domain.
type Verification struct {
	Verified bool
	TXTFound bool
	// Inconclusive: no resolver gave a usable answer (timeouts, SERVFAIL), so the check says
	// nothing about the customer's records.
	Inconclusive bool
	Error        string // user-facing reason when not verified
	Check        any    // the full per-resolver result, kept for diagnostics
	CheckedAt    time.Time
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
	var lastErr *string
	if !v.Verified && v.Error != "" {
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
		status := "failed"
		if v.Verified || wasVerified {
			status = "verified"
		}
		tag, err := tx.Exec(ctx, `UPDATE custom_domains SET
				verification_status = $2::domain_verification_status,
				verified_at = CASE WHEN $3 THEN coalesce(verified_at, $6) ELSE verified_at END,
				txt_verified_at = CASE WHEN $4 THEN coalesce(txt_verified_at, $6) ELSE txt_verified_at END,
				expires_at = CASE WHEN $3 OR $4 THEN NULL ELSE expires_at END,
				last_checked_at = $6, last_error = $5, last_check = $7, last_check_status = $8, updated_at = now()
			WHERE id = $1 AND deleting_at IS NULL`,
			id, status, v.Verified, v.TXTFound, lastErr, v.CheckedAt, v.Check, check)
		if err != nil {
			return fmt.Errorf("record verification of domain %d: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		if err := audit(ctx, tx, actor, "domain.verify", "domain", id, map[string]any{"status": status, "check": check, "txt": v.TXTFound}); err != nil {
			return err
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
		out, err = getDomain(ctx, tx, id)
		return err
	})
	return out, err
}

// Activate sets is_active when the domain is still verified and not being deleted; the caller has
// checked the other conditions and passes them here so the update is guarded by the same facts.
func (s *Store) Activate(ctx context.Context, actor string, id int64, requireCloudflare bool) (Domain, error) {
	var out Domain
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE custom_domains SET is_active = true, updated_at = now()
			WHERE id = $1 AND deleting_at IS NULL AND verification_status = 'verified'
			  AND tunnel_ingress_configured AND (cloudflare_configured OR NOT $2)`, id, requireCloudflare)
		if err != nil {
			return fmt.Errorf("activate domain %d: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return &ConflictError{Code: "not_ready", Message: "the domain changed while activating; check its state and retry"}
		}
		if err := audit(ctx, tx, actor, "domain.activate", "domain", id, nil); err != nil {
			return err
		}
		out, err = getDomain(ctx, tx, id)
		return err
	})
	return out, err
}

// DeleteDomain starts removal. It returns immediately=true when nothing outside the database
// referenced the domain and the row is gone; otherwise the row is marked deleting. Deleting twice
// is not an error.
func (s *Store) DeleteDomain(ctx context.Context, actor string, id int64) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var cfRecord *string
		var ingressSeen *int64
		var deleting bool
		err := tx.QueryRow(ctx, `SELECT cloudflare_dns_record_id, ingress_version, deleting_at IS NOT NULL
			FROM custom_domains WHERE id = $1 FOR UPDATE`, id).Scan(&cfRecord, &ingressSeen, &deleting)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("lock domain %d: %w", id, err)
		}
		if deleting {
			return nil
		}
		return s.retire(ctx, tx, actor, "domain.delete", id, cfRecord, ingressSeen)
	})
}

// DomainStats are the dashboard counts (seed: "Dashboard de dominios").
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
			                 AND created_at < now() - interval '7 days')
		FROM custom_domains WHERE ($1::bigint = 0 OR customer_id = $1)`, customerID).Scan(
		&st.Total, &st.Pending, &st.Verifying, &st.Verified, &st.Failed, &st.Active, &st.Inactive,
		&st.WithErrors, &st.Deleting, &st.UnverifiedOver7Days)
	if err != nil {
		return st, fmt.Errorf("domain stats: %w", err)
	}
	return st, nil
}

// SaveClaim stores (or returns the existing) claim token of a customer for a hostname.
func (s *Store) SaveClaim(ctx context.Context, customerID int64, hostname, token string) (string, error) {
	var out string
	err := s.pool.QueryRow(ctx, `INSERT INTO domain_claims (customer_id, external_domain, token) VALUES ($1, $2, $3)
		ON CONFLICT (customer_id, external_domain) DO UPDATE SET customer_id = excluded.customer_id
		RETURNING token`, customerID, hostname, token).Scan(&out)
	if err != nil {
		return "", fmt.Errorf("save claim: %w", err)
	}
	return out, nil
}

// GetClaim returns a customer's claim token for a hostname.
func (s *Store) GetClaim(ctx context.Context, customerID int64, hostname string) (string, error) {
	var out string
	err := s.pool.QueryRow(ctx, `SELECT token FROM domain_claims WHERE customer_id = $1 AND external_domain = $2`,
		customerID, hostname).Scan(&out)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("get claim: %w", err)
	}
	return out, nil
}
