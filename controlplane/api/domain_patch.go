package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/jeturing/sajet-domains/controlplane/store"
)

type patchDomainInput struct {
	D    string `path:"d" maxLength:"300" doc:"Domain id, external hostname or platform hostname"`
	Body struct {
		TenantDeploymentID Nullable[int64] `json:"tenant_deployment_id,omitempty" minimum:"1" doc:"Move the domain to this tenant deployment of its customer; null detaches it"`
		IsPrimary          Optional[bool]  `json:"is_primary,omitempty" doc:"One primary domain per tenant deployment"`
	}
}

// registerDomainPatch registers PATCH /api/domains/{d}: a customer token on its own domains, an
// admin on any, resolved and authorized like GET and DELETE.
func (s *Server) registerDomainPatch() {
	huma.Register(s.api, huma.Operation{
		OperationID: "update-domain", Method: http.MethodPatch, Path: "/api/domains/{d}",
		Summary: "Move a domain to another tenant deployment or change is_primary", Tags: []string{"domains"},
		Description: "A move re-routes the domain in the same transaction: its old tunnel drops its rules and its new tunnel gets them " +
			"in a new config version; tunnel_ingress is pending until the agents acknowledge it. The tenant deployment must belong to " +
			"the domain's customer (404 tenant_deployment_not_found); a second primary is 409 primary_exists.",
		MaxBodyBytes: maxBodyBytes, Errors: []int{401, 404, 409, 413, 415, 422},
	}, func(ctx context.Context, in *patchDomainInput) (*domainOutput, error) {
		b := in.Body
		if !b.TenantDeploymentID.Set && !b.IsPrimary.Set {
			return nil, nothingToChange("tenant_deployment_id", "is_primary")
		}
		if err := notNull(map[string]bool{"is_primary": b.IsPrimary.Null}); err != nil {
			return nil, err
		}
		d, err := s.visibleDomain(ctx, in.D)
		if err != nil {
			return nil, err
		}
		d, err = s.cfg.Domains.UpdateRouting(ctx, principalFrom(ctx).Actor(), d, store.DomainPatch{
			TenantDeploymentID: b.TenantDeploymentID.change(), IsPrimary: b.IsPrimary.change()})
		if err != nil {
			return nil, fromDomainError(ctx, err)
		}
		out := &domainOutput{Body: s.domainJSON(ctx, d)}
		if err := s.withAlerts(ctx, &out.Body); err != nil {
			return nil, err
		}
		return out, nil
	})
}
