// Command sajet-controlplane is the Sajet Domains control plane: REST API, database, decisions.
//
//	sajet-controlplane migrate --database-url URL
//	sajet-controlplane serve   --database-url URL [--http-addr 127.0.0.1:8080] [--zone sajet.us] [--dns-resolver host:port]...
//	sajet-controlplane token create --database-url URL --role admin|customer [--customer-id N]
//	sajet-controlplane dev     [--dir ./.dev] [--http-addr 127.0.0.1:8080]
//	sajet-controlplane inspect --api URL --token T [--json] [--lang es|en] [--verbose] HOST
//
// Every flag has an environment twin: SAJET_ + upper snake case (SAJET_DATABASE_URL).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/mail"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/api"
	"github.com/jeturing/sajet-domains/controlplane/app"
	"github.com/jeturing/sajet-domains/controlplane/automation"
	"github.com/jeturing/sajet-domains/controlplane/devenv"
	"github.com/jeturing/sajet-domains/controlplane/mailer"
	"github.com/jeturing/sajet-domains/controlplane/provisioning"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/controlplane/webhooks"
	"github.com/jeturing/sajet-domains/internal/envflag"
	"github.com/jeturing/sajet-domains/migrations"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `usage: sajet-controlplane <command> [flags]

commands:
  migrate        apply database migrations (idempotent)
  serve          run the control plane
  token create   create an API token and print it
  dev            run everything locally with a private PostgreSQL under ./.dev
  inspect        diagnose a domain through the API: exit 0 only when it works
  version        print the version

Run "sajet-controlplane <command> -h" for the command's flags. Every flag has an environment
twin: SAJET_ followed by the flag name in upper snake case (e.g. SAJET_DATABASE_URL).
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, errDomainDoesNotWork) {
			os.Exit(1)
		}
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "sajet-controlplane:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "migrate":
		return migrateCmd(ctx, args[1:], stdout, stderr)
	case "serve":
		return serveCmd(ctx, args[1:], stderr)
	case "token":
		if len(args) < 2 || args[1] != "create" {
			return errors.New(`usage: sajet-controlplane token create --role admin|customer [--customer-id N]`)
		}
		return tokenCmd(ctx, args[2:], stdout, stderr)
	case "dev":
		return devCmd(ctx, args[1:], stdout, stderr)
	case "inspect":
		return inspectCmd(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return envflag.Apply(fs, os.LookupEnv)
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

func migrateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbURL := fs.String("database-url", "", "PostgreSQL URL")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *dbURL == "" {
		return errors.New("--database-url (or SAJET_DATABASE_URL) is required")
	}
	pool, err := app.Open(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	res, err := migrations.Apply(ctx, pool, nil)
	if err != nil {
		return err
	}
	if len(res.Applied) == 0 && len(res.RiverApplied) == 0 {
		fmt.Fprintln(stdout, "database is up to date")
		return nil
	}
	for _, f := range res.Applied {
		fmt.Fprintln(stdout, "applied", f)
	}
	if len(res.RiverApplied) > 0 {
		fmt.Fprintln(stdout, "applied river migrations", res.RiverApplied)
	}
	return nil
}

type serveFlags struct {
	dbURL, httpAddr, zone, logLevel string
	resolvers, blocked              envflag.List
	unverifiedTTL                   time.Duration
	cfURL, cfToken, cfZone          string
	saas                            bool
	cfCalls, cfConcurrency          int
	agentAddr, agentCert, agentKey  string
	reconcileEvery, orphanGrace     time.Duration
	rescueAfter                     time.Duration
	trustedProxies                  envflag.List
	allowBackendNets                envflag.List
	httpMaxConns                    int
	dnsAuthPort                     int
	proxies                         []netip.Prefix // parsed by check
	backendNets                     []netip.Prefix // parsed by check

	webhookKey, webhookKeyFile string
	webhookAllowNets           envflag.List
	smtpHost, smtpUser         string
	smtpPassword, smtpFrom     string
	smtpTLS                    string
	smtpPort                   int
	grace                      time.Duration
	webhookRate                float64
	testClock                  bool
	webhookKeyBytes            []byte         // parsed by check
	webhookNets                []netip.Prefix // parsed by check
}

func (f *serveFlags) register(fs *flag.FlagSet, withDB bool) {
	if withDB {
		fs.StringVar(&f.dbURL, "database-url", "", "PostgreSQL URL")
	}
	fs.StringVar(&f.httpAddr, "http-addr", "127.0.0.1:8080", "REST API listen address")
	fs.StringVar(&f.zone, "zone", "sajet.us", "platform zone under which customers get a subdomain")
	fs.Var(&f.resolvers, "dns-resolver", "DNS resolver host:port for verification (repeatable; default /etc/resolv.conf)")
	fs.Var(&f.blocked, "blocked-subdomain", "extra subdomain label customers may not take (repeatable)")
	fs.DurationVar(&f.unverifiedTTL, "unverified-ttl", 7*24*time.Hour, "how long an unverified registration reserves its hostname")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.cfURL, "cloudflare-api-url", "https://api.cloudflare.com/client/v4/", "Cloudflare API base, including /client/v4/")
	fs.StringVar(&f.cfToken, "cloudflare-api-token", "", "Cloudflare API token (DNS edit on the zone; SSL and Certificates edit for SaaS); empty disables provisioning")
	fs.StringVar(&f.cfZone, "cloudflare-zone-id", "", "Cloudflare zone id of --zone")
	fs.IntVar(&f.cfCalls, "cloudflare-calls-per-5m", 1200, "Cloudflare API calls this process may make per 5 minutes (the per-token limit; split it between replicas sharing a token)")
	fs.StringVar(&f.agentAddr, "agent-addr", ":7443", "TLS listen address for edge agents")
	fs.StringVar(&f.agentCert, "agent-tls-cert", "", "certificate (PEM) for the agent listener; without it the gateway is off")
	fs.StringVar(&f.agentKey, "agent-tls-key", "", "private key (PEM) for the agent listener")
	fs.IntVar(&f.cfConcurrency, "cloudflare-concurrency", 10, "Cloudflare API calls in flight at once")
	fs.BoolVar(&f.saas, "cloudflare-saas", false, "also create a Cloudflare for SaaS custom hostname for each external domain")
	fs.DurationVar(&f.reconcileEvery, "reconcile-interval", 5*time.Minute, "how often the leader reconciles the zone with the database")
	fs.DurationVar(&f.orphanGrace, "orphan-grace", time.Hour, "how long a record of ours without a domain is kept before removal")
	fs.DurationVar(&f.rescueAfter, "job-rescue-after", 2*time.Minute, "a provisioning job running longer than this (its process died) runs again")
	fs.Var(&f.trustedProxies, "trusted-proxy", "CIDR (or address) of a reverse proxy in front of the REST API whose X-Forwarded-For names the client (repeatable)")
	fs.Var(&f.allowBackendNets, "allow-backend-net", "CIDR (or address) where tenant backends may be even though it is link-local, where cloud metadata services live (repeatable)")
	fs.IntVar(&f.httpMaxConns, "http-max-conns", app.DefaultHTTPMaxConns, "most REST API connections open at once; more wait until one closes")
	fs.IntVar(&f.dnsAuthPort, "dns-auth-port", 53, "port of authoritative name servers, which diagnostics ask directly")
	fs.StringVar(&f.webhookKey, "webhook-secret-key", "", "key (base64 of 32 random bytes: head -c 32 /dev/urandom | base64) that webhook signing secrets are encrypted with in the database; without it (or --webhook-secret-key-file) webhook endpoints cannot be created and nothing is delivered (503 webhooks_disabled)")
	fs.StringVar(&f.webhookKeyFile, "webhook-secret-key-file", "", "file holding --webhook-secret-key (mode 600)")
	fs.Var(&f.webhookAllowNets, "webhook-allow-net", "TEST SWITCH: CIDR webhooks may reach although private or loopback (repeatable; empty in production)")
	fs.StringVar(&f.smtpHost, "smtp-host", "", "SMTP server for customer emails; empty: notifications are recorded (GET /api/notifications, the log), not sent")
	fs.IntVar(&f.smtpPort, "smtp-port", 587, "SMTP port")
	fs.StringVar(&f.smtpUser, "smtp-username", "", "SMTP user (empty: no authentication)")
	fs.StringVar(&f.smtpPassword, "smtp-password", "", "SMTP password (prefer SAJET_SMTP_PASSWORD: flags show in ps)")
	fs.StringVar(&f.smtpFrom, "smtp-from", "Sajet Dominios <dominios@sajet.us>", "From: of customer emails")
	fs.StringVar(&f.smtpTLS, "smtp-tls", "mandatory", "mandatory (STARTTLS or fail), opportunistic, or none (a local relay)")
	fs.Float64Var(&f.webhookRate, "webhook-rate", 50, "most webhook delivery attempts per second on this replica, so a burst of events does not take the API's CPU while it drains")
	fs.DurationVar(&f.grace, "misconfigured-grace", 7*24*time.Hour, "how long a verified domain whose DNS no longer points at us keeps serving before it is deactivated")
	fs.BoolVar(&f.testClock, "test-clock", false, "TEST SWITCH, never in production: POST /api/test/clock moves the automation's clock forward")
}

// check rejects flag values that would misbehave later instead of failing at start.
func (f *serveFlags) check() error {
	switch {
	case f.cfConcurrency < 1 || f.cfConcurrency > 1000:
		return fmt.Errorf("--cloudflare-concurrency must be between 1 and 1000, not %d", f.cfConcurrency)
	case f.cfCalls == 0:
		return errors.New("--cloudflare-calls-per-5m must be positive (or negative for no limit)")
	case f.reconcileEvery < 0 || f.orphanGrace < 0 || f.unverifiedTTL <= 0:
		return errors.New("--reconcile-interval and --orphan-grace must not be negative, --unverified-ttl must be positive")
	case f.rescueAfter < 2*time.Second:
		return fmt.Errorf("--job-rescue-after must be at least 2s, not %s", f.rescueAfter)
	case f.httpMaxConns < 1:
		return fmt.Errorf("--http-max-conns must be at least 1, not %d", f.httpMaxConns)
	case f.dnsAuthPort < 1 || f.dnsAuthPort > 65535:
		return fmt.Errorf("--dns-auth-port must be a port number, not %d", f.dnsAuthPort)
	}
	switch {
	case f.webhookRate <= 0 || f.webhookRate > 10000:
		return fmt.Errorf("--webhook-rate must be between 0 and 10000 deliveries per second, not %g", f.webhookRate)
	case f.grace < time.Hour:
		return fmt.Errorf("--misconfigured-grace must be at least 1h, not %s", f.grace)
	case f.smtpTLS != "mandatory" && f.smtpTLS != "opportunistic" && f.smtpTLS != "none":
		return fmt.Errorf("--smtp-tls must be mandatory, opportunistic or none, not %q", f.smtpTLS)
	case f.smtpPort < 1 || f.smtpPort > 65535:
		return fmt.Errorf("--smtp-port must be a port number, not %d", f.smtpPort)
	case f.webhookKey != "" && f.webhookKeyFile != "":
		return errors.New("give --webhook-secret-key or --webhook-secret-key-file, not both")
	}
	var err error
	switch {
	case f.webhookKey != "":
		f.webhookKeyBytes, err = webhooks.ParseKey(f.webhookKey)
	case f.webhookKeyFile != "":
		f.webhookKeyBytes, err = webhooks.LoadKey(f.webhookKeyFile)
	}
	if err != nil {
		return fmt.Errorf("--webhook-secret-key: %w", err)
	}
	if f.webhookNets, err = api.ParseNets(f.webhookAllowNets); err != nil {
		return fmt.Errorf("--webhook-allow-net: %w", err)
	}
	proxies, err := api.ParseNets(f.trustedProxies)
	if err != nil {
		return fmt.Errorf("--trusted-proxy: %w", err)
	}
	f.proxies = proxies
	if f.backendNets, err = api.ParseNets(f.allowBackendNets); err != nil {
		return fmt.Errorf("--allow-backend-net: %w", err)
	}
	return nil
}

func (f *serveFlags) config(logger *slog.Logger) app.Config {
	return app.Config{
		DatabaseURL: f.dbURL, HTTPAddr: f.httpAddr, Zone: strings.TrimSuffix(strings.ToLower(f.zone), "."),
		DNSResolvers: f.resolvers, ExtraBlocked: f.blocked, UnverifiedTTL: f.unverifiedTTL,
		Version: version, Logger: logger,
		CloudflareAPIURL: f.cfURL, CloudflareAPIToken: f.cfToken, CloudflareZoneID: f.cfZone, SaaSMode: f.saas,
		CloudflareCalls: f.cfCalls,
		AgentAddr:       f.agentAddr, AgentTLSCert: f.agentCert, AgentTLSKey: f.agentKey,
		TrustedProxies: f.proxies, HTTPMaxConns: f.httpMaxConns, AllowedBackendNets: f.backendNets,
		DNSAuthPort:      strconv.Itoa(f.dnsAuthPort),
		WebhookSecretKey: f.webhookKeyBytes, WebhookAllowNets: f.webhookNets, Grace: f.grace, TestClock: f.testClock,
		Automation: automation.Config{DeliveryRate: f.webhookRate},
		SMTP: mailer.Config{Host: f.smtpHost, Port: f.smtpPort, Username: f.smtpUser, Password: f.smtpPassword, From: f.smtpFrom,
			TLS: f.smtpTLS, MessageIDDomain: mailDomain(f.smtpFrom, f.zone)},
		Provisioning: provisioning.Config{
			ReconcileInterval: f.reconcileEvery, OrphanGrace: f.orphanGrace, Concurrency: f.cfConcurrency,
			RescueStuckJobsAfter: f.rescueAfter, JobTimeout: min(time.Minute, f.rescueAfter/2),
		},
	}
}

// mailDomain is the right-hand side of Message-IDs: the From address's domain, else the zone.
func mailDomain(from, zone string) string {
	if a, err := mail.ParseAddress(from); err == nil {
		if _, d, ok := strings.Cut(a.Address, "@"); ok {
			return d
		}
	}
	return zone
}

func serveCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f serveFlags
	f.register(fs, true)
	if err := parse(fs, args); err != nil {
		return err
	}
	if f.dbURL == "" {
		return errors.New("--database-url (or SAJET_DATABASE_URL) is required")
	}
	if err := f.check(); err != nil {
		return err
	}
	logger, err := newLogger(stderr, f.logLevel)
	if err != nil {
		return err
	}
	return app.Run(ctx, f.config(logger))
}

func tokenCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbURL := fs.String("database-url", "", "PostgreSQL URL")
	role := fs.String("role", "", "admin or customer")
	customerID := fs.Int64("customer-id", 0, "customer the token acts for (role customer)")
	name := fs.String("name", "cli", "label shown in token lists")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *dbURL == "" {
		return errors.New("--database-url (or SAJET_DATABASE_URL) is required")
	}
	var cust *int64
	switch *role {
	case api.RoleAdmin:
		if *customerID != 0 {
			return errors.New("--customer-id is only for --role customer")
		}
	case api.RoleCustomer:
		if *customerID <= 0 {
			return errors.New("--role customer needs --customer-id")
		}
		cust = customerID
	default:
		return fmt.Errorf("--role must be admin or customer, not %q", *role)
	}
	pool, err := app.Open(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	secret, hash := api.NewToken()
	if _, err := store.New(pool).CreateAPIToken(ctx, "cli", hash, *role, cust, *name); err != nil {
		return err
	}
	fmt.Fprintln(stdout, secret)
	return nil
}

func devCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f serveFlags
	f.register(fs, false)
	dir := fs.String("dir", ".dev", "where the private PostgreSQL cluster and local state live")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := f.check(); err != nil {
		return err
	}
	logger, err := newLogger(stderr, f.logLevel)
	if err != nil {
		return err
	}
	return devenv.Run(ctx, devenv.Options{Dir: *dir, App: f.config(logger), Out: stdout})
}
