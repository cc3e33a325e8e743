// Registration and removal of domains: the quota, one live registration per hostname, claims and
// expiry, the platform subdomain, and retiring a registration (docs/LIFECYCLE.md, "Register" and
// "Delete").

package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

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
			return Domain{}, &ConflictError{Code: "subdomain_taken", Message: i18n.T("no se pudo reservar un subdominio entre registros simultáneos; vuelva a intentarlo",
				"could not reserve a subdomain under concurrent registrations; retry")}
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
			return &MissingError{Code: "customer_not_found", Message: i18n.F("el cliente %d no existe", "customer %d does not exist", nd.CustomerID)}
		}
		if err != nil {
			return fmt.Errorf("lock customer %d: %w", nd.CustomerID, err)
		}

		if nd.TenantDeploymentID != nil {
			var owner int64
			err := tx.QueryRow(ctx, `SELECT customer_id FROM tenant_deployments WHERE id = $1`, *nd.TenantDeploymentID).Scan(&owner)
			if errors.Is(err, pgx.ErrNoRows) || (err == nil && owner != nd.CustomerID) {
				return &MissingError{Code: "tenant_deployment_not_found",
					Message: i18n.F("el despliegue %d no existe para el cliente %d", "tenant deployment %d does not exist for customer %d", *nd.TenantDeploymentID, nd.CustomerID)}
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
			return &ConflictError{Code: "hostname_reserved", Message: i18n.F(
				"%s lo enruta la configuración propia del túnel de la plataforma y no se puede registrar como dominio de un cliente; contacte con soporte si es suyo",
				"%s is routed by the platform's own tunnel configuration and cannot be registered as a customer domain; contact support if you own it",
				nd.ExternalDomain)}
		}

		quota := nd.PlanQuota[plan]
		if override != nil {
			quota = int(*override)
		}
		// Counted up to the quota only: a registration's cost must not grow with the customer's
		// domains. The exact number is counted for the refusal's sentence.
		var live int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM custom_domains
				WHERE customer_id = $1 AND deleting_at IS NULL LIMIT $2) x`, nd.CustomerID, max(quota, 0)).Scan(&live); err != nil {
			return fmt.Errorf("count domains: %w", err)
		}
		if live >= quota {
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM custom_domains WHERE customer_id = $1 AND deleting_at IS NULL`,
				nd.CustomerID).Scan(&live); err != nil {
				return fmt.Errorf("count domains: %w", err)
			}
			return &ConflictError{Code: "quota_exceeded", Message: i18n.F(
				"el cliente %d tiene %d de los %d dominios que permite el plan %q; elimine un dominio o amplíe la cuota",
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
				return &ConflictError{Code: "subdomain_taken", Message: i18n.F("el subdominio %s.%s ya está en uso", "subdomain %s.%s is already in use", sub, nd.Zone)}
			}
			return errSubdomainRace
		case "unique_external_domain":
			return &TakenError{}
		case "unique_primary_per_tenant":
			return &ConflictError{Code: "primary_exists", Message: i18n.F(
				"el despliegue %d ya tiene un dominio principal", "tenant deployment %d already has a primary domain", *nd.TenantDeploymentID)}
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
		return &ConflictError{Code: "domain_exists", Message: i18n.F("%s ya está registrado (dominio %d)", "%s is already registered (domain %d)", nd.ExternalDomain, id)}
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
	if err := s.retiring(ctx, tx, id, action); err != nil {
		return err
	}
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
		return "", &ConflictError{Code: "subdomain_taken", Message: i18n.F("el subdominio %s.%s ya está en uso", "subdomain %s.%s is already in use", nd.Subdomains[0], nd.Zone)}
	}
	return "", &ConflictError{Code: "subdomain_taken", Message: i18n.F(
		"todos los subdominios derivados de %s están ocupados; pida uno explícitamente con sajet_subdomain",
		"every subdomain derived from %s is taken; request one explicitly with sajet_subdomain", nd.ExternalDomain)}
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
