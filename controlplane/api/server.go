// Package api is the control plane's REST API on huma v2 and net/http: routing, authentication,
// request limits, JSON shapes and OpenAPI. It holds no SQL (package store) and no lifecycle rules
// (package domains); it translates between HTTP and those.
//
// Contract with the ERP frontend: the seed's request and response bodies (field names, status
// codes), extended with the fields of DESIGN §2/§4. Errors are application/problem+json with a
// stable `code`, except the seed's verify-failure body. Every request body is limited to 1 MiB,
// unknown JSON fields are rejected (422), and non-JSON bodies get 415 — all before any change.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/jeturing/sajet-domains/controlplane/authlimit"
	"github.com/jeturing/sajet-domains/controlplane/domains"
	"github.com/jeturing/sajet-domains/controlplane/store"
)

// maxBodyBytes is the limit on every request body.
const maxBodyBytes = 1 << 20

// Config wires the API to the rest of the control plane.
type Config struct {
	Store   *store.Store
	Domains *domains.Service
	Logger  *slog.Logger
	Version string
	// TokenCacheTTL bounds how long a revoked token keeps working on other replicas; 0 → 10s.
	TokenCacheTTL time.Duration
	// AuthFailureBurst and AuthFailureInterval shape the bad-token limiter; 0 → 10 per 2s refill.
	AuthFailureBurst    int
	AuthFailureInterval time.Duration
}

// Server is the HTTP handler of the REST API.
type Server struct {
	cfg      Config
	mux      *http.ServeMux
	api      huma.API
	auth     *authenticator
	registry *prometheus.Registry
	requests *prometheus.HistogramVec
}

// New builds the API.
func New(cfg Config) *Server {
	useProblemErrors()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.TokenCacheTTL == 0 {
		cfg.TokenCacheTTL = 10 * time.Second
	}
	if cfg.AuthFailureBurst == 0 {
		cfg.AuthFailureBurst = 10
	}
	if cfg.AuthFailureInterval == 0 {
		cfg.AuthFailureInterval = 2 * time.Second
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), registry: prometheus.NewRegistry()}
	s.auth = newAuthenticator(cfg.Store, cfg.TokenCacheTTL, authlimit.New(cfg.AuthFailureBurst, cfg.AuthFailureInterval), cfg.Logger)
	s.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sajet_http_request_duration_seconds",
		Help:    "REST API request latency by operation and status.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"operation", "status"})
	s.registry.MustRegister(s.requests, prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))

	hc := huma.DefaultConfig("Sajet Domains API", cfg.Version)
	// The default create hook adds a `$schema` link to every body; the frontend's contract is the
	// seed's bodies, so responses carry only the documented fields.
	hc.CreateHooks = nil
	hc.DocsPath = ""
	hc.Info.Description = "Custom domains for Sajet ERP tenants: register, verify, provision, activate."
	hc.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearer": {Type: "http", Scheme: "bearer", Description: "API token (sjt_…): admin or customer role"},
	}
	hc.Security = []map[string][]string{{"bearer": {}}}
	s.api = humago.New(s.mux, hc)
	s.api.UseMiddleware(s.observe, s.authenticate)

	s.registerDomains()
	s.registerAdmin()

	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"pass"}`))
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	return s
}

// Registry exposes the metrics registry so other components can add their collectors.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "application/json")
	if err := s.cfg.Store.Ping(ctx); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"status":"fail","checks":{"database":"unreachable"}}`))
		return
	}
	_, _ = w.Write([]byte(`{"status":"pass","checks":{"database":"ok"}}`))
}

func (s *Server) observe(ctx huma.Context, next func(huma.Context)) {
	start := time.Now()
	next(ctx)
	op := ctx.Operation()
	s.requests.WithLabelValues(op.OperationID, strconv.Itoa(ctx.Status())).Observe(time.Since(start).Seconds())
}

// authenticate resolves the bearer token into a Principal for every API operation. Bad tokens
// count against the caller's address; an address over its budget gets 429 without a token check.
func (s *Server) authenticate(ctx huma.Context, next func(huma.Context)) {
	addr := authlimit.Key(ctx.RemoteAddr())
	limiter := s.auth.limiter
	if wait := limiter.Blocked(addr, time.Now()); wait > 0 {
		ctx.SetHeader("Retry-After", retryAfterSeconds(wait))
		_ = huma.WriteErr(s.api, ctx, http.StatusTooManyRequests, "too many requests with invalid tokens from this address; retry later")
		return
	}
	p, err := s.auth.authenticate(ctx.Context(), ctx.Header("Authorization"))
	switch {
	case err == nil:
		next(huma.WithValue(ctx, principalKey{}, p))
	case err == errNoToken || err == errBadToken:
		limiter.Fail(addr, time.Now())
		ctx.SetHeader("WWW-Authenticate", `Bearer realm="sajet"`)
		_ = huma.WriteErr(s.api, ctx, http.StatusUnauthorized, err.Error())
	default:
		s.cfg.Logger.ErrorContext(ctx.Context(), "authenticate", "err", err)
		_ = huma.WriteErr(s.api, ctx, http.StatusServiceUnavailable, "authentication backend unavailable")
	}
}

// requireAdmin fails unless the caller is an admin.
func requireAdmin(ctx context.Context) error {
	if principalFrom(ctx).Role != RoleAdmin {
		return problem(http.StatusForbidden, "admin_required", "this operation needs an admin token")
	}
	return nil
}
