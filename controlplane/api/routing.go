package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/jeturing/sajet-domains/controlplane/store"
)

// Changes to routing objects (customers, tunnels, tenant deployments) are admin-only. A customer
// token sees its own customer and tenant deployments; another customer's object is a 404 (as if
// it did not exist), its own a 403 when it tries to change it. Deletes are refused with 409 while
// anything still uses the object, and never cascade.

type customerPatchInput struct {
	ID   int64 `path:"id" minimum:"1"`
	Body struct {
		Email       Optional[string] `json:"email,omitempty" format:"email" maxLength:"254"`
		CompanyName Optional[string] `json:"company_name,omitempty" minLength:"1" maxLength:"200"`
		Plan        Optional[string] `json:"plan,omitempty" enum:"basic,enterprise"`
		DomainQuota Nullable[int32]  `json:"domain_quota,omitempty" minimum:"0" maximum:"100000" doc:"Override of the plan's quota; null: the plan's quota again"`
		RequireTXT  Optional[bool]   `json:"require_txt,omitempty" doc:"Require the TXT ownership proof before a domain is routed and provisioned"`
	}
}

type tunnelPatchInput struct {
	ID   int64 `path:"id" minimum:"1"`
	Body struct {
		Name               Optional[string] `json:"name,omitempty" minLength:"1" maxLength:"100" pattern:"^[A-Za-z0-9][A-Za-z0-9._-]*$" doc:"Agents name their tunnel in agent.yml (tunnel:): update it there too, or their next connection is refused"`
		CloudflareTunnelID Optional[string] `json:"cloudflare_tunnel_id,omitempty" format:"uuid" doc:"The tunnel's UUID; the Cloudflare records of its domains are updated to point at it"`
	}
}

type deploymentPatchInput struct {
	ID   int64 `path:"id" minimum:"1"`
	Body struct {
		Name       Optional[string] `json:"name,omitempty" minLength:"1" maxLength:"100"`
		TunnelID   Nullable[int64]  `json:"tunnel_id,omitempty" minimum:"1" doc:"Move the deployment's domains to this tunnel; null takes them out of any tunnel"`
		BackendURL Nullable[string] `json:"backend_url,omitempty" maxLength:"2048" doc:"Where the tunnel sends traffic, e.g. http://10.10.10.105:8069; null takes the domains out of the tunnel"`
	}
}

func customerNotFound() error {
	return problem(http.StatusNotFound, "customer_not_found", "customer not found")
}

func deploymentNotFound() error {
	return problem(http.StatusNotFound, "tenant_deployment_not_found", "tenant deployment not found")
}

func tunnelNotFound() error {
	return problem(http.StatusNotFound, "tunnel_not_found", "tunnel not found")
}

// notFoundAs maps the store's ErrNotFound to a 404 with the object's own code, and the rest as
// storeError does.
func notFoundAs(err error, nf func() error) error {
	if errors.Is(err, store.ErrNotFound) {
		return nf()
	}
	return storeError(err)
}

// customerForChange authorizes a change of customer id: 404 for a customer the caller cannot
// see, 403 for a customer token on its own customer.
func customerForChange(ctx context.Context, id int64) error {
	if !principalFrom(ctx).canSeeCustomer(id) {
		return customerNotFound()
	}
	return requireAdmin(ctx)
}

// visibleDeployment returns a tenant deployment the caller may see; others are a 404.
func (s *Server) visibleDeployment(ctx context.Context, id int64) (store.TenantDeployment, error) {
	d, err := s.cfg.Store.GetTenantDeployment(ctx, id)
	if err != nil {
		return d, notFoundAs(err, deploymentNotFound)
	}
	if !principalFrom(ctx).canSeeCustomer(d.CustomerID) {
		return store.TenantDeployment{}, deploymentNotFound()
	}
	return d, nil
}

