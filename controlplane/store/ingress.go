package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/jeturing/sajet-domains/shared/ingress"

	"github.com/jeturing/sajet-domains/internal/i18n"
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
	// Excluded are domains that qualify for the tunnel but whose rules are left out, so that one
	// bad rule never keeps the rest of the tunnel from converging.
	Excluded []Exclusion
}

// Exclusion is a domain left out of its tunnel's desired set.
type Exclusion struct {
	DomainID int64
	Kind     string    // IngressInvalid, IngressBaseConflict, IngressDuplicate or IngressRejected
	Reason   i18n.Text // a sentence for the domain's owner: never another tenant's hostname or the operator's rules
}

// Why a qualifying domain's rules are left out of its tunnel.
const (
	// IngressInvalid: a rule fails the validator the agent runs (shared/ingress), e.g. a row
	// written by an older version or by hand.
	IngressInvalid = "invalid"
	// IngressBaseConflict: an agent of the tunnel reported that its operator's base file routes
	// the hostname.
	IngressBaseConflict = "base_conflict"
	// IngressDuplicate: an older domain of the tunnel routes the same hostname.
	IngressDuplicate = "duplicate"
	// IngressRejected: an agent refused the rule (its NACK named it); kept until the domain's
	// routing changes or the tunnel's base files do.
	IngressRejected = "rejected"
)

// ownershipProven is the condition that the TXT proof, when it is required, was found: the plan
// requires it (customers.require_txt), or this registration does because another customer held
// the hostname before (custom_domains.txt_required).
const ownershipProven = `(NOT (c.require_txt OR d.txt_required) OR d.txt_verified_at IS NOT NULL)`

// inIngress is the condition for a domain to qualify for its tunnel's desired set: alive, not
// deactivated (its DNS stopped pointing at us past the grace period), on a tenant deployment with
// a tunnel and a backend, and, when required, proven by TXT. Whether its rules then go in is
// ingressProblem's decision.
const inIngress = `d.deleting_at IS NULL AND d.deactivated_at IS NULL AND td.tunnel_id IS NOT NULL AND td.backend_url IS NOT NULL
	AND ` + ownershipProven

// routedDomain is what decides whether a qualifying domain's rules go into its tunnel.
type routedDomain struct {
	id                 int64
	external, platform string
	service            string
	rejectedKind       *string    // set when an agent refused the rules
	rejectedReason     *i18n.Text // why, for the domain's owner
	// taken: an older domain of the tunnel routes one of the hostnames. baseConflict: an
	// agent's base file routes one of them.
	taken, baseConflict bool
}

// ingressProblem is the one decision of whether a qualifying domain's rules go into its
// tunnel's desired set: "" when they do, else the kind and a sentence for the domain's owner.
// The desired set, the ACK bookkeeping and the domain's tunnel_ingress step all ask it.
func ingressProblem(d routedDomain) (kind string, reason i18n.Text) {
	if d.rejectedKind != nil {
		reason := i18n.T("el agente del túnel rechazó las reglas de este dominio", "the tunnel agent refused this domain's rules")
		if d.rejectedReason != nil {
			reason = *d.rejectedReason
		}
		return IngressRejected, reason
	}
	for _, h := range []string{d.external, d.platform} {
		if err := ingress.CheckManagedRule(ingress.Rule{Hostname: h, Service: d.service}); err != nil {
			msg := err.Error()
			var re *ingress.RuleError
			if errors.As(err, &re) {
				msg = re.Msg
			}
			return IngressInvalid, i18n.F("el túnel no puede enrutar este dominio: %s; un administrador debe corregir su despliegue o el dominio",
				"the tunnel cannot route this domain: %s; an administrator must correct its tenant deployment or the domain", msg)
		}
	}
	if d.baseConflict {
		return IngressBaseConflict, baseConflictSentence(d.external)
	}
	if d.taken {
		return IngressDuplicate, duplicateSentence(d.external)
	}
	return "", i18n.Text{}
}

func baseConflictSentence(host string) i18n.Text {
	return i18n.F("%s ya lo enruta la configuración propia del servidor del túnel, así que el túnel no puede enviarlo a su tenant; contacte con soporte",
		"%s is already routed by the tunnel host's own configuration, so the tunnel cannot send it to your tenant; contact support", host)
}

func duplicateSentence(host string) i18n.Text {
	return i18n.F("%s ya lo enruta otro dominio de este túnel", "%s is already routed by another domain on this tunnel", host)
}

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
	var out map[int64]DesiredIngress
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		out, err = desiredIngress(ctx, tx, tunnelIDs)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("desired ingress of %d tunnels: %w", len(tunnelIDs), err)
	}
	return out, nil
}

