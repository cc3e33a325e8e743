// Package app builds the control plane's object graph from configuration and runs it: database
// pool, migrations check, DNS verifier, domain rules, REST API. `serve` and `dev` both go through
// Run, so the development stack is the production one with a private database.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"golang.org/x/net/netutil"

	"github.com/jeturing/sajet-domains/controlplane/api"
	"github.com/jeturing/sajet-domains/controlplane/automation"
	"github.com/jeturing/sajet-domains/controlplane/cloudflare"
	"github.com/jeturing/sajet-domains/controlplane/diagnose"
	"github.com/jeturing/sajet-domains/controlplane/dnsverify"
	"github.com/jeturing/sajet-domains/controlplane/domains"
	"github.com/jeturing/sajet-domains/controlplane/gateway"
	"github.com/jeturing/sajet-domains/controlplane/jobs"
	"github.com/jeturing/sajet-domains/controlplane/mailer"
	"github.com/jeturing/sajet-domains/controlplane/provisioning"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/controlplane/web"
	"github.com/jeturing/sajet-domains/controlplane/webhooks"
	"github.com/jeturing/sajet-domains/internal/clock"
	"github.com/jeturing/sajet-domains/internal/sdnotify"
	"github.com/jeturing/sajet-domains/migrations"
)

// Config is the control plane's configuration (flags of `serve`).
type Config struct {
	DatabaseURL   string
	HTTPAddr      string
	Zone          string
	DNSResolvers  []string
	ExtraBlocked  []string
	UnverifiedTTL time.Duration
	Migrate       bool // apply migrations at start (dev); serve expects `migrate` to have run
	Version       string

	// Cloudflare: all three of URL (default Cloudflare's), token and zone id enable provisioning.
	CloudflareAPIURL   string
	CloudflareAPIToken string
	CloudflareZoneID   string
	SaaSMode           bool
	CloudflareCalls    int                 // API calls allowed per 5 minutes (Cloudflare's per-token limit); negative: no limit
	Provisioning       provisioning.Config // tuning (intervals, grace, workers); Store/DNS/SaaS are filled in
	Logger             *slog.Logger
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names the client.
	TrustedProxies []netip.Prefix
	// AllowedBackendNets: backend addresses exempt from the link-local/metadata refusal.
	AllowedBackendNets []netip.Prefix
	// HTTPMaxConns caps the REST listener's open connections (0: DefaultHTTPMaxConns); more wait
	// in the kernel's accept queue until one closes.
	HTTPMaxConns int
	// TokenReload is how often every valid API token is reloaded (0: api.DefaultTokenReload).
	TokenReload time.Duration

	// DNSAuthPort is the port diagnostics ask authoritative name servers on (default 53).
	DNSAuthPort string

	// Agent gateway: TLS listener for edge agents; off unless a certificate and key are given.
	AgentAddr    string
	AgentTLSCert string
	AgentTLSKey  string

	// Automation (docs/AUTOMATION.md). WebhookSecretKey is the key signing secrets are sealed
	// with (base64 of 32 bytes; --webhook-secret-key or --webhook-secret-key-file): without it
	// webhook endpoints cannot be created (503 webhooks_disabled) and nothing is delivered;
	// checks, alerts and notifications work regardless. WebhookAllowNets lets webhooks reach those
	// networks (loopback receivers in tests; a test switch, empty in production). SMTP without a
	// host: notifications are recorded and shown (GET /api/notifications), not sent. Grace is how
	// long a misconfigured domain keeps serving (0: 7 days).
	WebhookSecretKey []byte
	WebhookAllowNets []netip.Prefix
	SMTP             mailer.Config
	Grace            time.Duration
	Automation       automation.Config // tuning; Store, Domains, Clock, Sealer, Guard, Mailer are filled in
	// TestClock (test switch, never in production): the automation's clock is the real one plus
	// an offset that POST /api/test/clock moves forward, so a test lives through a grace period.
	TestClock bool

	// Ready, when set, receives the API's base URL once it is listening.
	Ready func(apiURL string)
	// AgentListening, when set, receives the agent gateway's address once it is listening.
	AgentListening func(addr string)
}

// DefaultHTTPMaxConns is the REST listener's connection cap by default.
const DefaultHTTPMaxConns = 4096

