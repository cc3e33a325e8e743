package provisioning

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/jeturing/sajet-domains/controlplane/cloudflare"
	"github.com/jeturing/sajet-domains/controlplane/jobs"
	"github.com/jeturing/sajet-domains/controlplane/store"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// DNS is what provisioning needs from the Cloudflare DNS API.
type DNS interface {
	EnsureCNAME(ctx context.Context, domainID int64, name, target string, retryAfterUncertain bool) (cloudflare.Record, error)
	FindRecords(ctx context.Context, name string) ([]cloudflare.Record, error)
	DeleteRecord(ctx context.Context, id string) error
	ListOurRecords(ctx context.Context) ([]cloudflare.Record, error)
}

// SaaS is what provisioning needs from Cloudflare for SaaS (custom hostnames).
type SaaS interface {
	EnsureCustomHostname(ctx context.Context, domainID int64, hostname string, retryAfterUncertain bool) (cloudflare.CustomHostname, error)
	GetCustomHostname(ctx context.Context, id string) (cloudflare.CustomHostname, error)
	DeleteCustomHostname(ctx context.Context, id string) error
}

// Config configures the provisioner; zero values get production defaults.
type Config struct {
	Store  *store.Store
	DNS    DNS
	SaaS   SaaS // nil: SaaS mode off
	Logger *slog.Logger

	Concurrency          int           // concurrent Cloudflare calls; default 10
	Workers              int           // River worker slots; default 2 × Concurrency
	ReconcileInterval    time.Duration // default 5m; negative disables the periodic reconciler
	OrphanGrace          time.Duration // default 1h
	MaxRepairsPerRun     int           // default 200
	RefreshInterval      time.Duration // SaaS status polling; default 30s
	JobTimeout           time.Duration // default 1m
	RescueStuckJobsAfter time.Duration // a job running longer (its process died) runs again; default 2m
	RetryBase            time.Duration // first retry delay, doubled per attempt up to RetryMax; default 1s
	RetryMax             time.Duration // default 5m
	// FetchCooldown is the least time between two fetches of jobs; with many jobs queued it bounds
	// throughput (each fetch takes at most Workers jobs). Default 10ms.
	FetchCooldown time.Duration
}

// Provisioner runs the provisioning jobs on River.
type Provisioner struct {
	cfg    Config
	client *river.Client[pgx.Tx]
	logger *slog.Logger
}

// New builds a River client of its own with the provisioning workers (tests, and a control
// plane without other jobs). It does not start working until Start; ProvisionTx and
// DeprovisionTx work before that (inserting only).
func New(pool *pgxpool.Pool, cfg Config) (*Provisioner, error) {
	p := NewSet(cfg)
	if _, err := jobs.New(pool, p.JobsConfig(), p); err != nil {
		return nil, err
	}
	return p, nil
}

// NewSet returns the provisioning workers as a jobs.Set, for the control plane's one River
// client (jobs.New with p.JobsConfig() and the other sets); the client is handed over by
// jobs.New.
func NewSet(cfg Config) *Provisioner {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.ReconcileInterval, 5*time.Minute)
	def(&cfg.OrphanGrace, time.Hour)
	def(&cfg.RefreshInterval, 30*time.Second)
	def(&cfg.JobTimeout, time.Minute)
	def(&cfg.RescueStuckJobsAfter, 2*time.Minute)
	def(&cfg.RetryBase, time.Second)
	def(&cfg.RetryMax, 5*time.Minute)
	def(&cfg.FetchCooldown, 10*time.Millisecond)
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 10
	}
	if cfg.Workers == 0 {
		cfg.Workers = 2 * cfg.Concurrency
	}
	lim := newLimiter(cfg.Concurrency)
	cfg.DNS = limitedDNS{l: lim, next: cfg.DNS}
	if cfg.SaaS != nil {
		cfg.SaaS = limitedSaaS{l: lim, next: cfg.SaaS}
	}
	if cfg.MaxRepairsPerRun == 0 {
		cfg.MaxRepairsPerRun = 200
	}
	return &Provisioner{cfg: cfg, logger: cfg.Logger}
}

// JobsConfig is the River client configuration provisioning needs: its job timeout, rescue
// delay, fetch cooldown and retry schedule (fast at first: a Cloudflare blip should not delay a
// customer by minutes).
func (p *Provisioner) JobsConfig() jobs.Config {
	return jobs.Config{Logger: p.cfg.Logger, JobTimeout: p.cfg.JobTimeout, RescueStuckJobsAfter: p.cfg.RescueStuckJobsAfter,
		FetchCooldown: p.cfg.FetchCooldown, RetryPolicy: &jobs.Backoff{Base: p.cfg.RetryBase, Max: p.cfg.RetryMax}}
}

