package api

// The automation's API (docs/AUTOMATION.md): alerts, recorded DNS checks and notifications of
// domains, webhook endpoints with their delivery log, and the test clock switch. A customer token
// sees only its own alerts, notifications, endpoints and deliveries (another customer's are 404,
// as if they did not exist); an admin sees all and manages the admin-wide endpoints.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/jeturing/sajet-domains/controlplane/automation"
	"github.com/jeturing/sajet-domains/controlplane/dnsverify"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/internal/i18n"
)

// Alert is the JSON of an alert.
type Alert struct {
	ID         int64      `json:"id"`
	Kind       string     `json:"kind" enum:"domain_unverified,dns_propagation_error,certificate_expiring,certificate_renewal_failed,domain_misconfigured,checks_stalled"`
	Severity   string     `json:"severity" enum:"warning,critical"`
	DomainID   *int64     `json:"domain_id" doc:"null for platform-wide alerts (checks_stalled)"`
	CustomerID *int64     `json:"customer_id"`
	Hostname   *string    `json:"hostname"`
	Message    string     `json:"message" doc:"In the request's language"`
	OpenedAt   time.Time  `json:"opened_at"`
	LastSeenAt time.Time  `json:"last_seen_at"`
	ResolvedAt *time.Time `json:"resolved_at"`
	Open       bool       `json:"open"`
}

func alertJSON(ctx context.Context, a store.Alert) Alert {
	return Alert{ID: a.ID, Kind: a.Kind, Severity: a.Severity, DomainID: a.DomainID, CustomerID: a.CustomerID, Hostname: a.Hostname,
		Message: a.Message.In(i18n.From(ctx)), OpenedAt: a.OpenedAt, LastSeenAt: a.LastSeenAt, ResolvedAt: a.ResolvedAt,
		Open: a.ResolvedAt == nil}
}

type listAlertsInput struct {
	Status     string `query:"status" enum:"open,resolved" doc:"Default: both"`
	Kind       string `query:"kind" enum:"domain_unverified,dns_propagation_error,certificate_expiring,certificate_renewal_failed,domain_misconfigured,checks_stalled"`
	CustomerID int64  `query:"customer_id" minimum:"0" doc:"Admin: one customer's alerts"`
	Domain     string `query:"domain" maxLength:"300" doc:"One domain's alerts: id, external hostname or platform hostname"`
	Limit      int    `query:"limit" minimum:"1" maximum:"500" default:"50"`
	Cursor     string `query:"cursor" maxLength:"64" doc:"next_cursor of the previous page"`
}

type pageOutput[T any] struct {
	Body struct {
		Items      []T    `json:"items"`
		NextCursor string `json:"next_cursor,omitempty"`
	}
}

func page[T, U any](items []T, limit int, id func(T) int64, conv func(T) U) *pageOutput[U] {
	out := &pageOutput[U]{}
	out.Body.Items = make([]U, 0, len(items))
	for _, it := range items {
		out.Body.Items = append(out.Body.Items, conv(it))
	}
	if len(items) == limit && limit > 0 {
		out.Body.NextCursor = encodeCursor(id(items[len(items)-1]))
	}
	return out
}

func cursorBefore(c string) (int64, error) {
	if c == "" {
		return 0, nil
	}
	id, err := decodeCursor(c)
	if err != nil || id == 0 {
		return 0, problem(http.StatusUnprocessableEntity, "invalid_cursor",
			i18n.T("el cursor no es uno que haya devuelto esta API", "cursor is not one this API returned"))
	}
	return id, nil
}

// ownCustomer narrows a customer_id filter to what the caller may see: a customer token always
// its own (another customer's filter is reported as empty by ok=false).
func ownCustomer(ctx context.Context, id int64) (int64, bool) {
	p := principalFrom(ctx)
	if p.Role == RoleCustomer {
		if id != 0 && id != p.CustomerID {
			return 0, false
		}
		return p.CustomerID, true
	}
	return id, true
}

// Check is a recorded DNS check of a domain, with what every resolver saw.
type Check struct {
	ID           int64                      `json:"id"`
	CheckedAt    time.Time                  `json:"checked_at"`
	Result       string                     `json:"result" enum:"ok,wrong,error,disagree,expired"`
	Automatic    bool                       `json:"automatic" doc:"false for a verify someone asked for"`
	Health       string                     `json:"health" doc:"The domain's health after the check"`
	Reason       string                     `json:"reason,omitempty"`
	Message      string                     `json:"message,omitempty"`
	Expected     string                     `json:"expected,omitempty"`
	Found        *string                    `json:"found,omitempty"`
	NegativeTTL  *int                       `json:"negative_ttl_seconds,omitempty" doc:"How long resolvers may keep answering that the record does not exist"`
	Resolvers    []dnsverify.ResolverResult `json:"resolvers"`
	Instructions string                     `json:"instructions,omitempty"`
}