// Open connects to the database with the pool settings the control plane uses.
func Open(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if cfg.MaxConns < 16 {
		cfg.MaxConns = 16
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return pool, nil
}

// Run serves the control plane until ctx is cancelled, then shuts down gracefully.
func Run(ctx context.Context, cfg Config) error {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	pool, err := Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if cfg.Migrate {
		if _, err := migrations.Apply(ctx, pool, logger); err != nil {
			return err
		}
	}
	g, err := build(pool, cfg)
	if err != nil {
		return err
	}
	// One River client runs provisioning and automation (package jobs says why only one).
	if err := g.jobs.Start(ctx); err != nil {
		return fmt.Errorf("start jobs: %w", err)
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = g.jobs.Stop(stopCtx)
	}()
	if g.prov != nil {
		logger.Info("cloudflare provisioning on", "zone_id", cfg.CloudflareZoneID, "saas", cfg.SaaSMode)
	} else {
		logger.Warn("cloudflare provider disabled (no --cloudflare-api-token/--cloudflare-zone-id): records are not created and domains say so")
	}
	if len(cfg.WebhookSecretKey) == 0 {
		logger.Warn("webhooks disabled: give --webhook-secret-key (or --webhook-secret-key-file) to create endpoints and deliver events")
	}
	if cfg.SMTP.Host == "" {
		logger.Warn("no SMTP server (--smtp-host): customer notifications are recorded and shown at GET /api/notifications and in this log, not sent")
	}
	if len(cfg.WebhookAllowNets) > 0 {
		logger.Warn("TEST SWITCH: webhooks may reach these private networks", "nets", cfg.WebhookAllowNets)
	}
	if cfg.TestClock {
		logger.Warn("TEST SWITCH: --test-clock is on; POST /api/test/clock moves the automation's time forward")
	}
	handler := g.api
	// Valid API tokens are kept in memory and revocations arrive by NOTIFY (api.FollowTokens);
	// the web UI's live updates come the same way (api.FollowEvents).
	go g.apiServer.FollowTokens(ctx, pool.Config().ConnConfig, cfg.TokenReload)
	go g.apiServer.FollowEvents(ctx, pool.Config().ConnConfig)
	go pruneSessions(ctx, g.store, logger)
	if err := startGateway(ctx, g, cfg, logger); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	maxConns := cfg.HTTPMaxConns
	if maxConns <= 0 {
		maxConns = DefaultHTTPMaxConns
	}
	ln = netutil.LimitListener(ln, maxConns)
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	// Event streams would hold Shutdown until its timeout.
	srv.RegisterOnShutdown(g.apiServer.CloseStreams)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	apiURL := "http://" + ln.Addr().String()
	logger.Info("control plane listening", "api", apiURL, "ui", apiURL+web.Prefix, "zone", cfg.Zone)
	if cfg.Ready != nil {
		cfg.Ready(apiURL)
	}
	notifySystemd(ctx, logger)

	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shut down http server: %w", err)
	}
	return nil
}

type graph struct {
	store     *store.Store
	api       http.Handler
	apiServer *api.Server
	metrics   prometheus.Registerer     // the API's /metrics registry
	prov      *provisioning.Provisioner // nil: provider disabled
	auto      *automation.Automation
	jobs      *river.Client[pgx.Tx]
	gateway   *gateway.Server      // nil: no agent TLS certificate, the gateway is off
	listener  *gateway.Listener    // with gateway
	cf        *cloudflare.Provider // nil: provider disabled
}

