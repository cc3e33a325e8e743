package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/jeturing/sajet-domains/controlplane/dnsverify"
	"github.com/jeturing/sajet-domains/controlplane/domains"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/shared/hostname"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// Domain is the JSON of a custom domain: the frontend contract's fields first (docs/API.md), then ours.
type Domain struct {
	ID                       int64         `json:"id"`
	CustomerID               int64         `json:"customer_id"`
	TenantDeploymentID       *int64        `json:"tenant_deployment_id"`
	ExternalDomain           string        `json:"external_domain"`
	ExternalDomainUnicode    string        `json:"external_domain_unicode" doc:"Display form of an IDN hostname"`
	SajetSubdomain           string        `json:"sajet_subdomain"`
	SajetFullDomain          string        `json:"sajet_full_domain"`
	VerificationStatus       string        `json:"verification_status" enum:"pending,verifying,verified,failed"`
	VerificationToken        string        `json:"verification_token"`
	VerificationInstructions Instruction   `json:"verification_instructions"`
	DNSRecords               []Instruction `json:"dns_records" doc:"Every record the customer should publish"`
	VerifiedAt               *time.Time    `json:"verified_at"`
	TXTVerifiedAt            *time.Time    `json:"txt_verified_at"`
	CloudflareDNSRecordID    *string       `json:"cloudflare_dns_record_id"`
	CloudflareConfigured     bool          `json:"cloudflare_configured"`
	CustomHostnameID         *string       `json:"cloudflare_custom_hostname_id" doc:"SaaS mode: the Cloudflare custom hostname of external_domain"`
	CustomHostnameStatus     *string       `json:"custom_hostname_status" doc:"SaaS mode: pending, active, moved, …"`
	Warnings                 []string      `json:"warnings" doc:"Configuration problems that stop traffic even when every step is done, in the request's language"`
	TunnelIngressConfigured  bool          `json:"tunnel_ingress_configured"`
	SSLStatus                string        `json:"ssl_status"`
	IsActive                 bool          `json:"is_active"`
	IsPrimary                bool          `json:"is_primary"`
	State                    string        `json:"state" doc:"Derived lifecycle state for humans"`
	Steps                    []Step        `json:"steps" doc:"Activation conditions and what each waits for"`
	LastCheckedAt            *time.Time    `json:"last_checked_at"`
	LastCheck                *LastCheck    `json:"last_check,omitempty" doc:"The last DNS check's evidence, per resolver"`
	LastCheckStatus          *string       `json:"last_check_status" enum:"ok,failed,error" doc:"The last DNS check: ok, failed (the records are wrong) or error (no resolver answered). A verified domain stays verified when a later check fails."`
	LastError                *string       `json:"last_error" doc:"The last error, in the request's language"`
	IngressVersion           *int64        `json:"ingress_version"`
	ExpiresAt                *time.Time    `json:"expires_at" doc:"An unverified registration stops reserving the hostname after this"`
	DeletingAt               *time.Time    `json:"deleting_at"`
	CreatedAt                time.Time     `json:"created_at"`
	UpdatedAt                time.Time     `json:"updated_at"`
	CreatedBy                *string       `json:"created_by"`
	// The checks that never stop (docs/AUTOMATION.md).
	NextCheckAt       *time.Time `json:"next_check_at" doc:"When the next automatic DNS check is due; null: none (expired, being deleted)"`
	WrongAnswers      int        `json:"wrong_answers" doc:"Consecutive checks whose resolvers answered with the wrong records"`
	WrongSince        *time.Time `json:"wrong_since"`
	DNSErrorSince     *time.Time `json:"dns_error_since" doc:"Since when no resolver answers (timeouts, SERVFAIL): never makes a domain misconfigured"`
	ResolversMayTake  *int       `json:"resolvers_may_take_seconds" doc:"The SOA negative TTL of the last negative answer: how long resolvers may keep answering that the record does not exist"`
	MisconfiguredAt   *time.Time `json:"misconfigured_at"`
	GraceUntil        *time.Time `json:"grace_until" doc:"A misconfigured domain keeps serving until then, then is deactivated"`
	DeactivatedAt     *time.Time `json:"deactivated_at"`
	CertificateExpiry *time.Time `json:"certificate_expires_at" doc:"SaaS mode: the custom hostname's certificate expiry"`
	EventSeq          int64      `json:"event_seq" doc:"Number of the domain's last webhook event"`
	Alerts            []Alert    `json:"alerts" doc:"The domain's open alerts"`
}

