// Package api is the control plane's REST API on huma v2 and net/http: routing, authentication,
// request limits, JSON shapes and OpenAPI. It holds no SQL (package store) and no lifecycle rules
// (package domains); it translates between HTTP and those.
//
// Contract with the ERP frontend: the request and response bodies of docs/API.md (field names, status
// codes), extended with the fields of docs/ARCHITECTURE.md §2 and docs/LIFECYCLE.md. Errors are application/problem+json with a
// stable `code`, except the verify-failure body of the frontend contract (docs/API.md). Every request body is limited to 1 MiB,
// unknown JSON fields are rejected (422), and non-JSON bodies get 415 — all before any change.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/jeturing/sajet-domains/controlplane/authlimit"
	"github.com/jeturing/sajet-domains/controlplane/automation"
	"github.com/jeturing/sajet-domains/controlplane/domains"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/internal/clock"
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
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names the client (for the
	// bad-token limiter) and whose X-Request-Id is kept; see ParseNets.
	TrustedProxies []netip.Prefix
	// AllowedBackendNets exempts backend addresses from the link-local/metadata refusal
	// (backendPolicy), for a backend that really lives there.
	AllowedBackendNets []netip.Prefix
	// Verify bounds each customer's DNS checks; zero values take the defaults.
	Verify VerifyLimits
	// SessionIdle and SessionAbsolute bound web UI sessions; 0 → DefaultSessionIdle (2h) and
	// DefaultSessionAbsolute (12h).
	SessionIdle, SessionAbsolute time.Duration
	// UI, when set, is the web UI, served under /ui/; GET / redirects there.
	UI http.Handler
	// Diagnose builds the report of GET /api/domains/{d}/diagnose (diagnose.go); nil → 503.
	Diagnose Diagnoser
	// Ready are what the control plane depends on besides the database (the agent gateway when
	// it is on), by name; /readyz fails naming each that is not ready (readyz.go).
	Ready map[string]func() error
	// Automation serves webhook endpoints and the test clock (automation.go); nil: webhooks
	// answer 503.
	Automation *automation.Automation
	// TestClock, set only by the binary's --test-clock test switch, adds POST /api/test/clock.
	TestClock *clock.Offset
}

