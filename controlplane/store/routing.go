package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// Change is one field of a partial update (PATCH): Set says whether the request named the field;
// a nullable field is a Change of a pointer, nil meaning "set to NULL".
type Change[T any] struct {
	Set   bool
	Value T
}

// To returns the value given, or old when the field was not named.
func (c Change[T]) To(old T) T {
	if c.Set {
		return c.Value
	}
	return old
}

// changes collects old → new for an audit row, only for fields whose value really changes.
type changes map[string]map[string]any

func note[T comparable](c changes, field string, old, new T) {
	if old != new {
		c[field] = map[string]any{"old": old, "new": new}
	}
}

func notePtr[T comparable](c changes, field string, old, new *T) {
	if (old == nil) != (new == nil) || (old != nil && *old != *new) {
		c[field] = map[string]any{"old": old, "new": new}
	}
}

// bumpTunnelByID raises a tunnel's config version and notifies every replica at commit (see
// bumpTunnel, which finds the tunnel through a domain).
func bumpTunnelByID(ctx context.Context, tx pgx.Tx, tunnelID int64) (version int64, err error) {
	err = tx.QueryRow(ctx, `UPDATE tunnels SET config_version = config_version + 1 WHERE id = $1
		RETURNING config_version`, tunnelID).Scan(&version)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("bump tunnel %d: %w", tunnelID, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("bump tunnel %d: %w", tunnelID, err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2::bigint::text)`, TunnelChannel, tunnelID); err != nil {
		return 0, fmt.Errorf("notify tunnel %d: %w", tunnelID, err)
	}
	return version, nil
}

// route is where a live domain's rules are and what its Cloudflare record points at.
type route struct {
	in      bool   // in its tunnel's desired ingress (before a change: recorded by ingress_version)
	tunnel  int64  // the tenant deployment's tunnel, 0 for none
	service string // the tenant deployment's backend_url
	// provisionable: the domain may have Cloudflare objects (the plan's TXT gate is passed), and
	// cloudflare: it has its record.
	provisionable bool
	cloudflare    bool
}

// rule is what agents are told about the domain: nothing, or a tunnel and a service.
func (r route) rule() string {
	if !r.in {
		return ""
	}
	return strconv.FormatInt(r.tunnel, 10) + " " + r.service
}

// routes reads the routing of live domains. before=true reports what the tunnels were told
// (ingress_version is set while a domain's rules are in its tunnel's desired set); before=false
// evaluates whether each domain qualifies now (inIngress), after a change in this transaction.
func routes(ctx context.Context, tx pgx.Tx, ids []int64, before bool) (map[int64]route, error) {
	in := inIngress
	if before {
		in = `d.ingress_version IS NOT NULL AND td.tunnel_id IS NOT NULL`
	}
	rows, _ := tx.Query(ctx, `SELECT d.id, coalesce(`+in+`, false), coalesce(td.tunnel_id, 0), coalesce(td.backend_url, ''),
			`+ownershipProven+`, d.cloudflare_configured
		FROM custom_domains d JOIN customers c ON c.id = d.customer_id
		LEFT JOIN tenant_deployments td ON td.id = d.tenant_deployment_id
		WHERE d.id = ANY($1) AND d.deleting_at IS NULL`, ids)
	out := make(map[int64]route, len(ids))
	var id int64
	var r route
	_, err := pgx.ForEachRow(rows, []any{&id, &r.in, &r.tunnel, &r.service, &r.provisionable, &r.cloudflare}, func() error {
		out[id] = r
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read routing of %d domains: %w", len(ids), err)
	}
	return out, nil
}

// rerouted is what applyRoutes did, for the audit row and the caller.
type rerouted struct {
	Tunnels   map[string]int64 `json:"tunnels,omitempty"` // tunnel id → its new config version
	Domains   []int64          `json:"domains,omitempty"` // domains whose rules changed
	Provision []int64          `json:"provision,omitempty"`
}

// applyRoutes brings the tunnels' desired ingress and the domains' bookkeeping in line after a
// change of routing (a deployment's tunnel or backend, a domain's deployment, a customer's TXT
// gate), given the domains' routes before and after it:
//
//   - every tunnel that loses or gains a rule is bumped once (in id order, so concurrent changes
//     lock tunnels in the same order) and notified at commit;
//   - a domain whose rule changed and is in a tunnel now gets that tunnel's new version as its
//     ingress_version and tunnel_ingress_configured = false: the step is done again when the
//     agents ACK the version with the new rule (RecordAgentAck). An agent's refusal of its old
//     rule (ingress_rejected_*) is forgotten: the new rule is offered;
//   - a domain that left every tunnel gets ingress_version = NULL, as if it had never been in
//     one, so that it is added back (with a new version) when it qualifies again;
//   - a domain whose record must point at another tunnel, or that may now have Cloudflare
//     objects it could not have before, is provisioned again (in this transaction, through the
//     outbox), its cloudflare step pending until the record is updated.
func (s *Store) applyRoutes(ctx context.Context, tx pgx.Tx, before, after map[int64]route) (rerouted, error) {
	var out rerouted
	versions := map[int64]int64{}
	var changed []int64
	for id, a := range after {
		b := before[id]
		if a.rule() == b.rule() {
			continue
		}
		changed = append(changed, id)
		if b.in && b.tunnel != 0 {
			versions[b.tunnel] = 0
		}
		if a.in {
			versions[a.tunnel] = 0
		}
	}
	slices.Sort(changed)
	tunnels := make([]int64, 0, len(versions))
	for t := range versions {
		tunnels = append(tunnels, t)
	}
	slices.Sort(tunnels)
	if len(tunnels) > 0 {
		out.Tunnels = map[string]int64{}
	}
	for _, t := range tunnels {
		v, err := bumpTunnelByID(ctx, tx, t)
		if err != nil {
			return out, err
		}
		versions[t] = v
		out.Tunnels[strconv.FormatInt(t, 10)] = v
	}
	out.Domains = changed

	for id, a := range after {
		b := before[id]
		if a.tunnel == 0 || !a.provisionable || (a.tunnel == b.tunnel && b.provisionable) {
			continue
		}
		out.Provision = append(out.Provision, id)
	}
	slices.Sort(out.Provision)
	if s.outbox == nil {
		out.Provision = nil // no Cloudflare objects without provisioning
	}

	// One UPDATE per domain: a row updated twice in a transaction has its foreign keys checked
	// again (KEY SHARE on its customer and deployment), which after the tunnels are locked would
	// invert the lock order of InsertDomain.
	ids := slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(changed), out.Provision...))))
	for _, id := range ids {
		reroute, provision := slices.Contains(changed, id), slices.Contains(out.Provision, id)
		var version *int64
		if a := after[id]; a.in {
			v := versions[a.tunnel]
			version = &v
		}
		_, err := tx.Exec(ctx, `UPDATE custom_domains SET
				ingress_version = CASE WHEN $2 THEN $3 ELSE ingress_version END,
				tunnel_ingress_configured = tunnel_ingress_configured AND NOT $2,
				last_error = CASE WHEN $2 AND provision_error_step = 'tunnel' THEN NULL ELSE last_error END,
				provision_error_step = CASE WHEN $2 AND provision_error_step = 'tunnel' THEN NULL ELSE provision_error_step END,
				ingress_rejected_at = CASE WHEN $2 THEN NULL ELSE ingress_rejected_at END,
				ingress_rejected_kind = CASE WHEN $2 THEN NULL ELSE ingress_rejected_kind END,
				ingress_rejected_reason = CASE WHEN $2 THEN NULL ELSE ingress_rejected_reason END,
				cloudflare_configured = cloudflare_configured AND NOT $4,
				updated_at = now()
			WHERE id = $1`, id, reroute, version, provision)
		if err != nil {
			return out, fmt.Errorf("record the new route of domain %d: %w", id, err)
		}
		if provision {
			if err := s.outbox.ProvisionTx(ctx, tx, id); err != nil {
				return out, fmt.Errorf("enqueue provisioning of domain %d: %w", id, err)
			}
		}
	}
	return out, nil
}

// reprovision makes provisioning run again for domains whose Cloudflare record must point at
// another tunnel (or that may have one now): the record's step is pending until the job has
// updated it. Without provisioning (no outbox) no record exists and nothing is done.
func (s *Store) reprovision(ctx context.Context, tx pgx.Tx, ids []int64) error {
	if s.outbox == nil || len(ids) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `UPDATE custom_domains SET cloudflare_configured = false, updated_at = now()
		WHERE id = ANY($1) AND cloudflare_configured`, ids); err != nil {
		return fmt.Errorf("mark records of %d domains for update: %w", len(ids), err)
	}
	for _, id := range ids {
		if err := s.outbox.ProvisionTx(ctx, tx, id); err != nil {
			return fmt.Errorf("enqueue provisioning of domain %d: %w", id, err)
		}
	}
	return nil
}

// lockDomains locks the live domains a query selects (in id order, the order every routing
// change uses) and returns their ids.
func lockDomains(ctx context.Context, tx pgx.Tx, where string, args ...any) ([]int64, error) {
	rows, _ := tx.Query(ctx, `SELECT id FROM custom_domains d WHERE `+where+` AND d.deleting_at IS NULL
		ORDER BY id FOR UPDATE`, args...)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("lock domains: %w", err)
	}
	return ids, nil
}

// removalFix is the advice about domains being removed: their rows go by themselves.
var removalFix = i18n.T("espere a que desaparezcan los dominios en eliminación (cuando los agentes del túnel y Cloudflare dejen de referenciarlos)",
	"wait until the domains being removed are gone (once the tunnel's agents and Cloudflare no longer reference them)")

// beingRemoved names domains whose removal is in progress.
var beingRemoved = i18n.T("dominio(s) en eliminación", "domain(s) being removed")

// maxNamed bounds the names a refusal lists.
const maxNamed = 5

// users is what still uses an object, for a 409: up to maxNamed labels and the total.
type users struct {
	what   i18n.Text // "live domain(s)", "domain(s) being removed", …
	fix    i18n.Text // what to do about them: "delete them", …
	labels []string
	total  int
}

// plural writes "1 domain" or "2 domains" for what = "domain(s)", in each language: every "(s)"
// becomes "s" or nothing ("dominio(s) vivo(s)" → "dominios vivos").
func plural(n int, what i18n.Text) i18n.Text {
	end := "s"
	if n == 1 {
		end = ""
	}
	return i18n.F("%d %s", "%d %s", n, what.Map(func(s string) string { return strings.ReplaceAll(s, "(s)", end) }))
}

// Text says how many of what use the object, naming up to maxNamed of them.
func (u users) Text() i18n.Text {
	list := i18n.Same(strings.Join(u.labels, ", "))
	if more := u.total - len(u.labels); more > 0 {
		list = i18n.F("%s y %d más", "%s and %d more", list, more)
	}
	return i18n.F("%s (%s)", "%s (%s)", plural(u.total, u.what), list)
}

// usedBy runs a query returning (label, count(*) OVER ()) rows, at most maxNamed of them.
func usedBy(ctx context.Context, tx pgx.Tx, what, fix i18n.Text, query string, args ...any) (users, error) {
	u := users{what: what, fix: fix}
	rows, _ := tx.Query(ctx, query+fmt.Sprintf(" LIMIT %d", maxNamed), args...)
	var label string
	var total int
	_, err := pgx.ForEachRow(rows, []any{&label, &total}, func() error {
		u.labels = append(u.labels, label)
		u.total = total
		return nil
	})
	if err != nil {
		return u, fmt.Errorf("list %s in use: %w", what, err)
	}
	return u, nil
}

// inUse builds the 409 for an object that something still uses, saying what to do about each
// use; nil when nothing uses it.
func inUse(code string, subject i18n.Text, all ...users) error {
	var parts, fixes []i18n.Text
	for _, u := range all {
		if u.total > 0 {
			parts = append(parts, u.Text())
			fixes = append(fixes, u.fix)
		}
	}
	if len(parts) == 0 {
		return nil
	}
	return &ConflictError{Code: code, Message: i18n.F("%s aún lo usan %s: %s", "%s is still used by %s: %s", subject, and(parts), and(fixes))}
}

// and joins "a, b and c" ("a, b y c").
func and(items []i18n.Text) i18n.Text {
	if n := len(items); n > 1 {
		return i18n.F("%s y %s", "%s and %s", i18n.Join(", ", items[:n-1]...), items[n-1])
	}
	return i18n.Join("", items...)
}

// DomainPatch is a partial update of a domain's routing; a nil TenantDeploymentID detaches it.
type DomainPatch struct {
	TenantDeploymentID Change[*int64]
	IsPrimary          Change[bool]
}

// UpdateDomainRouting moves a live domain to another tenant deployment of its customer and/or
// changes is_primary (one primary per deployment). A move re-routes the domain (applyRoutes).
func (s *Store) UpdateDomainRouting(ctx context.Context, actor string, id int64, p DomainPatch) (Domain, error) {
	for attempt := 0; ; attempt++ {
		d, err := s.updateDomainRoutingOnce(ctx, actor, id, p)
		if errors.Is(err, errDomainMoved) && attempt < 3 {
			continue
		}
		if errors.Is(err, errDomainMoved) {
			return Domain{}, &ConflictError{Code: "concurrent_change", Message: i18n.F("el dominio %d se está cambiando a la vez desde otra petición; vuelva a intentarlo", "domain %d is being changed concurrently; retry", id)}
		}
		return d, err
	}
}

// errDomainMoved: the domain changed deployment between the read and the lock; the update retries.
var errDomainMoved = errors.New("domain moved concurrently")

func (s *Store) updateDomainRoutingOnce(ctx context.Context, actor string, id int64, p DomainPatch) (Domain, error) {
	var out Domain
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var customer int64
		var oldTD *int64
		var oldPrimary bool
		err := tx.QueryRow(ctx, `SELECT customer_id, tenant_deployment_id, is_primary FROM custom_domains WHERE id = $1`, id).
			Scan(&customer, &oldTD, &oldPrimary)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("read domain %d: %w", id, err)
		}
		// The customer first, as InsertDomain locks it: the domain's row is updated twice below,
		// and the second update checks its foreign keys again (KEY SHARE on the customer).
		if _, err := tx.Exec(ctx, `SELECT 1 FROM customers WHERE id = $1 FOR KEY SHARE`, customer); err != nil {
			return fmt.Errorf("lock customer %d: %w", customer, err)
		}
		newTD := p.TenantDeploymentID.To(oldTD)
		// Deployments before domains, in id order: the order a deployment change locks them in.
		var lock []int64
		for _, td := range []*int64{oldTD, newTD} {
			if td != nil && !slices.Contains(lock, *td) {
				lock = append(lock, *td)
			}
		}
		slices.Sort(lock)
		rows, _ := tx.Query(ctx, `SELECT id, customer_id FROM tenant_deployments WHERE id = ANY($1) ORDER BY id FOR SHARE`, lock)
		owners := map[int64]int64{}
		var tdID, owner int64
		if _, err := pgx.ForEachRow(rows, []any{&tdID, &owner}, func() error { owners[tdID] = owner; return nil }); err != nil {
			return fmt.Errorf("lock tenant deployments: %w", err)
		}
		if newTD != nil {
			if o, ok := owners[*newTD]; !ok || o != customer {
				return &MissingError{Code: "tenant_deployment_not_found",
					Message: i18n.F("el despliegue %d no existe para el cliente %d", "tenant deployment %d does not exist for customer %d", *newTD, customer)}
			}
		}
		var nowTD *int64
		var deleting bool
		err = tx.QueryRow(ctx, `SELECT tenant_deployment_id, deleting_at IS NOT NULL FROM custom_domains WHERE id = $1 FOR UPDATE`, id).
			Scan(&nowTD, &deleting)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("lock domain %d: %w", id, err)
		}
		if !equalID(nowTD, oldTD) {
			return errDomainMoved
		}
		if deleting {
			return &ConflictError{Code: "domain_deleting", Message: i18n.F("el dominio %d se está eliminando", "domain %d is being deleted", id)}
		}
		primary := p.IsPrimary.To(oldPrimary)
		ch := changes{}
		notePtr(ch, "tenant_deployment_id", oldTD, newTD)
		note(ch, "is_primary", oldPrimary, primary)
		if len(ch) == 0 {
			out, err = getDomain(ctx, tx, id)
			return err
		}
		before, err := routes(ctx, tx, []int64{id}, true)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE custom_domains SET tenant_deployment_id = $2, is_primary = $3, updated_at = now()
			WHERE id = $1`, id, newTD, primary)
		if uniqueViolation(err) == "unique_primary_per_tenant" {
			return &ConflictError{Code: "primary_exists", Message: i18n.F("el despliegue %d ya tiene un dominio principal", "tenant deployment %d already has a primary domain", *newTD)}
		}
		if err != nil {
			return fmt.Errorf("update domain %d: %w", id, err)
		}
		after, err := routes(ctx, tx, []int64{id}, false)
		if err != nil {
			return err
		}
		r, err := s.applyRoutes(ctx, tx, before, after)
		if err != nil {
			return err
		}
		if err := audit(ctx, tx, actor, "domain.update", "domain", id, map[string]any{"changes": ch, "rerouted": r}); err != nil {
			return err
		}
		out, err = getDomain(ctx, tx, id)
		return err
	})
	return out, err
}

func equalID(a, b *int64) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}