func checkJSON(ctx context.Context, c store.Check) Check {
	out := Check{ID: c.ID, CheckedAt: c.CheckedAt, Result: c.Result, Automatic: c.Automatic, Health: c.Health,
		Resolvers: []dnsverify.ResolverResult{}}
	var r dnsverify.Result
	if len(c.Evidence) > 0 && json.Unmarshal(c.Evidence, &r) == nil {
		l := i18n.From(ctx)
		out.Reason, out.Message, out.Expected, out.Found = r.Reason, r.Message.In(l), r.Expected, r.Found
		out.Instructions = r.Instructions.In(l)
		out.Resolvers = nonNil(r.Resolvers)
		if r.NegativeTTL > 0 {
			n := r.NegativeTTL
			out.NegativeTTL = &n
		}
	}
	return out
}

// Notification is the JSON of a customer notification (an email, sent or only recorded).
type Notification struct {
	ID         int64      `json:"id"`
	Kind       string     `json:"kind"`
	CustomerID *int64     `json:"customer_id"`
	DomainID   *int64     `json:"domain_id"`
	EndpointID *int64     `json:"endpoint_id"`
	Status     string     `json:"status" enum:"pending,sent,failed,recorded" doc:"recorded: no SMTP server is configured, so it was kept here and not sent"`
	To         *string    `json:"to"`
	Lang       string     `json:"lang"`
	Subject    string     `json:"subject"`
	Text       string     `json:"text" doc:"The email's text part"`
	Attempts   int        `json:"attempts"`
	LastError  *string    `json:"last_error"`
	CreatedAt  time.Time  `json:"created_at"`
	SentAt     *time.Time `json:"sent_at"`
}

func notificationJSON(n store.Notification) Notification {
	out := Notification{ID: n.ID, Kind: n.Kind, CustomerID: n.CustomerID, DomainID: n.DomainID, EndpointID: n.EndpointID,
		Status: n.Status, To: n.To, Lang: n.Lang, Attempts: n.Attempts, LastError: n.LastError, CreatedAt: n.CreatedAt, SentAt: n.SentAt}
	if n.Subject != nil {
		out.Subject = *n.Subject
	}
	if r, err := automation.Render(n); err == nil {
		out.Subject, out.Text = r.Subject, r.Text
	}
	return out
}

type listNotificationsInput struct {
	CustomerID int64  `query:"customer_id" minimum:"0" doc:"Admin: one customer's notifications"`
	Domain     string `query:"domain" maxLength:"300"`
	Status     string `query:"status" enum:"pending,sent,failed,recorded"`
	Limit      int    `query:"limit" minimum:"1" maximum:"500" default:"50"`
	Cursor     string `query:"cursor" maxLength:"64"`
}

type domainChecksInput struct {
	D     string `path:"d" maxLength:"300" doc:"Domain id, external hostname or platform hostname"`
	Limit int    `query:"limit" minimum:"1" maximum:"20" default:"20"`
}

// attachAlerts fills the open alerts of the domains in items.
func (s *Server) attachAlerts(ctx context.Context, items []Domain) error {
	ids := make([]int64, len(items))
	for i, d := range items {
		ids[i] = d.ID
	}
	open, err := s.cfg.Store.OpenAlertsOf(ctx, ids)
	if err != nil {
		return err
	}
	for i := range items {
		items[i].Alerts = make([]Alert, 0, len(open[items[i].ID]))
		for _, a := range open[items[i].ID] {
			items[i].Alerts = append(items[i].Alerts, alertJSON(ctx, a))
		}
	}
	return nil
}

// withAlerts fills one domain's open alerts.
func (s *Server) withAlerts(ctx context.Context, d *Domain) error {
	items := []Domain{*d}
	if err := s.attachAlerts(ctx, items); err != nil {
		return err
	}
	*d = items[0]
	return nil
}