// LastCheck is the evidence of a domain's last DNS check: what each resolver saw.
type LastCheck struct {
	CheckedAt    time.Time                  `json:"checked_at"`
	Verified     bool                       `json:"verified"`
	Reason       string                     `json:"reason"`
	Message      string                     `json:"message"`
	Instructions string                     `json:"instructions,omitempty"`
	Expected     string                     `json:"expected"`
	Found        *string                    `json:"found"`
	Conflicts    []string                   `json:"conflicts,omitempty"`
	Resolvers    []dnsverify.ResolverResult `json:"resolvers"`
}

func lastCheckJSON(ctx context.Context, raw []byte) *LastCheck {
	if len(raw) == 0 {
		return nil
	}
	var r dnsverify.Result
	if json.Unmarshal(raw, &r) != nil || r.CheckedAt.IsZero() {
		return nil
	}
	l := i18n.From(ctx)
	return &LastCheck{CheckedAt: r.CheckedAt, Verified: r.Verified, Reason: r.Reason, Message: r.Message.In(l),
		Instructions: r.Instructions.In(l), Expected: r.Expected, Found: r.Found, Conflicts: i18n.Strings(r.Conflicts, l),
		Resolvers: nonNil(r.Resolvers)}
}

func (s *Server) domainJSON(ctx context.Context, d store.Domain) Domain {
	svc := s.cfg.Domains
	l := i18n.From(ctx)
	instr := instructionsJSON(ctx, svc.Instructions(d))
	var lastErr *string
	if d.LastError != nil {
		e := d.LastError.In(l)
		lastErr = &e
	}
	return Domain{
		ID: d.ID, CustomerID: d.CustomerID, TenantDeploymentID: d.TenantDeploymentID,
		ExternalDomain: d.ExternalDomain, ExternalDomainUnicode: hostname.Display(d.ExternalDomain),
		SajetSubdomain: d.SajetSubdomain, SajetFullDomain: d.SajetFullDomain,
		VerificationStatus: d.VerificationStatus, VerificationToken: d.VerificationToken,
		VerificationInstructions: instr[0], DNSRecords: instr,
		VerifiedAt: d.VerifiedAt, TXTVerifiedAt: d.TXTVerifiedAt,
		CloudflareDNSRecordID: d.CloudflareDNSRecordID, CloudflareConfigured: d.CloudflareConfigured,
		CustomHostnameID: d.CustomHostnameID, CustomHostnameStatus: d.CustomHostnameStatus, Warnings: i18n.Strings(svc.Warnings(d), l),
		TunnelIngressConfigured: d.TunnelIngressConfigured, SSLStatus: d.SSLStatus,
		IsActive: d.IsActive, IsPrimary: d.IsPrimary, State: svc.State(d), Steps: stepsJSON(ctx, svc.Steps(d)),
		LastCheckedAt: d.LastCheckedAt, LastCheck: lastCheckJSON(ctx, d.LastCheck), LastCheckStatus: d.LastCheckStatus, LastError: lastErr,
		IngressVersion: d.IngressVersion,
		ExpiresAt:      d.ExpiresAt, DeletingAt: d.DeletingAt, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
		CreatedBy:   d.CreatedBy,
		NextCheckAt: d.NextCheckAt, WrongAnswers: d.WrongStreak, WrongSince: d.WrongSince, DNSErrorSince: d.DNSErrorSince,
		ResolversMayTake: d.NegativeTTL, MisconfiguredAt: d.MisconfiguredAt, GraceUntil: d.GraceUntil, DeactivatedAt: d.DeactivatedAt,
		CertificateExpiry: d.CertExpiresAt, EventSeq: d.EventSeq, Alerts: []Alert{},
	}
}

type createDomainInput struct {
	Body struct {
		ExternalDomain     string `json:"external_domain" minLength:"1" maxLength:"1024" doc:"The customer's hostname, e.g. www.impulse-max.com (IDN allowed)"`
		CustomerID         int64  `json:"customer_id,omitempty" minimum:"1" doc:"Required for admin tokens; a customer token uses its own"`
		TenantDeploymentID *int64 `json:"tenant_deployment_id,omitempty" minimum:"1"`
		SajetSubdomain     string `json:"sajet_subdomain,omitempty" maxLength:"63" doc:"Request a subdomain instead of the derived one"`
		IsPrimary          bool   `json:"is_primary,omitempty"`
		Claim              bool   `json:"claim,omitempty" doc:"Claim a hostname held unproven by another account, after publishing the claim TXT record"`
	}
}