func (s *Server) registerRouting() {
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

	huma.Register(s.api, huma.Operation{
		OperationID: "get-tunnel", Method: http.MethodGet, Path: "/api/tunnels/{id}",
		Summary: "Get a tunnel (admin)", Tags: []string{"tunnels"}, Errors: []int{401, 403, 404},
	}, func(ctx context.Context, in *idInput) (*itemOutput[store.Tunnel], error) {
		if err := requireAdmin(ctx); err != nil {
			return nil, err
		}
		t, err := s.cfg.Store.GetTunnel(ctx, in.ID)
		if err != nil {
			return nil, notFoundAs(err, tunnelNotFound)
		}
		return &itemOutput[store.Tunnel]{Body: t}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "update-tunnel", Method: http.MethodPatch, Path: "/api/tunnels/{id}",
		Summary: "Rename a tunnel or change its Cloudflare tunnel id (admin)", Tags: []string{"tunnels"},
		MaxBodyBytes: maxBodyBytes, Errors: []int{401, 403, 404, 409, 413, 415, 422},
	}, func(ctx context.Context, in *tunnelPatchInput) (*itemOutput[store.Tunnel], error) {
		if err := requireAdmin(ctx); err != nil {
			return nil, err
		}
		b := in.Body
		if !b.Name.Set && !b.CloudflareTunnelID.Set {
			return nil, nothingToChange("name", "cloudflare_tunnel_id")
		}
		if err := notNull(map[string]bool{"name": b.Name.Null, "cloudflare_tunnel_id": b.CloudflareTunnelID.Null}); err != nil {
			return nil, err
		}
		p := store.TunnelPatch{Name: b.Name.change(), CloudflareTunnelID: b.CloudflareTunnelID.change()}
		p.CloudflareTunnelID.Value = strings.ToLower(p.CloudflareTunnelID.Value)
		t, err := s.cfg.Store.UpdateTunnel(ctx, principalFrom(ctx).Actor(), in.ID, p)
		if err != nil {
			return nil, notFoundAs(err, tunnelNotFound)
		}
		return &itemOutput[store.Tunnel]{Body: t}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "delete-tunnel", Method: http.MethodDelete, Path: "/api/tunnels/{id}",
		Summary: "Delete a tunnel nothing uses any more (admin)", Tags: []string{"tunnels"},
		Description:   "Refused (409 tunnel_in_use) while tenant deployments or enrolled (not revoked) agents use it; the answer names them.",
		DefaultStatus: http.StatusNoContent, Errors: []int{401, 403, 404, 409},
	}, func(ctx context.Context, in *idInput) (*struct{}, error) {
		if err := requireAdmin(ctx); err != nil {
			return nil, err
		}
		if err := s.cfg.Store.DeleteTunnel(ctx, principalFrom(ctx).Actor(), in.ID); err != nil {
			return nil, notFoundAs(err, tunnelNotFound)
		}
		return nil, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "get-tenant-deployment", Method: http.MethodGet, Path: "/api/tenant-deployments/{id}",
		Summary: "Get a tenant deployment (a customer token sees its own)", Tags: []string{"tenant-deployments"},
		Errors: []int{401, 404},
	}, func(ctx context.Context, in *idInput) (*itemOutput[store.TenantDeployment], error) {
		d, err := s.visibleDeployment(ctx, in.ID)
		if err != nil {
			return nil, err
		}
		return &itemOutput[store.TenantDeployment]{Body: d}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "update-tenant-deployment", Method: http.MethodPatch, Path: "/api/tenant-deployments/{id}",
		Summary: "Change a tenant deployment: name, tunnel, backend (admin)", Tags: []string{"tenant-deployments"},
		Description: "A new backend_url or tunnel_id re-routes the deployment's domains in the same transaction: the tunnels concerned " +
			"get a new config version (the old one drops the rules, the new one gets them) and the domains' tunnel_ingress step is " +
			"pending until the agents acknowledge it. backend_url is checked by the agent's own rule validator (422 invalid_backend_url).",
		MaxBodyBytes: maxBodyBytes, Errors: []int{401, 403, 404, 409, 413, 415, 422},
	}, func(ctx context.Context, in *deploymentPatchInput) (*itemOutput[store.TenantDeployment], error) {
		if _, err := s.visibleDeployment(ctx, in.ID); err != nil {
			return nil, err
		}
		if err := requireAdmin(ctx); err != nil {
			return nil, err
		}
		b := in.Body
		if !b.Name.Set && !b.TunnelID.Set && !b.BackendURL.Set {
			return nil, nothingToChange("name", "tunnel_id", "backend_url")
		}
		if err := notNull(map[string]bool{"name": b.Name.Null}); err != nil {
			return nil, err
		}
		if b.Name.Set {
			if err := checkText(map[string]string{"name": b.Name.Value}); err != nil {
				return nil, err
			}
		}
		if b.BackendURL.Set && !b.BackendURL.Null {
			if err := s.checkBackend(b.BackendURL.Value); err != nil {
				return nil, err
			}
		}
		d, err := s.cfg.Store.UpdateTenantDeployment(ctx, principalFrom(ctx).Actor(), in.ID, store.DeploymentPatch{
			Name: b.Name.change(), TunnelID: b.TunnelID.change(), BackendURL: b.BackendURL.change()})
		if err != nil {
			return nil, notFoundAs(err, deploymentNotFound)
		}
		return &itemOutput[store.TenantDeployment]{Body: d}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "delete-tenant-deployment", Method: http.MethodDelete, Path: "/api/tenant-deployments/{id}",
		Summary: "Delete a tenant deployment no domain uses (admin)", Tags: []string{"tenant-deployments"},
		Description:   "Refused (409 tenant_deployment_in_use) while domains use it; the answer names them.",
		DefaultStatus: http.StatusNoContent, Errors: []int{401, 403, 404, 409},
	}, func(ctx context.Context, in *idInput) (*struct{}, error) {
		if _, err := s.visibleDeployment(ctx, in.ID); err != nil {
			return nil, err
		}
		if err := requireAdmin(ctx); err != nil {
			return nil, err
		}
		if err := s.cfg.Store.DeleteTenantDeployment(ctx, principalFrom(ctx).Actor(), in.ID); err != nil {
			return nil, notFoundAs(err, deploymentNotFound)
		}
		return nil, nil
	})
}