// AddWorkers implements jobs.Set.
func (p *Provisioner) AddWorkers(w *river.Workers) {
	river.AddWorker(w, &provisionWorker{p: p})
	river.AddWorker(w, &deprovisionWorker{p: p})
	river.AddWorker(w, &refreshWorker{p: p})
	river.AddWorker(w, &reconcileWorker{p: p})
}

// Queues implements jobs.Set.
func (p *Provisioner) Queues() map[string]river.QueueConfig {
	return map[string]river.QueueConfig{queueName: {MaxWorkers: p.cfg.Workers}}
}

// PeriodicJobs implements jobs.Set: the zone reconciliation.
func (p *Provisioner) PeriodicJobs() []*river.PeriodicJob {
	if p.cfg.ReconcileInterval <= 0 {
		return nil
	}
	return []*river.PeriodicJob{river.NewPeriodicJob(
		river.PeriodicInterval(p.cfg.ReconcileInterval),
		func() (river.JobArgs, *river.InsertOpts) { return ReconcileArgs{}, nil },
		&river.PeriodicJobOpts{ID: "reconcile_zone", RunOnStart: true},
	)}
}

// UseClient implements jobs.Set.
func (p *Provisioner) UseClient(c *river.Client[pgx.Tx]) { p.client = c }

// Start starts working jobs.
func (p *Provisioner) Start(ctx context.Context) error { return p.client.Start(ctx) }

// Stop finishes running jobs (bounded by ctx) and stops.
func (p *Provisioner) Stop(ctx context.Context) error { return p.client.Stop(ctx) }

// ProvisionTx implements store.Outbox.
func (p *Provisioner) ProvisionTx(ctx context.Context, tx pgx.Tx, domainID int64) error {
	_, err := p.client.InsertTx(ctx, tx, ProvisionArgs{DomainID: domainID}, nil)
	return err
}

// DeprovisionTx implements store.Outbox.
func (p *Provisioner) DeprovisionTx(ctx context.Context, tx pgx.Tx, domainID int64) error {
	_, err := p.client.InsertTx(ctx, tx, DeprovisionArgs{DomainID: domainID}, nil)
	return err
}

// Reconcile enqueues a reconciliation now (ops and tests; the leader also runs it periodically).
func (p *Provisioner) Reconcile(ctx context.Context) error {
	_, err := p.client.Insert(ctx, ReconcileArgs{}, nil)
	return err
}

// Client exposes the River client (tests subscribe to job events).
func (p *Provisioner) Client() *river.Client[pgx.Tx] { return p.client }

// fail turns a Cloudflare error into the job's outcome and shows it on the domain.
// The sentence shown is ours in both languages; Cloudflare's own error is quoted as it came.
func (p *Provisioner) fail(ctx context.Context, domainID int64, step string, what i18n.Text, err error) error {
	retryable, _, retryAfter := cloudflare.Classify(err)
	msg := i18n.F("no se pudo %s: %v", "could not %s: %v", what, err)
	var foreign *cloudflare.ForeignRecordError
	if errors.As(err, &foreign) {
		msg = foreignSentence(foreign)
	}
	if retryable {
		msg = i18n.F("%s (se reintenta)", "%s (retrying)", msg)
	}
	if recErr := p.cfg.Store.RecordProvisionError(ctx, domainID, step, msg); recErr != nil {
		p.logger.WarnContext(ctx, "record provisioning error", "domain_id", domainID, "err", recErr)
	}
	p.logger.WarnContext(ctx, "provisioning step failed", "domain_id", domainID, "step", step, "retryable", retryable, "err", err)
	switch {
	case retryAfter > 0:
		// Cloudflare said when to come back: waiting is not a failed attempt.
		return river.JobSnooze(retryAfter)
	case retryable:
		return err
	default:
		return river.JobCancel(err)
	}
}

// foreignSentence says, in both languages, that a record in our way is not ours.
func foreignSentence(e *cloudflare.ForeignRecordError) i18n.Text {
	kind := i18n.T("registro", "record")
	if e.Kind == "custom hostname" {
		kind = i18n.T("custom hostname", "custom hostname")
	}
	if e.Deleting {
		return i18n.F("el %s de %s no está gestionado por Sajet; no se borra", "the %s for %s is not managed by Sajet; not deleting it", kind, e.Name)
	}
	return i18n.F("ya existe un %s para %s y no está gestionado por Sajet", "a %s for %s already exists and is not managed by Sajet", kind, e.Name)
}
