// Tunnels: the Cloudflare Tunnels tenants are reached through (admin only).

package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/jeturing/sajet-domains/controlplane/store"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// registerTunnels registers the tunnels endpoints.
func (s *Server) registerTunnels() {
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
}

type tunnelPatchInput struct {
	ID   int64 `path:"id" minimum:"1"`
	Body struct {
		Name               Optional[string] `json:"name,omitempty" minLength:"1" maxLength:"100" pattern:"^[A-Za-z0-9][A-Za-z0-9._-]*$" doc:"Agents name their tunnel in agent.yml (tunnel:): update it there too, or their next connection is refused"`
		CloudflareTunnelID Optional[string] `json:"cloudflare_tunnel_id,omitempty" format:"uuid" doc:"The tunnel's UUID; the Cloudflare records of its domains are updated to point at it"`
	}
}

func tunnelNotFound() error {
	return problem(http.StatusNotFound, "tunnel_not_found", i18n.T("túnel no encontrado", "tunnel not found"))
}
