package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/jeturing/sajet-domains/controlplane/store"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

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
			return nil, problem(http.StatusUnprocessableEntity, "validation_failed", i18n.T("customer_id es obligatorio con el rol customer y no se permite con admin", "customer_id is required for role customer and not allowed for admin"))
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