type domainOutput struct {
	Body Domain
}

type domainKeyInput struct {
	D string `path:"d" maxLength:"300" doc:"Domain id, external hostname or platform hostname"`
}

type listDomainsInput struct {
	CustomerID int64  `query:"customer_id" minimum:"0"`
	Status     string `query:"status" enum:"pending,verifying,verified,failed"`
	Active     string `query:"active" enum:"true,false" doc:"Filter by is_active"`
	Q          string `query:"q" maxLength:"253" doc:"Substring of the external or platform hostname"`
	Limit      int    `query:"limit" minimum:"1" maximum:"500" default:"50"`
	Cursor     string `query:"cursor" maxLength:"64" doc:"next_cursor of the previous page"`
}

type listDomainsOutput struct {
	Body struct {
		Items      []Domain `json:"items"`
		Total      int64    `json:"total"`
		NextCursor string   `json:"next_cursor,omitempty"`
	}
}

// VerifyBody is the verify response of the frontend contract (docs/API.md): status/message/cname_detected/next_step on success,
// status/message/expected/found/instructions on failure, plus the per-resolver evidence.
type VerifyBody struct {
	Status        string                     `json:"status" enum:"verified,failed"`
	Message       string                     `json:"message"`
	CNAMEDetected *string                    `json:"cname_detected,omitempty"`
	NextStep      string                     `json:"next_step,omitempty"`
	Expected      string                     `json:"expected"`
	Found         *string                    `json:"found"`
	Instructions  string                     `json:"instructions,omitempty"`
	Reason        string                     `json:"reason" doc:"Stable code: verified, no_cname, wrong_target, txt_missing, resolvers_disagree, timeout, …"`
	Method        string                     `json:"method,omitempty" doc:"How it verified: cname, cname_tunnel or flattened"`
	TXTFound      bool                       `json:"txt_found"`
	Conflicts     []string                   `json:"conflicts,omitempty"`
	Warnings      []string                   `json:"warnings,omitempty" doc:"Configuration problems beyond DNS, e.g. Cloudflare's cross-account CNAME refusal without SaaS mode"`
	Resolvers     []dnsverify.ResolverResult `json:"resolvers"`
	Domain        Domain                     `json:"domain"`
}

type verifyOutput struct {
	Status int
	Body   VerifyBody
}

type activateOutput struct {
	Body struct {
		Domain Domain `json:"domain"`
		Steps  []Step `json:"steps"`
	}
}

type statsInput struct {
	CustomerID int64 `query:"customer_id" minimum:"0"`
}

type statsOutput struct {
	Body struct {
		store.DomainStats
		AlertsByKind map[string]int64 `json:"alerts_by_kind" doc:"Open alerts by kind"`
	}
}

func (s *Server) registerDomains() {
	huma.Register(s.api, huma.Operation{
		OperationID: "create-domain", Method: http.MethodPost, Path: "/api/domains",
		Summary: "Register a custom domain", Tags: []string{"domains"},
		DefaultStatus: http.StatusCreated, MaxBodyBytes: maxBodyBytes,
		Errors: []int{401, 404, 409, 413, 415, 422, 429},
	}, s.createDomain)

	huma.Register(s.api, huma.Operation{
		OperationID: "list-domains", Method: http.MethodGet, Path: "/api/domains",
		Summary: "List domains with filters and cursor pagination", Tags: []string{"domains"},
		Errors: []int{401, 422, 429},
	}, s.listDomains)

	huma.Register(s.api, huma.Operation{
		OperationID: "domain-stats", Method: http.MethodGet, Path: "/api/domains/stats",
		Summary: "Dashboard counts", Tags: []string{"domains"}, Errors: []int{401, 404},
	}, s.domainStats)

	huma.Register(s.api, huma.Operation{
		OperationID: "get-domain", Method: http.MethodGet, Path: "/api/domains/{d}",
		Summary: "Get a domain by id or hostname", Tags: []string{"domains"}, Errors: []int{401, 404},
	}, func(ctx context.Context, in *domainKeyInput) (*domainOutput, error) {
		d, err := s.visibleDomain(ctx, in.D)
		if err != nil {
			return nil, err
		}
		items := []Domain{s.domainJSON(ctx, d)}
		if err := s.attachAlerts(ctx, items); err != nil {
			return nil, err
		}
		return &domainOutput{Body: items[0]}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "delete-domain", Method: http.MethodDelete, Path: "/api/domains/{d}",
		Summary: "Delete a domain (removal of Cloudflare objects and tunnel rules follows)", Tags: []string{"domains"},
		DefaultStatus: http.StatusNoContent, Errors: []int{401, 404},
	}, func(ctx context.Context, in *domainKeyInput) (*struct{}, error) {
		d, err := s.visibleDomain(ctx, in.D)
		if err != nil {
			return nil, err
		}
		if err := s.cfg.Domains.Delete(ctx, principalFrom(ctx).Actor(), d); err != nil {
			return nil, fromDomainError(ctx, err)
		}
		return nil, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "verify-domain", Method: http.MethodPost, Path: "/api/domains/{d}/verify",
		Summary: "Check the customer's DNS now", Tags: []string{"domains"},
		Description: "200 with status verified, or 400 with the failure body of the frontend contract: expected, found, instructions.",
		Errors:      []int{401, 404, 409, 429},
		Responses: map[string]*huma.Response{
			"400": {Description: "Verification failed (seed body, not problem+json)"},
		},
	}, s.verifyDomain)

	huma.Register(s.api, huma.Operation{
		OperationID: "activate-domain", Method: http.MethodPost, Path: "/api/domains/{d}/activate",
		Summary: "Put a verified, provisioned domain in service", Tags: []string{"domains"},
		Errors: []int{401, 404, 409},
	}, s.activateDomain)

	s.registerDomainPatch()
}

