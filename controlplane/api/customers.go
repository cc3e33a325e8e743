// Customers: who owns domains, with their plan and quota. Creating and changing them is for admins;
// a customer token sees its own customer only.

package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/jeturing/sajet-domains/controlplane/store"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// registerCustomers registers the customers endpoints.
func (s *Server) registerCustomers() {
	huma.Register(s.api, huma.Operation{
		OperationID: "create-customer", Method: http.MethodPost, Path: "/api/customers",
		Summary: "Create a customer (admin)", Tags: []string{"customers"},
		DefaultStatus: http.StatusCreated, MaxBodyBytes: maxBodyBytes, Errors: []int{401, 403, 413, 415, 422},
	}, func(ctx context.Context, in *struct {
		Body struct {
			Email       string `json:"email" format:"email" maxLength:"254"`
			CompanyName string `json:"company_name" minLength:"1" maxLength:"200"`
			Plan        string `json:"plan,omitempty" enum:"basic,enterprise" default:"basic"`
			DomainQuota *int32 `json:"domain_quota,omitempty" minimum:"0" maximum:"100000" doc:"Override of the plan's quota"`
			RequireTXT  *bool  `json:"require_txt,omitempty" doc:"Require the TXT ownership proof; defaults to true for enterprise"`
			Language    string `json:"language,omitempty" enum:"es,en" doc:"Language of the customer's emails; default es"`
		}
	}) (*itemOutput[Customer], error) {
		if err := requireAdmin(ctx); err != nil {
			return nil, err
		}
		b := in.Body
		if err := checkText(map[string]string{"email": b.Email, "company_name": b.CompanyName}); err != nil {
			return nil, err
		}
		if b.Plan == "" {
			b.Plan = "basic"
		}
		c := store.Customer{Email: strings.TrimSpace(b.Email), CompanyName: strings.TrimSpace(b.CompanyName),
			Plan: b.Plan, DomainQuota: b.DomainQuota, RequireTXT: b.Plan == "enterprise", Language: b.Language}
		if b.RequireTXT != nil {
			c.RequireTXT = *b.RequireTXT
		}
		if c.CompanyName == "" {
			return nil, problem(http.StatusUnprocessableEntity, "validation_failed", msgBlankCompany)
		}
		out, err := s.cfg.Store.CreateCustomer(ctx, principalFrom(ctx).Actor(), c)
		if err != nil {
			return nil, err
		}
		return &itemOutput[Customer]{Body: s.customerJSON(out)}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "list-customers", Method: http.MethodGet, Path: "/api/customers",
		Summary: "List customers (a customer token sees itself)", Tags: []string{"customers"}, Errors: []int{401, 422},
	}, func(ctx context.Context, in *pageInput) (*listOutput[Customer], error) {
		p := principalFrom(ctx)
		cs, err := s.cfg.Store.ListCustomers(ctx, p.CustomerID, in.After, in.Limit)
		if err != nil {
			return nil, err
		}
		return list(cs, s.customerJSON), nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "get-customer", Method: http.MethodGet, Path: "/api/customers/{id}",
		Summary: "Get a customer", Tags: []string{"customers"}, Errors: []int{401, 404},
	}, func(ctx context.Context, in *idInput) (*itemOutput[Customer], error) {
		if !principalFrom(ctx).canSeeCustomer(in.ID) {
			return nil, problem(http.StatusNotFound, "customer_not_found", msgCustomerAbsent)
		}
		c, err := s.cfg.Store.GetCustomer(ctx, in.ID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, problem(http.StatusNotFound, "customer_not_found", msgCustomerAbsent)
		}
		if err != nil {
			return nil, err
		}
		return &itemOutput[Customer]{Body: s.customerJSON(c)}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "update-customer", Method: http.MethodPatch, Path: "/api/customers/{id}",
		Summary: "Change a customer (admin)", Tags: []string{"customers"},
		Description: "A plan or domain_quota change that would leave the customer with more live domains than its quota allows is refused (409 quota_below_usage). " +
			"A require_txt change re-routes the customer's domains: those without the TXT proof leave (or join) their tunnels.",
		MaxBodyBytes: maxBodyBytes, Errors: []int{401, 403, 404, 409, 413, 415, 422},
	}, s.updateCustomer)

	huma.Register(s.api, huma.Operation{
		OperationID: "delete-customer", Method: http.MethodDelete, Path: "/api/customers/{id}",
		Summary: "Delete a customer nothing uses any more (admin)", Tags: []string{"customers"},
		Description:   "Refused (409 customer_in_use) while the customer has domains, tenant deployments or live API tokens; the answer names them.",
		DefaultStatus: http.StatusNoContent, Errors: []int{401, 403, 404, 409},
	}, func(ctx context.Context, in *idInput) (*struct{}, error) {
		if err := customerForChange(ctx, in.ID); err != nil {
			return nil, err
		}
		if err := s.cfg.Store.DeleteCustomer(ctx, principalFrom(ctx).Actor(), in.ID); err != nil {
			return nil, notFoundAs(err, customerNotFound)
		}
		return nil, nil
	})
}

