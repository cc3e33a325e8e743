package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// Customer is a Sajet customer (owner of domains).
type Customer struct {
	ID          int64  `db:"id" json:"id"`
	Email       string `db:"email" json:"email"`
	CompanyName string `db:"company_name" json:"company_name"`
	Plan        string `db:"plan" json:"plan"`
	DomainQuota *int32 `db:"domain_quota" json:"domain_quota"`
	RequireTXT  bool   `db:"require_txt" json:"require_txt"`
	// Language of the customer's emails: "es" (default) or "en".
	Language    string    `db:"language" json:"language"`
	CreatedAt   time.Time `db:"created_at" json:"created_at"`
	DomainCount int64     `db:"domain_count" json:"domain_count"`
}

const customerColumns = `c.id, c.email, c.company_name, c.plan, c.domain_quota, c.require_txt, c.language, c.created_at,
	(SELECT count(*) FROM custom_domains d WHERE d.customer_id = c.id AND d.deleting_at IS NULL) AS domain_count`

// CreateCustomer inserts a customer.
func (s *Store) CreateCustomer(ctx context.Context, actor string, c Customer) (Customer, error) {
	var out Customer
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var id int64
		err := tx.QueryRow(ctx,
			`INSERT INTO customers (email, company_name, plan, domain_quota, require_txt, language)
			 VALUES ($1, $2, $3, $4, $5, coalesce(nullif($6, ''), 'es')) RETURNING id`,
			c.Email, c.CompanyName, c.Plan, c.DomainQuota, c.RequireTXT, c.Language).Scan(&id)
		if err != nil {
			return fmt.Errorf("insert customer: %w", err)
		}
		if err := audit(ctx, tx, actor, "customer.create", "customer", id, map[string]any{"plan": c.Plan}); err != nil {
			return err
		}
		out, err = getCustomer(ctx, tx, id)
		return err
	})
	return out, err
}

// GetCustomer returns one customer.
func (s *Store) GetCustomer(ctx context.Context, id int64) (Customer, error) {
	return getCustomer(ctx, s.pool, id)
}

func getCustomer(ctx context.Context, q querier, id int64) (Customer, error) {
	rows, _ := q.Query(ctx, `SELECT `+customerColumns+` FROM customers c WHERE c.id = $1`, id)
	c, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Customer])
	if errors.Is(err, pgx.ErrNoRows) {
		return Customer{}, ErrNotFound
	}
	if err != nil {
		return Customer{}, fmt.Errorf("get customer %d: %w", id, err)
	}
	return c, nil
}

// ListCustomers returns customers by id, after the cursor id, at most limit; onlyID > 0 restricts
// the list to one customer (what a customer token may see).
func (s *Store) ListCustomers(ctx context.Context, onlyID, after int64, limit int) ([]Customer, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+customerColumns+` FROM customers c
		WHERE ($1::bigint = 0 OR c.id = $1) AND c.id > $2 ORDER BY c.id LIMIT $3`, onlyID, after, limit)
	cs, err := pgx.CollectRows(rows, pgx.RowToStructByName[Customer])
	if err != nil {
		return nil, fmt.Errorf("list customers: %w", err)
	}
	return cs, nil
}

// CustomerPatch is a partial update of a customer; DomainQuota is nullable (nil: the plan's quota).
type CustomerPatch struct {
	Email       Change[string]
	CompanyName Change[string]
	Plan        Change[string]
	DomainQuota Change[*int32]
	RequireTXT  Change[bool]
	Language    Change[string]
}

