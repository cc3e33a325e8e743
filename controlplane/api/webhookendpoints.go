package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/jeturing/sajet-domains/controlplane/automation"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/internal/i18n"
)

// WebhookEndpoint is the JSON of a webhook endpoint; its signing secret appears only in the
// answers that create or rotate it.
type WebhookEndpoint struct {
	ID             int64      `json:"id"`
	CustomerID     *int64     `json:"customer_id" doc:"null: admin-wide, receives every customer's events"`
	URL            string     `json:"url"`
	Description    string     `json:"description"`
	EventTypes     []string   `json:"event_types" doc:"Empty: every type"`
	Enabled        bool       `json:"enabled"`
	DisabledReason *string    `json:"disabled_reason" enum:"gone,failing,manual" doc:"gone: the receiver answered 410; failing: every attempt failed for days"`
	DisabledAt     *time.Time `json:"disabled_at"`
	FailingSince   *time.Time `json:"failing_since" doc:"The first failed attempt since the last success"`
	SigningSecrets int        `json:"signing_secrets" doc:"2 during a rotation's grace period (both sign)"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
	Secret         string     `json:"secret,omitempty" doc:"whsec_…: shown once, when created or rotated; never again"`
}

func endpointJSON(e store.WebhookEndpoint) WebhookEndpoint {
	return WebhookEndpoint{ID: e.ID, CustomerID: e.CustomerID, URL: e.URL, Description: e.Description, EventTypes: nonNil(e.EventTypes),
		Enabled: e.Enabled, DisabledReason: e.DisabledReason, DisabledAt: e.DisabledAt, FailingSince: e.FailingSince,
		SigningSecrets: e.Secrets, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt}
}

type createEndpointInput struct {
	Body struct {
		URL         string   `json:"url" minLength:"1" maxLength:"2048" doc:"https://…; checked now and again at every delivery: private, loopback and link-local addresses are refused"`
		Description string   `json:"description,omitempty" maxLength:"500"`
		EventTypes  []string `json:"event_types,omitempty" maxItems:"16" doc:"Event types to receive; empty or absent: every type"`
		Enabled     *bool    `json:"enabled,omitempty" doc:"Default true"`
		CustomerID  int64    `json:"customer_id,omitempty" minimum:"1" doc:"Admin: the customer it belongs to; absent: admin-wide. A customer token uses its own."`
	}
}

type endpointIDInput struct {
	ID int64 `path:"id" minimum:"1"`
}

type patchEndpointInput struct {
	ID   int64 `path:"id" minimum:"1"`
	Body struct {
		URL         Optional[string]   `json:"url,omitempty" minLength:"1" maxLength:"2048"`
		Description Optional[string]   `json:"description,omitempty" maxLength:"500"`
		EventTypes  Optional[[]string] `json:"event_types,omitempty" maxItems:"16"`
		Enabled     Optional[bool]     `json:"enabled,omitempty" doc:"true again forgets the failures that disabled it"`
	}
}

type listEndpointsInput struct {
	CustomerID int64 `query:"customer_id" minimum:"0" doc:"Admin: one customer's endpoints"`
	AdminWide  bool  `query:"admin_wide" doc:"Admin: only the admin-wide endpoints"`
	Limit      int   `query:"limit" minimum:"1" maximum:"100" default:"100"`
	After      int64 `query:"after" minimum:"0" doc:"Return ids greater than this (cursor)"`
}

type rotateInput struct {
	ID   int64 `path:"id" minimum:"1"`
	Body struct {
		GracePeriodSeconds *int64 `json:"grace_period_seconds,omitempty" minimum:"0" maximum:"604800" doc:"How long the old secret keeps signing beside the new one; default 86400"`
	}
}

type recoverInput struct {
	ID   int64 `path:"id" minimum:"1"`
	Body struct {
		Since time.Time  `json:"since" doc:"Failed deliveries created at or after this are sent again"`
		Until *time.Time `json:"until,omitempty" doc:"…and before this (default: up to now); at most 30 days after since"`
	}
}

type recoverOutput struct {
	Body struct {
		Recovered int `json:"recovered" doc:"How many failed deliveries are being sent again (same webhook-id)"`
	}
}

type testOutput struct {
	Status int
	Body   struct {
		WebhookID string `json:"webhook_id" doc:"The webhook-id header of the test message"`
	}
}

type listDeliveriesInput struct {
	ID     int64  `path:"id" minimum:"1"`
	Status string `query:"status" enum:"pending,succeeded,failed"`
	Limit  int    `query:"limit" minimum:"1" maximum:"500" default:"50"`
	Cursor string `query:"cursor" maxLength:"64"`
}

// Delivery is one event's delivery to one endpoint.
type Delivery struct {
	store.Delivery
	WebhookID string          `json:"webhook_id"`
	Attempts  []store.Attempt `json:"attempt_log,omitempty" doc:"Every attempt: when, how long, the status and an excerpt of the answer"`
}

func deliveryJSON(d store.Delivery) Delivery {
	return Delivery{Delivery: d, WebhookID: store.MessageID(d.EventID)}
}

var (
	msgEndpointAbsent = i18n.T("el endpoint de webhook no existe", "the webhook endpoint does not exist")
	msgDeliveryAbsent = i18n.T("la entrega no existe", "the delivery does not exist")
)

func endpointNotFound() error {
	return problem(http.StatusNotFound, "endpoint_not_found", msgEndpointAbsent)
}

// visibleEndpoint reads an endpoint the caller may see: a customer its own, an admin any.
func (s *Server) visibleEndpoint(ctx context.Context, id int64) (store.WebhookEndpoint, error) {
	e, err := s.cfg.Store.GetWebhookEndpoint(ctx, id)
	if err != nil {
		return e, notFoundAs(err, endpointNotFound)
	}
	p := principalFrom(ctx)
	if p.Role != RoleAdmin && (e.CustomerID == nil || *e.CustomerID != p.CustomerID) {
		return e, endpointNotFound()
	}
	return e, nil
}

func (s *Server) webhooksOn() error {
	if s.cfg.Automation == nil || !s.cfg.Automation.Webhooks() {
		return fromAutomationError(automation.ErrWebhooksOff)
	}
	return nil
}

func (s *Server) registerWebhookEndpoints() {
	const tag = "webhooks"
	huma.Register(s.api, huma.Operation{
		OperationID: "create-webhook-endpoint", Method: http.MethodPost, Path: "/api/webhook-endpoints",
		Summary: "Create a webhook endpoint; the answer holds its signing secret, shown this once", Tags: []string{tag},
		Description: "Events are sent as Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature: v1,<base64 HMAC-SHA256>). " +
			"The URL is refused (422 invalid_url) when it resolves to a loopback, private, link-local or other special address. " +
			"503 webhooks_disabled when the control plane runs without --webhook-secret-key.",
		DefaultStatus: http.StatusCreated, MaxBodyBytes: 16 << 10, Errors: []int{401, 404, 409, 413, 415, 422, 503},
	}, func(ctx context.Context, in *createEndpointInput) (*itemOutput[WebhookEndpoint], error) {
		if err := s.webhooksOn(); err != nil {
			return nil, err
		}
		b := in.Body
		if err := checkText(map[string]string{"url": b.URL, "description": b.Description}); err != nil {
			return nil, err
		}
		var cust *int64
		p := principalFrom(ctx)
		switch {
		case p.Role == RoleCustomer:
			if b.CustomerID != 0 && b.CustomerID != p.CustomerID {
				return nil, problem(http.StatusNotFound, "customer_not_found", customerMissing(b.CustomerID))
			}
			id := p.CustomerID
			cust = &id
		case b.CustomerID != 0:
			cust = &b.CustomerID
		}
		enabled := b.Enabled == nil || *b.Enabled
		e, secret, err := s.cfg.Automation.CreateEndpoint(ctx, p.Actor(), automation.EndpointInput{CustomerID: cust, URL: b.URL,
			Description: b.Description, EventTypes: b.EventTypes, Enabled: enabled})
		if err != nil {
			return nil, fromAutomationError(err)
		}
		out := endpointJSON(e)
		out.Secret = secret
		return &itemOutput[WebhookEndpoint]{Body: out}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "list-webhook-endpoints", Method: http.MethodGet, Path: "/api/webhook-endpoints",
		Summary: "List webhook endpoints (a customer token sees its own)", Tags: []string{tag}, Errors: []int{401, 422},
	}, func(ctx context.Context, in *listEndpointsInput) (*listOutput[WebhookEndpoint], error) {
		f := store.EndpointFilter{After: in.After, Limit: in.Limit}
		p := principalFrom(ctx)
		switch {
		case p.Role == RoleCustomer:
			if (in.CustomerID != 0 && in.CustomerID != p.CustomerID) || in.AdminWide {
				return list([]store.WebhookEndpoint{}, endpointJSON), nil
			}
			id := p.CustomerID
			f.CustomerID = &id
		case in.CustomerID != 0:
			f.CustomerID = &in.CustomerID
		}
		f.AdminWide = in.AdminWide
		es, err := s.cfg.Store.ListWebhookEndpoints(ctx, f)
		if err != nil {
			return nil, err
		}
		return list(es, endpointJSON), nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "get-webhook-endpoint", Method: http.MethodGet, Path: "/api/webhook-endpoints/{id}",
		Summary: "Get a webhook endpoint", Tags: []string{tag}, Errors: []int{401, 404, 422},
	}, func(ctx context.Context, in *endpointIDInput) (*itemOutput[WebhookEndpoint], error) {
		e, err := s.visibleEndpoint(ctx, in.ID)
		if err != nil {
			return nil, err
		}
		return &itemOutput[WebhookEndpoint]{Body: endpointJSON(e)}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "update-webhook-endpoint", Method: http.MethodPatch, Path: "/api/webhook-endpoints/{id}",
		Summary: "Change a webhook endpoint's URL, description, event types or enabled", Tags: []string{tag},
		MaxBodyBytes: 16 << 10, Errors: []int{401, 404, 413, 415, 422, 503},
	}, func(ctx context.Context, in *patchEndpointInput) (*itemOutput[WebhookEndpoint], error) {
		b := in.Body
		if !b.URL.Set && !b.Description.Set && !b.EventTypes.Set && !b.Enabled.Set {
			return nil, nothingToChange("url", "description", "event_types", "enabled")
		}
		if err := notNull(map[string]bool{"url": b.URL.Null, "description": b.Description.Null, "enabled": b.Enabled.Null}); err != nil {
			return nil, err
		}
		if err := checkText(map[string]string{"url": b.URL.Value, "description": b.Description.Value}); err != nil {
			return nil, err
		}
		if err := s.webhooksOn(); err != nil {
			return nil, err
		}
		if _, err := s.visibleEndpoint(ctx, in.ID); err != nil {
			return nil, err
		}
		types := b.EventTypes.change()
		if b.EventTypes.Null {
			types.Value = nil // null: every type, like []
		}
		e, err := s.cfg.Automation.UpdateEndpoint(ctx, principalFrom(ctx).Actor(), in.ID, store.EndpointPatch{
			URL: b.URL.change(), Description: b.Description.change(), EventTypes: types, Enabled: b.Enabled.change()})
		if err != nil {
			return nil, fromAutomationError(notFoundAs(err, endpointNotFound))
		}
		return &itemOutput[WebhookEndpoint]{Body: endpointJSON(e)}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "delete-webhook-endpoint", Method: http.MethodDelete, Path: "/api/webhook-endpoints/{id}",
		Summary: "Delete a webhook endpoint, its secrets and its delivery log", Tags: []string{tag},
		DefaultStatus: http.StatusNoContent, Errors: []int{401, 404, 422},
	}, func(ctx context.Context, in *endpointIDInput) (*struct{}, error) {
		if _, err := s.visibleEndpoint(ctx, in.ID); err != nil {
			return nil, err
		}
		if err := s.cfg.Store.DeleteWebhookEndpoint(ctx, principalFrom(ctx).Actor(), in.ID); err != nil {
			return nil, notFoundAs(err, endpointNotFound)
		}
		return nil, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "rotate-webhook-secret", Method: http.MethodPost, Path: "/api/webhook-endpoints/{id}/rotate-secret",
		Summary: "Give an endpoint a new signing secret (shown once); the old one keeps signing beside it for the grace period", Tags: []string{tag},
		MaxBodyBytes: 1024, Errors: []int{401, 404, 413, 415, 422, 503},
	}, func(ctx context.Context, in *rotateInput) (*itemOutput[WebhookEndpoint], error) {
		if err := s.webhooksOn(); err != nil {
			return nil, err
		}
		if _, err := s.visibleEndpoint(ctx, in.ID); err != nil {
			return nil, err
		}
		var grace *time.Duration
		if in.Body.GracePeriodSeconds != nil {
			g := time.Duration(*in.Body.GracePeriodSeconds) * time.Second
			grace = &g
		}
		e, secret, err := s.cfg.Automation.RotateSecret(ctx, principalFrom(ctx).Actor(), in.ID, grace)
		if err != nil {
			return nil, fromAutomationError(notFoundAs(err, endpointNotFound))
		}
		out := endpointJSON(e)
		out.Secret = secret
		return &itemOutput[WebhookEndpoint]{Body: out}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "test-webhook-endpoint", Method: http.MethodPost, Path: "/api/webhook-endpoints/{id}/test",
		Summary: "Send a webhook.test event to the endpoint (even a disabled one); its delivery shows in the log", Tags: []string{tag},
		DefaultStatus: http.StatusAccepted, Errors: []int{401, 404, 422, 503},
	}, func(ctx context.Context, in *endpointIDInput) (*testOutput, error) {
		if err := s.webhooksOn(); err != nil {
			return nil, err
		}
		e, err := s.visibleEndpoint(ctx, in.ID)
		if err != nil {
			return nil, err
		}
		id, err := s.cfg.Automation.TestEndpoint(ctx, e)
		if err != nil {
			return nil, fromAutomationError(err)
		}
		out := &testOutput{Status: http.StatusAccepted}
		out.Body.WebhookID = store.MessageID(id)
		return out, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "recover-webhook-deliveries", Method: http.MethodPost, Path: "/api/webhook-endpoints/{id}/recover",
		Summary: "Send again the endpoint's failed deliveries since a time (same webhook-id)", Tags: []string{tag},
		MaxBodyBytes: 1024, Errors: []int{401, 404, 413, 415, 422, 503},
	}, func(ctx context.Context, in *recoverInput) (*recoverOutput, error) {
		if err := s.webhooksOn(); err != nil {
			return nil, err
		}
		if _, err := s.visibleEndpoint(ctx, in.ID); err != nil {
			return nil, err
		}
		n, err := s.cfg.Automation.Recover(ctx, in.ID, in.Body.Since, in.Body.Until)
		if err != nil {
			return nil, fromAutomationError(err)
		}
		out := &recoverOutput{}
		out.Body.Recovered = n
		return out, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "list-webhook-deliveries", Method: http.MethodGet, Path: "/api/webhook-endpoints/{id}/deliveries",
		Summary: "An endpoint's delivery log, newest first", Tags: []string{tag}, Errors: []int{401, 404, 422},
	}, func(ctx context.Context, in *listDeliveriesInput) (*pageOutput[Delivery], error) {
		if _, err := s.visibleEndpoint(ctx, in.ID); err != nil {
			return nil, err
		}
		before, err := cursorBefore(in.Cursor)
		if err != nil {
			return nil, err
		}
		ds, err := s.cfg.Store.ListDeliveries(ctx, store.DeliveryFilter{EndpointID: in.ID, Status: in.Status, Before: before, Limit: in.Limit})
		if err != nil {
			return nil, err
		}
		return page(ds, in.Limit, func(d store.Delivery) int64 { return d.ID }, deliveryJSON), nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "get-webhook-delivery", Method: http.MethodGet, Path: "/api/webhook-deliveries/{id}",
		Summary: "A delivery with every attempt (status, duration, response excerpt)", Tags: []string{tag}, Errors: []int{401, 404, 422},
	}, func(ctx context.Context, in *endpointIDInput) (*itemOutput[Delivery], error) {
		d, err := s.visibleDelivery(ctx, in.ID)
		if err != nil {
			return nil, err
		}
		attempts, err := s.cfg.Store.DeliveryAttempts(ctx, d.ID)
		if err != nil {
			return nil, err
		}
		out := deliveryJSON(d)
		out.Attempts = nonNil(attempts)
		return &itemOutput[Delivery]{Body: out}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "retry-webhook-delivery", Method: http.MethodPost, Path: "/api/webhook-deliveries/{id}/retry",
		Summary: "Send a delivery again now, with its webhook-id", Tags: []string{tag},
		DefaultStatus: http.StatusAccepted, Errors: []int{401, 404, 422, 503},
	}, func(ctx context.Context, in *endpointIDInput) (*struct{}, error) {
		if err := s.webhooksOn(); err != nil {
			return nil, err
		}
		d, err := s.visibleDelivery(ctx, in.ID)
		if err != nil {
			return nil, err
		}
		if err := s.cfg.Automation.RetryDelivery(ctx, d.ID); err != nil {
			return nil, notFoundAs(err, func() error { return problem(http.StatusNotFound, "delivery_not_found", msgDeliveryAbsent) })
		}
		return nil, nil
	})
}

// visibleDelivery reads a delivery whose endpoint the caller may see.
func (s *Server) visibleDelivery(ctx context.Context, id int64) (store.Delivery, error) {
	d, err := s.cfg.Store.GetDelivery(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return d, problem(http.StatusNotFound, "delivery_not_found", msgDeliveryAbsent)
	}
	if err != nil {
		return d, err
	}
	if _, err := s.visibleEndpoint(ctx, d.EndpointID); err != nil {
		return d, problem(http.StatusNotFound, "delivery_not_found", msgDeliveryAbsent)
	}
	return d, nil
}