// Server is the HTTP handler of the REST API.
type Server struct {
	cfg      Config
	mux      *http.ServeMux
	api      huma.API
	auth     *authenticator
	sessions *sessions
	events   *hub
	verify   *verifyGate
	handler  http.Handler
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
	if cfg.SessionIdle == 0 {
		cfg.SessionIdle = DefaultSessionIdle
	}
	if cfg.SessionAbsolute == 0 {
		cfg.SessionAbsolute = DefaultSessionAbsolute
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), registry: prometheus.NewRegistry(), verify: newVerifyGate(cfg.Verify),
		events: newHub()}
	s.sessions = &sessions{store: cfg.Store, limits: store.SessionLimits{Idle: cfg.SessionIdle, Absolute: cfg.SessionAbsolute},
		recent: make(map[[32]byte]recentSession)}
	s.auth = newAuthenticator(cfg.Store, cfg.TokenCacheTTL, authlimit.New(cfg.AuthFailureBurst, cfg.AuthFailureInterval), cfg.Logger)
	s.handler = http.HandlerFunc(s.serve)
	s.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sajet_http_request_duration_seconds",
		Help:    "REST API request latency by operation and status.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"operation", "status"})
	s.registry.MustRegister(s.requests, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.registry.MustRegister(s.auth.metrics.collectors()...)

	hc := huma.DefaultConfig("Sajet Domains API", cfg.Version)
	// The default create hook adds a `$schema` link to every body; the frontend's contract is the
	// contract's bodies (docs/API.md), so responses carry only the documented fields.
	hc.CreateHooks = nil
	hc.DocsPath = ""
	hc.Info.Description = "Custom domains for Sajet ERP tenants: register, verify, provision, activate."
	hc.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearer": {Type: "http", Scheme: "bearer", Description: "API token (sjt_…): admin or customer role"},
		"session": {Type: "apiKey", In: "cookie", Name: SessionCookie,
			Description: "Web UI session (POST /api/session); state-changing requests also need X-CSRF-Token"},
	}
	hc.Security = []map[string][]string{{"bearer": {}}, {"session": {}}}
	hc.Transformers = append(hc.Transformers, s.hideInternal, s.localize)
	s.api = humago.New(s.mux, hc)
	s.api.UseMiddleware(s.observe, s.authenticate, s.checkInput)

	s.registerDomains()
	s.registerCustomers()
	s.registerTunnels()
	s.registerDeployments()
	s.registerTokens()
	s.registerAgents()
	s.registerSessions()
	s.registerEvents()
	s.registerDiagnose()
	s.registerAutomation()

	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"pass"}`))
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	if cfg.UI != nil {
		// The UI's paths, and only those: /ui/ and below is the UI (its own fallback), / leads there.
		s.mux.Handle("GET /ui/", cfg.UI)
		s.mux.Handle("GET /ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently))
		s.mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	}
	return s
}

// Registry exposes the metrics registry so other components can add their collectors.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

func (s *Server) observe(ctx huma.Context, next func(huma.Context)) {
	start := time.Now()
	next(ctx)
	op := ctx.Operation()
	s.requests.WithLabelValues(op.OperationID, strconv.Itoa(ctx.Status())).Observe(time.Since(start).Seconds())
}

// authenticate resolves the caller into a Principal for every API operation except those marked
// public (sign-in): the Authorization header's bearer token, or else the web UI's session cookie.
// A valid token is never refused by the bad-token limiter; unknown tokens and sessions count
// against the client's address (behind a trusted proxy, the address X-Forwarded-For names), and
// an address over its budget gets 429 for unknown ones without a database lookup (see
// authenticator and authenticateSession). A state-changing request authenticated by the cookie
// must also pass the CSRF check (session.go).
func (s *Server) authenticate(ctx huma.Context, next func(huma.Context)) {
	if op := ctx.Operation(); op != nil && op.Metadata["public"] == true {
		next(ctx)
		return
	}
	addr := requestInfoFrom(ctx.Context()).limitKey
	if addr == "" {
		addr = authlimit.Key(ctx.RemoteAddr())
	}
	header := ctx.Header("Authorization")
	var p Principal
	var sess *session
	var err error
	if c, cerr := huma.ReadCookie(ctx, SessionCookie); header == "" && cerr == nil && c.Value != "" {
		p, sess, err = s.authenticateSession(ctx.Context(), c.Value, addr)
	} else {
		p, err = s.auth.authenticate(ctx.Context(), header, addr)
	}
	var limited *rateLimited
	if op := ctx.Operation(); err != nil && op != nil && op.Metadata["authOptional"] == true && !errors.As(err, &limited) &&
		(err == errNoToken || err == errBadToken || err == errNoSession || err == errBadSession) {
		// "Who am I" answers "nobody" instead of 401, so a page can ask without an error.
		next(ctx)
		return
	}
	switch {
	case err == nil && sess != nil:
		if !checkCSRF(ctx, sess) {
			s.writeErr(ctx, http.StatusForbidden, msgCSRF)
			return
		}
		c := context.WithValue(ctx.Context(), principalKey{}, p)
		next(huma.WithContext(ctx, context.WithValue(c, sessionKey{}, sess)))
	case err == nil:
		next(huma.WithValue(ctx, principalKey{}, p))
	case errors.As(err, &limited):
		ctx.SetHeader("Retry-After", retryAfterSeconds(limited.wait))
		s.writeErr(ctx, http.StatusTooManyRequests, msgTooManyBadTokens)
	case err == errNoToken:
		ctx.SetHeader("WWW-Authenticate", `Bearer realm="sajet"`)
		s.writeErr(ctx, http.StatusUnauthorized, msgNoToken)
	case err == errBadToken:
		ctx.SetHeader("WWW-Authenticate", `Bearer realm="sajet"`)
		s.writeErr(ctx, http.StatusUnauthorized, msgBadToken)
	case err == errNoSession, err == errBadSession:
		s.writeErr(ctx, http.StatusUnauthorized, msgNoSession)
	default:
		s.writeErr(ctx, http.StatusServiceUnavailable, msgAuthDown, err)
	}
}

// requireAdmin fails unless the caller is an admin.
func requireAdmin(ctx context.Context) error {
	if principalFrom(ctx).Role != RoleAdmin {
		return problem(http.StatusForbidden, "admin_required", msgAdminOnly)
	}
	return nil
}
