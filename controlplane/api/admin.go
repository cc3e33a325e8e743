package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/jeturing/sajet-domains/controlplane/store"
)

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
	CreatedAt   time.Time `json:"created_at"`
}

func (s *Server) customerJSON(c store.Customer) Customer {
	q, isPlan := s.cfg.Domains.PlanQuota(c.Plan), true
	if c.DomainQuota != nil {
		q, isPlan = int(*c.DomainQuota), false
	}
	return Customer{ID: c.ID, Email: c.Email, CompanyName: c.CompanyName, Plan: c.Plan, DomainQuota: q,
		QuotaIsPlan: isPlan, DomainCount: c.DomainCount, RequireTXT: c.RequireTXT, CreatedAt: c.CreatedAt}
}

type pageInput struct {
	Limit int   `query:"limit" minimum:"1" maximum:"500" default:"100"`
	After int64 `query:"after" minimum:"0" doc:"Return ids greater than this (cursor)"`
}

type idInput struct {
	ID int64 `path:"id" minimum:"1"`
}

type listOutput[T any] struct {
	Body struct {
		Items []T `json:"items"`
	}
}

type itemOutput[T any] struct {
	Body T
}

func list[T, U any](items []T, conv func(T) U) *listOutput[U] {
	out := &listOutput[U]{}
	out.Body.Items = make([]U, 0, len(items))
	for _, it := range items {
		out.Body.Items = append(out.Body.Items, conv(it))
	}
	return out
}

func (s *Server) registerAdmin() {
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
			Plan: b.Plan, DomainQuota: b.DomainQuota, RequireTXT: b.Plan == "enterprise"}
		if b.RequireTXT != nil {
			c.RequireTXT = *b.RequireTXT
		}
		if c.CompanyName == "" {
			return nil, problem(http.StatusUnprocessableEntity, "validation_failed", "company_name must not be blank")
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
			return nil, problem(http.StatusNotFound, "customer_not_found", "customer not found")
		}
		c, err := s.cfg.Store.GetCustomer(ctx, in.ID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, problem(http.StatusNotFound, "customer_not_found", "customer not found")
		}
		if err != nil {
			return nil, err
		}
		return &itemOutput[Customer]{Body: s.customerJSON(c)}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "create-tunnel", Method: http.MethodPost, Path: "/api/tunnels",
		Summary: "Register a Cloudflare Tunnel (admin)", Tags: []string{"tunnels"},
		DefaultStatus: http.StatusCreated, MaxBodyBytes: maxBodyBytes, Errors: []int{401, 403, 409, 413, 415, 422},
	}, func(ctx context.Context, in *struct {
		Body struct {
			Name               string `json:"name" minLength:"1" maxLength:"100" pattern:"^[A-Za-z0-9][A-Za-z0-9._-]*$"`
			CloudflareTunnelID string `json:"cloudflare_tunnel_id" format:"uuid" doc:"The tunnel's UUID (<uuid>.cfargotunnel.com)"`
		}
	}) (*itemOutput[store.Tunnel], error) {
		if err := requireAdmin(ctx); err != nil {
			return nil, err
		}
		t, err := s.cfg.Store.CreateTunnel(ctx, principalFrom(ctx).Actor(),
			store.Tunnel{Name: in.Body.Name, CloudflareTunnelID: strings.ToLower(in.Body.CloudflareTunnelID)})
		if err != nil {
			return nil, storeError(err)
		}
		return &itemOutput[store.Tunnel]{Body: t}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "list-tunnels", Method: http.MethodGet, Path: "/api/tunnels",
		Summary: "List tunnels (admin)", Tags: []string{"tunnels"}, Errors: []int{401, 403, 422},
	}, func(ctx context.Context, in *pageInput) (*listOutput[store.Tunnel], error) {
		if err := requireAdmin(ctx); err != nil {
			return nil, err
		}
		ts, err := s.cfg.Store.ListTunnels(ctx, in.After, in.Limit)
		if err != nil {
			return nil, err
		}
		return list(ts, func(t store.Tunnel) store.Tunnel { return t }), nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "create-tenant-deployment", Method: http.MethodPost, Path: "/api/tenant-deployments",
		Summary: "Register a tenant deployment (admin)", Tags: []string{"tenant-deployments"},
		DefaultStatus: http.StatusCreated, MaxBodyBytes: maxBodyBytes, Errors: []int{401, 403, 404, 413, 415, 422},
	}, func(ctx context.Context, in *struct {
		Body struct {
			CustomerID int64   `json:"customer_id" minimum:"1"`
			Name       string  `json:"name" minLength:"1" maxLength:"100"`
			TunnelID   *int64  `json:"tunnel_id,omitempty" minimum:"1"`
			BackendURL *string `json:"backend_url,omitempty" maxLength:"2048" doc:"Where the tunnel sends traffic, e.g. http://10.10.10.105:8069"`
		}
	}) (*itemOutput[store.TenantDeployment], error) {
		if err := requireAdmin(ctx); err != nil {
			return nil, err
		}
		if err := checkText(map[string]string{"name": in.Body.Name}); err != nil {
			return nil, err
		}
		if in.Body.BackendURL != nil {
			if err := s.checkBackend(*in.Body.BackendURL); err != nil {
				return nil, err
			}
		}
		d, err := s.cfg.Store.CreateTenantDeployment(ctx, principalFrom(ctx).Actor(), store.TenantDeployment{
			CustomerID: in.Body.CustomerID, Name: in.Body.Name, TunnelID: in.Body.TunnelID, BackendURL: in.Body.BackendURL})
		if err != nil {
			return nil, storeError(err)
		}
		return &itemOutput[store.TenantDeployment]{Body: d}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "list-tenant-deployments", Method: http.MethodGet, Path: "/api/tenant-deployments",
		Summary: "List tenant deployments (a customer token sees its own)", Tags: []string{"tenant-deployments"},
		Errors: []int{401, 422},
	}, func(ctx context.Context, in *pageInput) (*listOutput[store.TenantDeployment], error) {
		ds, err := s.cfg.Store.ListTenantDeployments(ctx, principalFrom(ctx).CustomerID, in.After, in.Limit)
		if err != nil {
			return nil, err
		}
		return list(ds, func(d store.TenantDeployment) store.TenantDeployment { return d }), nil
	})

	s.registerRouting()
	s.registerTokens()
	s.registerAgents()
}

