package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/jeturing/sajet-domains/controlplane/diagnose"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/internal/i18n"
)

// Diagnoser builds a domain's diagnostics report (*diagnose.Service).
type Diagnoser interface {
	Diagnose(ctx context.Context, d store.Domain, l i18n.Lang) (diagnose.Report, error)
}

type diagnoseOutput struct {
	Body diagnose.Report
}

var (
	msgDiagnoseOff      = i18n.T("el diagnóstico no está disponible en este control plane", "diagnostics are not available on this control plane")
	msgDiagnoseDeleting = i18n.T("el dominio se está eliminando", "the domain is being deleted")
)

// registerDiagnose registers GET /api/domains/{d}/diagnose. Who may ask is exactly who may read
// the domain (visibleDomain): an admin, or a customer token for its own domains; any other domain
// is a 404. Each report costs DNS queries, up to two Cloudflare API calls and a probe from every
// tunnel host, so reports are budgeted per domain and per customer (diagnose.Config): 429
// diagnose_rate_limited with Retry-After beyond it.
func (s *Server) registerDiagnose() {
	huma.Register(s.api, huma.Operation{
		OperationID: "diagnose-domain", Method: http.MethodGet, Path: "/api/domains/{d}/diagnose",
		Summary: "Why doesn't my domain work? One report: DNS (resolvers, authoritative servers, DNSSEC, CAA, conflicts), Cloudflare, the tunnel and the backend probed from each tunnel host",
		Description: "Each part has a verdict (ok, warn, fail, unknown), a sentence in the request's language (Accept-Language), " +
			"what to do (fix) and its evidence. `works` is true when no part fails and DNS, the tunnel and the backend were each seen working. " +
			"Reports are limited per domain (6, then one per 10 s) and per customer (2 at once): 429 diagnose_rate_limited with Retry-After.",
		Tags: []string{"domains"}, Errors: []int{401, 404, 409, 429, 503},
	}, func(ctx context.Context, in *domainKeyInput) (*diagnoseOutput, error) {
		d, err := s.visibleDomain(ctx, in.D)
		if err != nil {
			return nil, err
		}
		if s.cfg.Diagnose == nil {
			return nil, problem(http.StatusServiceUnavailable, "diagnose_unavailable", msgDiagnoseOff)
		}
		r, err := s.cfg.Diagnose.Diagnose(ctx, d, i18n.From(ctx))
		var limited *diagnose.RateLimitedError
		switch {
		case errors.As(err, &limited):
			p := problem(http.StatusTooManyRequests, "diagnose_rate_limited", limited.Reason)
			p.headers = http.Header{"Retry-After": {retryAfterSeconds(limited.RetryAfter)}}
			return nil, p
		case errors.Is(err, diagnose.ErrDeleting):
			return nil, problem(http.StatusConflict, "domain_deleting", msgDiagnoseDeleting)
		case err != nil:
			return nil, err
		}
		return &diagnoseOutput{Body: r}, nil
	})
}