// desiredIngress reads the tunnels' versions and qualifying domains and decides, domain by
// domain, whose rules go in.
func desiredIngress(ctx context.Context, tx pgx.Tx, tunnelIDs []int64) (map[int64]DesiredIngress, error) {
	out := make(map[int64]DesiredIngress, len(tunnelIDs))
	rows, _ := tx.Query(ctx, `SELECT id, config_version FROM tunnels WHERE id = ANY($1)`, tunnelIDs)
	var id, version int64
	if _, err := pgx.ForEachRow(rows, []any{&id, &version}, func() error {
		out[id] = DesiredIngress{TunnelID: id, Version: version, Rules: []IngressRule{}}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read tunnels: %w", err)
	}
	// What the tunnels' operators route themselves, as their agents reported it.
	base := map[int64]map[string]bool{}
	rows, _ = tx.Query(ctx, `SELECT a.tunnel_id, h FROM agents a CROSS JOIN LATERAL unnest(a.base_hostnames) AS h
		WHERE a.tunnel_id = ANY($1) AND a.revoked_at IS NULL`, tunnelIDs)
	var h string
	if _, err := pgx.ForEachRow(rows, []any{&id, &h}, func() error {
		if base[id] == nil {
			base[id] = map[string]bool{}
		}
		base[id][h] = true
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read base hostnames: %w", err)
	}
	// Domains in id order, so that of two domains routing one hostname the older one keeps it.
	rows, _ = tx.Query(ctx, `SELECT td.tunnel_id, d.id, d.external_domain, d.sajet_full_domain, td.backend_url,
			d.ingress_rejected_kind, d.ingress_rejected_reason
		FROM custom_domains d
		JOIN customers c ON c.id = d.customer_id
		JOIN tenant_deployments td ON td.id = d.tenant_deployment_id
		WHERE td.tunnel_id = ANY($1) AND `+inIngress+`
		ORDER BY td.tunnel_id, d.id`, tunnelIDs)
	var tunnel int64
	var d routedDomain
	routed := map[int64]map[string]bool{}
	if _, err := pgx.ForEachRow(rows, []any{&tunnel, &d.id, &d.external, &d.platform, &d.service, &d.rejectedKind, &d.rejectedReason}, func() error {
		names := routed[tunnel]
		if names == nil {
			names = map[string]bool{}
			routed[tunnel] = names
		}
		d.taken = names[d.external] || names[d.platform]
		d.baseConflict = base[tunnel][d.external] || base[tunnel][d.platform]
		di := out[tunnel]
		if kind, reason := ingressProblem(d); kind != "" {
			di.Excluded = append(di.Excluded, Exclusion{DomainID: d.id, Kind: kind, Reason: reason})
		} else {
			names[d.external], names[d.platform] = true, true
			di.Rules = append(di.Rules, IngressRule{DomainID: d.id, Hostname: d.external, Service: d.service},
				IngressRule{DomainID: d.id, Hostname: d.platform, Service: d.service})
		}
		out[tunnel] = di
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read routed domains: %w", err)
	}
	for id, di := range out {
		slices.SortFunc(di.Rules, func(a, b IngressRule) int { return strings.Compare(a.Hostname, b.Hostname) })
		out[id] = di
	}
	return out, nil
}

// excludedDomains returns the ids of a tunnel's qualifying domains whose rules are left out.
func excludedDomains(ctx context.Context, tx pgx.Tx, tunnelID int64) ([]int64, error) {
	m, err := desiredIngress(ctx, tx, []int64{tunnelID})
	if err != nil {
		return nil, err
	}
	ids := []int64{}
	for _, e := range m[tunnelID].Excluded {
		ids = append(ids, e.DomainID)
	}
	return ids, nil
}

// bumpTunnelVersion raises a tunnel's config version and notifies every replica at commit.
func bumpTunnelVersion(ctx context.Context, tx pgx.Tx, tunnelID int64) (int64, error) {
	var version int64
	if err := tx.QueryRow(ctx, `UPDATE tunnels SET config_version = config_version + 1 WHERE id = $1 RETURNING config_version`,
		tunnelID).Scan(&version); err != nil {
		return 0, fmt.Errorf("bump tunnel %d: %w", tunnelID, err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2::bigint::text)`, TunnelChannel, tunnelID); err != nil {
		return 0, fmt.Errorf("notify tunnel %d: %w", tunnelID, err)
	}
	return version, nil
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