// UpdateCustomer changes a customer. The customer's row is locked as InsertDomain locks it, so a
// quota change and concurrent registrations cannot together exceed the new quota: a change that
// lowers the effective quota below the live domains is refused (quota_below_usage). A change of
// require_txt changes which of the customer's domains qualify for their tunnels, and re-routes
// them in the same transaction; domains it lets through are provisioned.
func (s *Store) UpdateCustomer(ctx context.Context, actor string, id int64, p CustomerPatch, planQuota map[string]int) (Customer, error) {
	var out Customer
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var old Customer
		err := tx.QueryRow(ctx, `SELECT email, company_name, plan, domain_quota, require_txt, language FROM customers WHERE id = $1 FOR UPDATE`, id).
			Scan(&old.Email, &old.CompanyName, &old.Plan, &old.DomainQuota, &old.RequireTXT, &old.Language)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("lock customer %d: %w", id, err)
		}
		c := Customer{Email: p.Email.To(old.Email), CompanyName: p.CompanyName.To(old.CompanyName), Plan: p.Plan.To(old.Plan),
			DomainQuota: p.DomainQuota.To(old.DomainQuota), RequireTXT: p.RequireTXT.To(old.RequireTXT), Language: p.Language.To(old.Language)}
		ch := changes{}
		note(ch, "email", old.Email, c.Email)
		note(ch, "company_name", old.CompanyName, c.CompanyName)
		note(ch, "plan", old.Plan, c.Plan)
		notePtr(ch, "domain_quota", old.DomainQuota, c.DomainQuota)
		note(ch, "require_txt", old.RequireTXT, c.RequireTXT)
		note(ch, "language", old.Language, c.Language)
		if len(ch) == 0 {
			out, err = getCustomer(ctx, tx, id)
			return err
		}

		quota := func(c Customer) int {
			if c.DomainQuota != nil {
				return int(*c.DomainQuota)
			}
			return planQuota[c.Plan]
		}
		if newQ := quota(c); newQ < quota(old) {
			var live int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM custom_domains WHERE customer_id = $1 AND deleting_at IS NULL`, id).
				Scan(&live); err != nil {
				return fmt.Errorf("count domains: %w", err)
			}
			if live > newQ {
				domains := i18n.T("dominio(s)", "domain(s)")
				allows := i18n.F("el plan %s permite %d", "plan %s allows %d", c.Plan, newQ)
				advice := i18n.F("elimine %s o fije domain_quota", "delete %s or set domain_quota", plural(live-newQ, domains))
				if c.DomainQuota != nil {
					allows = i18n.F("domain_quota permite %d", "domain_quota allows %d", newQ)
					advice = i18n.F("elimine %s o fije una domain_quota de al menos %d", "delete %s or set a domain_quota of at least %d",
						plural(live-newQ, domains), live)
				}
				return &ConflictError{Code: "quota_below_usage", Message: i18n.F("el cliente %d tiene %s; %s: %s", "customer %d has %s; %s: %s",
					id, plural(live, i18n.T("dominio(s) vivo(s)", "live domain(s)")), allows, advice)}
			}
		}

		var ids []int64
		var before map[int64]route
		if c.RequireTXT != old.RequireTXT {
			if ids, err = lockDomains(ctx, tx, `d.customer_id = $1`, id); err != nil {
				return err
			}
			if before, err = routes(ctx, tx, ids, true); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `UPDATE customers SET email = $2, company_name = $3, plan = $4, domain_quota = $5, require_txt = $6, language = $7
			WHERE id = $1`, id, c.Email, c.CompanyName, c.Plan, c.DomainQuota, c.RequireTXT, c.Language)
		if err != nil {
			return fmt.Errorf("update customer %d: %w", id, err)
		}
		detail := map[string]any{"changes": ch}
		if before != nil {
			after, err := routes(ctx, tx, ids, false)
			if err != nil {
				return err
			}
			r, err := s.applyRoutes(ctx, tx, before, after)
			if err != nil {
				return err
			}
			detail["rerouted"] = r
		}
		if err := audit(ctx, tx, actor, "customer.update", "customer", id, detail); err != nil {
			return err
		}
		out, err = getCustomer(ctx, tx, id)
		return err
	})
	return out, err
}

// DeleteCustomer removes a customer nothing refers to any more: no domain (live or still being
// removed), no tenant deployment and no live API token. Revoked tokens and claims go with it.
func (s *Store) DeleteCustomer(ctx context.Context, actor string, id int64) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var c Customer
		err := tx.QueryRow(ctx, `SELECT email, company_name, plan FROM customers WHERE id = $1 FOR UPDATE`, id).
			Scan(&c.Email, &c.CompanyName, &c.Plan)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("lock customer %d: %w", id, err)
		}
		live, err := usedBy(ctx, tx, i18n.T("dominio(s) vivo(s)", "live domain(s)"), i18n.T("elimine los dominios", "delete the domains"),
			`SELECT external_domain, count(*) OVER () FROM custom_domains WHERE customer_id = $1 AND deleting_at IS NULL ORDER BY id`, id)
		if err != nil {
			return err
		}
		removing, err := usedBy(ctx, tx, beingRemoved, removalFix,
			`SELECT external_domain, count(*) OVER () FROM custom_domains WHERE customer_id = $1 AND deleting_at IS NOT NULL ORDER BY id`, id)
		if err != nil {
			return err
		}
		deployments, err := usedBy(ctx, tx, i18n.T("despliegue(s)", "tenant deployment(s)"), i18n.T("elimine los despliegues", "delete the tenant deployments"),
			`SELECT name || ' #' || id, count(*) OVER () FROM tenant_deployments WHERE customer_id = $1 ORDER BY id`, id)
		if err != nil {
			return err
		}
		tokens, err := usedBy(ctx, tx, i18n.T("token(s) de API", "API token(s)"), i18n.T("revoque los tokens", "revoke the tokens"),
			`SELECT CASE WHEN name <> '' THEN name || ' #' || id ELSE '#' || id END, count(*) OVER ()
			FROM api_tokens WHERE customer_id = $1 AND revoked_at IS NULL ORDER BY id`, id)
		if err != nil {
			return err
		}
		if err := inUse("customer_in_use", i18n.F("el cliente %d (%s)", "customer %d (%s)", id, c.CompanyName), live, removing, deployments, tokens); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM customers WHERE id = $1`, id); err != nil {
			return fmt.Errorf("delete customer %d: %w", id, err)
		}
		return audit(ctx, tx, actor, "customer.delete", "customer", id, map[string]any{
			"email": c.Email, "company_name": c.CompanyName, "plan": c.Plan})
	})
}