func (s *Server) createDomain(ctx context.Context, in *createDomainInput) (*domainOutput, error) {
	p := principalFrom(ctx)
	customerID := in.Body.CustomerID
	if p.Role == RoleCustomer {
		if customerID != 0 && customerID != p.CustomerID {
			return nil, problem(http.StatusNotFound, "customer_not_found", customerMissing(customerID))
		}
		customerID = p.CustomerID
	}
	if customerID == 0 {
		return nil, problem(http.StatusUnprocessableEntity, "customer_id_required",
			i18n.T("customer_id es obligatorio con un token de administrador", "customer_id is required with an admin token"))
	}
	d, err := s.cfg.Domains.Register(ctx, p.Actor(), domains.RegisterInput{
		ExternalDomain: in.Body.ExternalDomain, CustomerID: customerID,
		TenantDeploymentID: in.Body.TenantDeploymentID, Subdomain: in.Body.SajetSubdomain,
		IsPrimary: in.Body.IsPrimary, Claim: in.Body.Claim,
	})
	if err != nil {
		return nil, fromDomainError(ctx, err)
	}
	return &domainOutput{Body: s.domainJSON(ctx, d)}, nil
}

func (s *Server) listDomains(ctx context.Context, in *listDomainsInput) (*listDomainsOutput, error) {
	p := principalFrom(ctx)
	f := store.DomainFilter{CustomerID: in.CustomerID, Status: in.Status, Query: strings.ToLower(in.Q), Limit: in.Limit}
	if p.Role == RoleCustomer {
		if f.CustomerID != 0 && f.CustomerID != p.CustomerID {
			// Another customer's list is empty to this token, as if that customer had nothing.
			out := &listDomainsOutput{}
			out.Body.Items = []Domain{}
			return out, nil
		}
		f.CustomerID = p.CustomerID
	}
	if in.Active != "" {
		v := in.Active == "true"
		f.Active = &v
	}
	if in.Cursor != "" {
		after, err := decodeCursor(in.Cursor)
		if err != nil {
			return nil, problem(http.StatusUnprocessableEntity, "invalid_cursor",
				i18n.T("el cursor no es uno que haya devuelto esta API", "cursor is not one this API returned"))
		}
		f.After = after
	}
	ds, total, err := s.cfg.Store.ListDomains(ctx, f)
	if err != nil {
		return nil, err
	}
	out := &listDomainsOutput{}
	out.Body.Items = make([]Domain, 0, len(ds))
	for _, d := range ds {
		out.Body.Items = append(out.Body.Items, s.domainJSON(ctx, d))
	}
	if err := s.attachAlerts(ctx, out.Body.Items); err != nil {
		return nil, err
	}
	out.Body.Total = total
	if len(ds) == f.Limit {
		out.Body.NextCursor = encodeCursor(ds[len(ds)-1].ID)
	}
	return out, nil
}

func encodeCursor(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("d:" + strconv.FormatInt(id, 10)))
}