// build wires the control plane's parts on pool.
func build(pool *pgxpool.Pool, cfg Config) (*graph, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	verifier, err := dnsverify.New(dnsverify.Config{Resolvers: cfg.DNSResolvers})
	if err != nil {
		return nil, fmt.Errorf("dns verifier: %w", err)
	}
	st := store.New(pool)
	g := &graph{store: st}
	if cfg.AgentTLSCert != "" && cfg.AgentTLSKey != "" {
		g.gateway = &gateway.Server{Store: st, Logger: logger}
		g.listener = &gateway.Listener{ConnConfig: pool.Config().ConnConfig, Logger: logger}
	}
	var report diagnose.Cloudflare // nil: the report says provisioning is off
	enabled := cfg.CloudflareAPIToken != "" && cfg.CloudflareZoneID != ""
	if enabled {
		cf, err := cloudflare.New(cloudflare.Config{APIURL: cfg.CloudflareAPIURL, APIToken: cfg.CloudflareAPIToken,
			ZoneID: cfg.CloudflareZoneID, CallsPerWindow: cfg.CloudflareCalls, RateWindow: 5 * time.Minute})
		if err != nil {
			return nil, fmt.Errorf("cloudflare provider: %w", err)
		}
		pc := cfg.Provisioning
		pc.Store, pc.DNS, pc.Logger = st, cf, logger
		if cfg.SaaSMode {
			pc.SaaS = cf
		}
		g.prov = provisioning.NewSet(pc)
		st.UseOutbox(g.prov)
		report, g.cf = cf, cf
	} else if cfg.CloudflareAPIToken != "" || cfg.CloudflareZoneID != "" {
		return nil, fmt.Errorf("cloudflare provider needs both --cloudflare-api-token and --cloudflare-zone-id")
	}
	var clk clock.Clock = clock.System
	var offset *clock.Offset
	if cfg.TestClock {
		offset = &clock.Offset{}
		clk = offset
	}
	svc := domains.New(st, verifier, domains.Config{
		Zone: cfg.Zone, ExtraBlocked: cfg.ExtraBlocked, UnverifiedTTL: cfg.UnverifiedTTL,
		ProviderEnabled: enabled, SaaSMode: enabled && cfg.SaaSMode,
		Health: domains.Health{Grace: cfg.Grace}, Clock: clk,
	}, logger)
	ac := cfg.Automation
	ac.Store, ac.Domains, ac.Clock, ac.Logger = st, svc, clk, logger
	ac.Health = domains.Health{Grace: cfg.Grace}
	ac.Guard = webhooks.Guard{Allow: cfg.WebhookAllowNets}
	ac.Mailer = mailer.New(cfg.SMTP)
	if len(cfg.WebhookSecretKey) > 0 {
		if ac.Sealer, err = webhooks.NewSealer(cfg.WebhookSecretKey); err != nil {
			return nil, err
		}
	}
	if enabled && cfg.SaaSMode {
		ac.Hostnames = g.cf
	}
	g.auto = automation.New(ac)
	sets := []jobs.Set{g.auto}
	jc := jobs.Config{Logger: logger}
	if g.prov != nil {
		sets = append(sets, g.prov)
		jc = g.prov.JobsConfig()
	}
	if g.jobs, err = jobs.New(pool, jc, sets...); err != nil {
		return nil, err
	}
	st.UseAutomation(g.auto)
	var prober diagnose.Prober // nil: the report says the gateway is off
	ready := map[string]func() error{}
	if g.gateway != nil {
		prober = g.gateway
		ready["agent_gateway"] = func() error { return errors.Join(g.gateway.Ready(), g.listener.Ready()) }
	}
	diag := diagnose.New(st, verifier, report, prober, diagnose.Config{AuthPort: cfg.DNSAuthPort, SaaS: enabled && cfg.SaaSMode})
	apiServer := api.New(api.Config{Store: st, Domains: svc, Logger: logger, Version: cfg.Version, TrustedProxies: cfg.TrustedProxies,
		AllowedBackendNets: cfg.AllowedBackendNets, UI: web.Handler(), Diagnose: diag, Ready: ready,
		Automation: g.auto, TestClock: offset})
	g.api, g.apiServer, g.metrics = apiServer, apiServer, apiServer.Registry()
	g.metrics.MustRegister(g.auto.Collectors()...)
	return g, nil
}

// startGateway serves edge agents on cfg.AgentAddr (TLS 1.3) and follows tunnel changes, until
// ctx ends. Without a certificate the gateway is off and says so.
func startGateway(ctx context.Context, g *graph, cfg Config, logger *slog.Logger) error {
	if g.gateway == nil {
		logger.Warn("agent gateway disabled: give --agent-tls-cert and --agent-tls-key to accept edge agents")
		return nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.AgentTLSCert, cfg.AgentTLSKey)
	if err != nil {
		return fmt.Errorf("agent TLS certificate: %w", err)
	}
	ln, err := tls.Listen("tcp", cfg.AgentAddr, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
	if err != nil {
		return fmt.Errorf("listen for agents on %s: %w", cfg.AgentAddr, err)
	}
	srv := g.gateway
	g.metrics.MustRegister(srv.Collectors()...)
	go func() {
		if err := srv.Serve(ctx, ln); err != nil {
			logger.Error("agent gateway stopped", "err", err)
		}
	}()
	go func() { _ = g.listener.Run(ctx, srv) }()
	logger.Info("agent gateway listening", "addr", ln.Addr().String())
	if cfg.AgentListening != nil {
		cfg.AgentListening(ln.Addr().String())
	}
	return nil
}

// notifySystemd tells systemd (Type=notify) that the control plane serves, and pings its watchdog
// while the process runs. Outside systemd both are no-ops. The watchdog deliberately ignores the
// database: restarting the control plane does not fix a database outage, and /readyz reports it.
func notifySystemd(ctx context.Context, logger *slog.Logger) {
	sdnotify.Ready(logger)
	go func() {
		sdnotify.Watchdog(ctx, nil, logger) // returns at once without a watchdog
		<-ctx.Done()
		sdnotify.Stopping()
	}()
}

// pruneSessions removes expired web UI sessions and sign-in codes every hour (expired ones are
// already refused; this only keeps the tables small).
func pruneSessions(ctx context.Context, st *store.Store, logger *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := st.PruneUISessions(ctx); err != nil && ctx.Err() == nil {
				logger.Warn("prune ui sessions", "err", err)
			}
		}
	}
}