func (s *Server) updateCustomer(ctx context.Context, in *customerPatchInput) (*itemOutput[Customer], error) {
	if err := customerForChange(ctx, in.ID); err != nil {
		return nil, err
	}
	b := in.Body
	if !b.Email.Set && !b.CompanyName.Set && !b.Plan.Set && !b.DomainQuota.Set && !b.RequireTXT.Set {
		return nil, nothingToChange("email", "company_name", "plan", "domain_quota", "require_txt")
	}
	if err := notNull(map[string]bool{"email": b.Email.Null, "company_name": b.CompanyName.Null,
		"plan": b.Plan.Null, "require_txt": b.RequireTXT.Null}); err != nil {
		return nil, err
	}
	p := store.CustomerPatch{Email: b.Email.change(), CompanyName: b.CompanyName.change(), Plan: b.Plan.change(),
		DomainQuota: b.DomainQuota.change(), RequireTXT: b.RequireTXT.change()}
	p.Email.Value = strings.TrimSpace(p.Email.Value)
	p.CompanyName.Value = strings.TrimSpace(p.CompanyName.Value)
	if err := checkText(map[string]string{"email": p.Email.Value, "company_name": p.CompanyName.Value}); err != nil {
		return nil, err
	}
	if p.CompanyName.Set && p.CompanyName.Value == "" {
		return nil, invalid("company_name", "company_name must not be blank", b.CompanyName.Value)
	}
	c, err := s.cfg.Store.UpdateCustomer(ctx, principalFrom(ctx).Actor(), in.ID, p, s.cfg.Domains.PlanQuotas())
	if err != nil {
		return nil, notFoundAs(err, customerNotFound)
	}
	return &itemOutput[Customer]{Body: s.customerJSON(c)}, nil
}