func decodeCursor(c string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, err
	}
	rest, ok := strings.CutPrefix(string(b), "d:")
	if !ok {
		return 0, errors.New("bad cursor")
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || id < 0 {
		return 0, errors.New("bad cursor")
	}
	return id, nil
}

func (s *Server) domainStats(ctx context.Context, in *statsInput) (*statsOutput, error) {
	p := principalFrom(ctx)
	customerID := in.CustomerID
	if p.Role == RoleCustomer {
		if customerID != 0 && customerID != p.CustomerID {
			return nil, problem(http.StatusNotFound, "customer_not_found", customerMissing(customerID))
		}
		customerID = p.CustomerID
	}
	st, err := s.cfg.Store.Stats(ctx, customerID)
	if err != nil {
		return nil, err
	}
	byKind, err := s.cfg.Store.CountOpenAlerts(ctx, customerID)
	if err != nil {
		return nil, err
	}
	out := &statsOutput{}
	out.Body.DomainStats, out.Body.AlertsByKind = st, byKind
	return out, nil
}

// visibleDomain resolves the path key and hides other customers' domains as 404.
func (s *Server) visibleDomain(ctx context.Context, key string) (store.Domain, error) {
	d, err := s.cfg.Domains.Resolve(ctx, key)
	if err != nil {
		return store.Domain{}, fromDomainError(ctx, err)
	}
	if !principalFrom(ctx).canSeeCustomer(d.CustomerID) {
		return store.Domain{}, problem(http.StatusNotFound, "not_found", msgDomainAbsent)
	}
	return d, nil
}

func (s *Server) verifyDomain(ctx context.Context, in *domainKeyInput) (*verifyOutput, error) {
	d, err := s.visibleDomain(ctx, in.D)
	if err != nil {
		return nil, err
	}
	release, err := s.verify.enter(d.CustomerID, d.ID, d.ExternalDomain, time.Now())
	if err != nil {
		return nil, err
	}
	defer release()
	out, err := s.cfg.Domains.Verify(ctx, principalFrom(ctx).Actor(), d)
	if err != nil {
		return nil, fromDomainError(ctx, err)
	}
	r := out.Result
	l := i18n.From(ctx)
	body := VerifyBody{
		Message: r.Message.In(l), Expected: r.Expected, Found: r.Found, Reason: r.Reason, Method: r.Method, TXTFound: r.TXTFound,
		Conflicts: i18n.Strings(r.Conflicts, l), Resolvers: r.Resolvers, Domain: s.domainJSON(ctx, out.Domain),
		Warnings: i18n.Strings(s.cfg.Domains.Warnings(out.Domain), l),
	}
	if err := s.withAlerts(ctx, &body.Domain); err != nil {
		return nil, err
	}
	if len(body.Conflicts) == 0 {
		body.Conflicts = nil
	}
	if len(body.Warnings) == 0 {
		body.Warnings = nil
	}
	if body.Resolvers == nil {
		body.Resolvers = []dnsverify.ResolverResult{}
	}
	if r.Verified {
		body.Status = "verified"
		body.NextStep = out.NextStep.In(l)
		if r.CNAMEDetected != "" {
			c := r.CNAMEDetected
			body.CNAMEDetected = &c
		}
		return &verifyOutput{Status: http.StatusOK, Body: body}, nil
	}
	body.Status = "failed"
	body.Instructions = r.Instructions.In(l)
	return &verifyOutput{Status: http.StatusBadRequest, Body: body}, nil
}

func (s *Server) activateDomain(ctx context.Context, in *domainKeyInput) (*activateOutput, error) {
	d, err := s.visibleDomain(ctx, in.D)
	if err != nil {
		return nil, err
	}
	d, steps, err := s.cfg.Domains.Activate(ctx, principalFrom(ctx).Actor(), d)
	if err != nil {
		err = fromDomainError(ctx, err)
		var p *Problem
		if errors.As(err, &p) {
			p.Steps = stepsJSON(ctx, steps)
		}
		return nil, err
	}
	out := &activateOutput{}
	out.Body.Domain = s.domainJSON(ctx, d)
	if err := s.withAlerts(ctx, &out.Body.Domain); err != nil {
		return nil, err
	}
	out.Body.Steps = stepsJSON(ctx, steps)
	return out, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func customerMissing(id int64) i18n.Text {
	return i18n.F("el cliente %d no existe", "customer %d does not exist", id)
}