func (s *Server) registerAutomation() {
	huma.Register(s.api, huma.Operation{
		OperationID: "list-alerts", Method: http.MethodGet, Path: "/api/alerts",
		Summary: "List alerts, newest first (a customer token sees its own)", Tags: []string{"alerts"},
		Description: "One open alert per kind and domain, with when it opened, was last seen and was resolved. " +
			"Platform-wide alerts (checks_stalled) are shown to admins only.",
		Errors: []int{401, 404, 422},
	}, func(ctx context.Context, in *listAlertsInput) (*pageOutput[Alert], error) {
		f := store.AlertFilter{Kind: in.Kind, Status: in.Status, Limit: in.Limit}
		cust, ok := ownCustomer(ctx, in.CustomerID)
		if !ok {
			return page([]store.Alert{}, 0, nil, func(a store.Alert) Alert { return alertJSON(ctx, a) }), nil
		}
		f.CustomerID = cust
		if in.Domain != "" {
			d, err := s.visibleDomain(ctx, in.Domain)
			if err != nil {
				return nil, err
			}
			f.DomainID = d.ID
		}
		var err error
		if f.Before, err = cursorBefore(in.Cursor); err != nil {
			return nil, err
		}
		as, err := s.cfg.Store.ListAlerts(ctx, f)
		if err != nil {
			return nil, err
		}
		return page(as, f.Limit, func(a store.Alert) int64 { return a.ID }, func(a store.Alert) Alert { return alertJSON(ctx, a) }), nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "domain-checks", Method: http.MethodGet, Path: "/api/domains/{d}/checks",
		Summary: "A domain's recent DNS checks, with every resolver's answer", Tags: []string{"domains"},
		Description: "Every check that was not a plain success, and the success that ended a run of them (the last 20 are kept).",
		Errors:      []int{401, 404, 422},
	}, func(ctx context.Context, in *domainChecksInput) (*listOutput[Check], error) {
		d, err := s.visibleDomain(ctx, in.D)
		if err != nil {
			return nil, err
		}
		cs, err := s.cfg.Store.DomainChecks(ctx, d.ID, in.Limit)
		if err != nil {
			return nil, err
		}
		return list(cs, func(c store.Check) Check { return checkJSON(ctx, c) }), nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "list-notifications", Method: http.MethodGet, Path: "/api/notifications",
		Summary: "Customer notifications (emails), sent or recorded, newest first", Tags: []string{"notifications"},
		Description: "Without an SMTP server (--smtp-host) notifications are recorded here with status recorded, not sent: " +
			"this is the development mailbox. A customer token sees its own.",
		Errors: []int{401, 404, 422},
	}, func(ctx context.Context, in *listNotificationsInput) (*pageOutput[Notification], error) {
		f := store.NotificationFilter{Status: in.Status, Limit: in.Limit}
		cust, ok := ownCustomer(ctx, in.CustomerID)
		if !ok {
			return page([]store.Notification{}, 0, nil, notificationJSON), nil
		}
		f.CustomerID = cust
		if in.Domain != "" {
			d, err := s.visibleDomain(ctx, in.Domain)
			if err != nil {
				return nil, err
			}
			f.DomainID = d.ID
		}
		var err error
		if f.Before, err = cursorBefore(in.Cursor); err != nil {
			return nil, err
		}
		ns, err := s.cfg.Store.ListNotifications(ctx, f)
		if err != nil {
			return nil, err
		}
		return page(ns, f.Limit, func(n store.Notification) int64 { return n.ID }, notificationJSON), nil
	})

	s.registerWebhookEndpoints()
	s.registerTestClock()
}

type testClockInput struct {
	Body struct {
		AdvanceSeconds int64 `json:"advance_seconds" minimum:"0" maximum:"31536000" doc:"How far to move the automation's clock forward"`
	}
}

type testClockOutput struct {
	Body struct {
		Now time.Time `json:"now" doc:"The automation's time after the move"`
	}
}

// registerTestClock registers POST /api/test/clock when the binary runs with --test-clock (a
// test switch): it moves the automation's clock forward and runs the sweeps at once.
func (s *Server) registerTestClock() {
	if s.cfg.TestClock == nil {
		return
	}
	huma.Register(s.api, huma.Operation{
		OperationID: "test-clock", Method: http.MethodPost, Path: "/api/test/clock",
		Summary: "TEST SWITCH (--test-clock): move the automation's clock forward and run its sweeps (admin)", Tags: []string{"test"},
		MaxBodyBytes: 1024, Errors: []int{401, 403, 413, 415, 422},
	}, func(ctx context.Context, in *testClockInput) (*testClockOutput, error) {
		if err := requireAdmin(ctx); err != nil {
			return nil, err
		}
		now := s.cfg.TestClock.Advance(time.Duration(in.Body.AdvanceSeconds) * time.Second)
		if s.cfg.Automation != nil {
			if err := s.cfg.Automation.Kick(ctx); err != nil {
				return nil, err
			}
		}
		out := &testClockOutput{}
		out.Body.Now = now
		return out, nil
	})
}

// fromAutomationError maps the automation's refusals: 503 when webhooks are off, else 422.
func fromAutomationError(err error) error {
	var ae *automation.Error
	if errors.As(err, &ae) {
		if ae.Unavailable {
			return problem(http.StatusServiceUnavailable, ae.Code, ae.Message)
		}
		return problem(http.StatusUnprocessableEntity, ae.Code, ae.Message)
	}
	return storeError(err)
}
