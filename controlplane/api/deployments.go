// Tenant deployments: a customer's Odoo tenant, the tunnel it sits behind and its backend URL.

package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/jeturing/sajet-domains/controlplane/store"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// registerDeployments registers the deployments endpoints.
func (s *Server) registerDeployments() {
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

type deploymentPatchInput struct {
	ID   int64 `path:"id" minimum:"1"`
	Body struct {
		Name       Optional[string] `json:"name,omitempty" minLength:"1" maxLength:"100"`
		TunnelID   Nullable[int64]  `json:"tunnel_id,omitempty" minimum:"1" doc:"Move the deployment's domains to this tunnel; null takes them out of any tunnel"`
		BackendURL Nullable[string] `json:"backend_url,omitempty" maxLength:"2048" doc:"Where the tunnel sends traffic, e.g. http://10.10.10.105:8069; null takes the domains out of the tunnel"`
	}
}

func deploymentNotFound() error {
	return problem(http.StatusNotFound, "tenant_deployment_not_found", i18n.T("despliegue no encontrado", "tenant deployment not found"))
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