// Customer is the JSON of a customer.
type Customer struct {
	ID          int64     `json:"id"`
	Email       string    `json:"email"`
	CompanyName string    `json:"company_name"`
	Plan        string    `json:"plan" enum:"basic,enterprise"`
	DomainQuota int       `json:"domain_quota" doc:"Effective quota: the override when set, else the plan's"`
	QuotaIsPlan bool      `json:"quota_is_plan_default"`
	DomainCount int64     `json:"domain_count"`
	RequireTXT  bool      `json:"require_txt"`
	Language    string    `json:"language" enum:"es,en" doc:"Language of the customer's emails"`
	CreatedAt   time.Time `json:"created_at"`
}

func (s *Server) customerJSON(c store.Customer) Customer {
	q, isPlan := s.cfg.Domains.PlanQuota(c.Plan), true
	if c.DomainQuota != nil {
		q, isPlan = int(*c.DomainQuota), false
	}
	return Customer{ID: c.ID, Email: c.Email, CompanyName: c.CompanyName, Plan: c.Plan, DomainQuota: q,
		QuotaIsPlan: isPlan, DomainCount: c.DomainCount, RequireTXT: c.RequireTXT, Language: c.Language, CreatedAt: c.CreatedAt}
}

type customerPatchInput struct {
	ID   int64 `path:"id" minimum:"1"`
	Body struct {
		Email       Optional[string] `json:"email,omitempty" format:"email" maxLength:"254"`
		CompanyName Optional[string] `json:"company_name,omitempty" minLength:"1" maxLength:"200"`
		Plan        Optional[string] `json:"plan,omitempty" enum:"basic,enterprise"`
		DomainQuota Nullable[int32]  `json:"domain_quota,omitempty" minimum:"0" maximum:"100000" doc:"Override of the plan's quota; null: the plan's quota again"`
		RequireTXT  Optional[bool]   `json:"require_txt,omitempty" doc:"Require the TXT ownership proof before a domain is routed and provisioned"`
		Language    Optional[string] `json:"language,omitempty" enum:"es,en" doc:"Language of the customer's emails"`
	}
}

func customerNotFound() error {
	return problem(http.StatusNotFound, "customer_not_found", msgCustomerAbsent)
}

// customerForChange authorizes a change of customer id: 404 for a customer the caller cannot
// see, 403 for a customer token on its own customer.
func customerForChange(ctx context.Context, id int64) error {
	if !principalFrom(ctx).canSeeCustomer(id) {
		return customerNotFound()
	}
	return requireAdmin(ctx)
}

func (s *Server) updateCustomer(ctx context.Context, in *customerPatchInput) (*itemOutput[Customer], error) {
	if err := customerForChange(ctx, in.ID); err != nil {
		return nil, err
	}
	b := in.Body
	if !b.Email.Set && !b.CompanyName.Set && !b.Plan.Set && !b.DomainQuota.Set && !b.RequireTXT.Set && !b.Language.Set {
		return nil, nothingToChange("email", "company_name", "plan", "domain_quota", "require_txt", "language")
	}
	if err := notNull(map[string]bool{"email": b.Email.Null, "company_name": b.CompanyName.Null,
		"plan": b.Plan.Null, "require_txt": b.RequireTXT.Null, "language": b.Language.Null}); err != nil {
		return nil, err
	}
	p := store.CustomerPatch{Email: b.Email.change(), CompanyName: b.CompanyName.change(), Plan: b.Plan.change(),
		DomainQuota: b.DomainQuota.change(), RequireTXT: b.RequireTXT.change(), Language: b.Language.change()}
	p.Email.Value = strings.TrimSpace(p.Email.Value)
	p.CompanyName.Value = strings.TrimSpace(p.CompanyName.Value)
	if err := checkText(map[string]string{"email": p.Email.Value, "company_name": p.CompanyName.Value}); err != nil {
		return nil, err
	}
	if p.CompanyName.Set && p.CompanyName.Value == "" {
		return nil, invalid("company_name", msgBlankCompany, b.CompanyName.Value)
	}
	c, err := s.cfg.Store.UpdateCustomer(ctx, principalFrom(ctx).Actor(), in.ID, p, s.cfg.Domains.PlanQuotas())
	if err != nil {
		return nil, notFoundAs(err, customerNotFound)
	}
	return &itemOutput[Customer]{Body: s.customerJSON(c)}, nil
}

var (
	msgBlankCompany   = i18n.T("company_name no puede estar vacío", "company_name must not be blank")
	msgCustomerAbsent = i18n.T("cliente no encontrado", "customer not found")
)
