package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/jeturing/sajet-domains/controlplane/store"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// Agent is the JSON of an edge agent; Token is present only in the create response.
type Agent struct {
	store.Agent
	InSync bool `json:"in_sync" doc:"The agent last reported the tunnel's desired version"`
	// LastErrorStage is the apply stage of last_error (validate, write, restart, verify, rollback):
	// last_error is the agent's own report, "<stage>: <what failed>", quoted as it came.
	LastErrorStage string `json:"last_error_stage,omitempty" enum:"validate,write,restart,verify,rollback"`
	Token          string `json:"token,omitempty" doc:"The agent's secret for agent.yml, shown once"`
}

func agentJSON(a store.Agent) Agent {
	out := Agent{Agent: a, InSync: a.AppliedVersion != nil && *a.AppliedVersion >= a.ConfigVersion}
	if a.LastError != nil {
		if stage, _, ok := strings.Cut(*a.LastError, ":"); ok {
			switch stage {
			case "validate", "write", "restart", "verify", "rollback":
				out.LastErrorStage = stage
			}
		}
	}
	return out
}

func (s *Server) registerAgents() {
	huma.Register(s.api, huma.Operation{
		OperationID: "create-agent", Method: http.MethodPost, Path: "/api/agents",
		Summary: "Enrol an edge agent for a tunnel (admin); its token is shown once", Tags: []string{"agents"},
		DefaultStatus: http.StatusCreated, MaxBodyBytes: maxBodyBytes, Errors: []int{401, 403, 404, 409, 413, 415, 422},
	}, func(ctx context.Context, in *struct {
		Body struct {
			TunnelID int64  `json:"tunnel_id" minimum:"1"`
			Name     string `json:"name" minLength:"1" maxLength:"100" pattern:"^[A-Za-z0-9][A-Za-z0-9._-]*$" doc:"e.g. the tunnel host's name, pct-105"`
		}
	}) (*itemOutput[Agent], error) {
		if err := requireAdmin(ctx); err != nil {
			return nil, err
		}
		secret, hash := NewAgentToken()
		a, err := s.cfg.Store.CreateAgent(ctx, principalFrom(ctx).Actor(), in.Body.TunnelID, in.Body.Name, hash)
		if err != nil {
			return nil, storeError(err)
		}
		out := agentJSON(a)
		out.Token = secret
		return &itemOutput[Agent]{Body: out}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "list-agents", Method: http.MethodGet, Path: "/api/agents",
		Summary: "List edge agents with their applied version and last report (admin)", Tags: []string{"agents"},
		Errors: []int{401, 403, 422},
	}, func(ctx context.Context, in *pageInput) (*listOutput[Agent], error) {
		if err := requireAdmin(ctx); err != nil {
			return nil, err
		}
		as, err := s.cfg.Store.ListAgents(ctx, in.After, in.Limit)
		if err != nil {
			return nil, err
		}
		return list(as, agentJSON), nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "revoke-agent", Method: http.MethodDelete, Path: "/api/agents/{id}",
		Summary: "Revoke an edge agent (admin): its token stops working and its live session ends on every replica",
		Description: "The agent's session, on whichever control-plane replica holds it, is ended within seconds with an " +
			"`unauthorized` error the agent logs (it then retries only at its backoff cap). The agent no longer counts " +
			"for its tunnel's \"applied by every agent\" state, so domains that waited only for it are settled. " +
			"Revoking a revoked agent is a no-op.",
		Tags: []string{"agents"}, DefaultStatus: http.StatusNoContent, Errors: []int{401, 403, 404},
	}, func(ctx context.Context, in *idInput) (*struct{}, error) {
		if err := requireAdmin(ctx); err != nil {
			return nil, err
		}
		err := s.cfg.Store.RevokeAgent(ctx, principalFrom(ctx).Actor(), in.ID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, problem(http.StatusNotFound, "agent_not_found", i18n.T("agente no encontrado", "agent not found"))
		}
		if err != nil {
			return nil, err
		}
		return nil, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "rotate-agent-token", Method: http.MethodPost, Path: "/api/agents/{id}/rotate-token",
		Summary: "Give an edge agent a new token (admin); the new token is shown once and the old one stops working",
		Description: "A session opened with the old token is ended on every replica; put the new token in the agent's " +
			"agent.yml and restart it. 409 `agent_revoked` for a revoked agent.",
		Tags: []string{"agents"}, Errors: []int{401, 403, 404, 409},
	}, func(ctx context.Context, in *idInput) (*itemOutput[Agent], error) {
		if err := requireAdmin(ctx); err != nil {
			return nil, err
		}
		secret, hash := NewAgentToken()
		a, err := s.cfg.Store.RotateAgentToken(ctx, principalFrom(ctx).Actor(), in.ID, hash)
		if errors.Is(err, store.ErrNotFound) {
			return nil, problem(http.StatusNotFound, "agent_not_found", i18n.T("agente no encontrado", "agent not found"))
		}
		if err != nil {
			return nil, storeError(err)
		}
		out := agentJSON(a)
		out.Token = secret
		return &itemOutput[Agent]{Body: out}, nil
	})
}