// Token is the JSON of an API token; Token (the secret) is present only in the create response.
type Token struct {
	store.APIToken
	Token string `json:"token,omitempty" doc:"The secret, shown once"`
}

func (s *Server) registerTokens() {
	huma.Register(s.api, huma.Operation{
		OperationID: "create-token", Method: http.MethodPost, Path: "/api/tokens",
		Summary: "Create an API token (admin); the secret is shown once", Tags: []string{"tokens"},
		DefaultStatus: http.StatusCreated, MaxBodyBytes: maxBodyBytes, Errors: []int{401, 403, 404, 413, 415, 422},
	}, func(ctx context.Context, in *struct {
		Body struct {
			Role       string `json:"role" enum:"admin,customer"`
			CustomerID *int64 `json:"customer_id,omitempty" minimum:"1" doc:"Required for role customer"`
			Name       string `json:"name,omitempty" maxLength:"100"`
		}
	}) (*itemOutput[Token], error) {
		if err := requireAdmin(ctx); err != nil {
			return nil, err
		}
		b := in.Body
		if (b.Role == RoleCustomer) != (b.CustomerID != nil) {
			return nil, problem(http.StatusUnprocessableEntity, "validation_failed", "customer_id is required for role customer and not allowed for admin")
		}
		secret, hash := NewToken()
		t, err := s.cfg.Store.CreateAPIToken(ctx, principalFrom(ctx).Actor(), hash, b.Role, b.CustomerID, b.Name)
		if err != nil {
			return nil, storeError(err)
		}
		return &itemOutput[Token]{Body: Token{APIToken: t, Token: secret}}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "list-tokens", Method: http.MethodGet, Path: "/api/tokens",
		Summary: "List API tokens without their secrets (admin)", Tags: []string{"tokens"}, Errors: []int{401, 403, 422},
	}, func(ctx context.Context, in *pageInput) (*listOutput[Token], error) {
		if err := requireAdmin(ctx); err != nil {
			return nil, err
		}
		ts, err := s.cfg.Store.ListAPITokens(ctx, in.After, in.Limit)
		if err != nil {
			return nil, err
		}
		return list(ts, func(t store.APIToken) Token { return Token{APIToken: t} }), nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "revoke-token", Method: http.MethodDelete, Path: "/api/tokens/{id}",
		Summary: "Revoke an API token (admin)", Tags: []string{"tokens"},
		DefaultStatus: http.StatusNoContent, Errors: []int{401, 403, 404},
	}, func(ctx context.Context, in *idInput) (*struct{}, error) {
		if err := requireAdmin(ctx); err != nil {
			return nil, err
		}
		if err := s.cfg.Store.RevokeAPIToken(ctx, principalFrom(ctx).Actor(), in.ID); err != nil {
			return nil, storeError(err)
		}
		s.auth.forget(in.ID)
		return nil, nil
	})
}

func storeError(err error) error {
	var ce *store.ConflictError
	if errors.As(err, &ce) {
		return problem(http.StatusConflict, ce.Code, ce.Message)
	}
	var me *store.MissingError
	if errors.As(err, &me) {
		return problem(http.StatusNotFound, me.Code, me.Message)
	}
	if errors.Is(err, store.ErrNotFound) {
		return problem(http.StatusNotFound, "not_found", "not found")
	}
	return err
}
