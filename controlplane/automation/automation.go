// Package automation is what the control plane does without being asked (docs/AUTOMATION.md):
// it keeps checking every domain's DNS, turns verified domains whose DNS stopped pointing at us
// into misconfigured and then deactivated ones, sweeps Cloudflare's custom hostnames for moved
// hostnames and certificates in trouble, opens and resolves alerts, delivers domain events to
// webhook endpoints as signed Standard Webhooks, and emails customers.
//
// Everything runs as River jobs on the control plane's one client (package jobs). The periodic
// sweeps run on River's elected leader only; the work they find is a job per domain, delivery or
// email, unique while queued, so several replicas share it without doing anything twice. Each
// transition is decided by package domains and written by package store in the transaction of
// the check that caused it, together with its event, alerts and notification; an event's webhook
// fan-out and a notification's email are jobs inserted in that same transaction (the outbox), so
// they happen if and only if the change commits.
//
// Time comes from a clock.Clock, so tests live through a seven-day grace period in milliseconds.
package automation

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"golang.org/x/time/rate"

	"github.com/jeturing/sajet-domains/controlplane/cloudflare"
	"github.com/jeturing/sajet-domains/controlplane/domains"
	"github.com/jeturing/sajet-domains/controlplane/jobs"
	"github.com/jeturing/sajet-domains/controlplane/mailer"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/controlplane/webhooks"
	"github.com/jeturing/sajet-domains/internal/clock"
)

// Hostnames is what the custom hostname sweep needs from Cloudflare for SaaS.
type Hostnames interface {
	ListCustomHostnames(ctx context.Context, each func(cloudflare.CustomHostname) error) error
	ReviveCustomHostname(ctx context.Context, id, sslMethod string) (cloudflare.CustomHostname, error)
}

// Mailer sends rendered emails; *mailer.Mailer is the real one.
type Mailer interface {
	Configured() bool
	Send(ctx context.Context, to string, r mailer.Rendered, id string) error
}

// Config configures the automation; zero durations and counts take the defaults noted.
type Config struct {
	Store   *store.Store
	Domains *domains.Service
	Clock   clock.Clock // nil: the real clock
	Logger  *slog.Logger
	// Health is the domains' policy, for the alert thresholds it holds (dns errors, disagreement).
	Health domains.Health

	// Checks: the sweep runs every SweepInterval (1m) and claims at most SweepLimit (5000) due
	// checks; a claimed check not recorded within SweepLease (10m) is claimed again. CheckWorkers
	// (50) checks run at once per replica (the verifier bounds their queries).
	SweepInterval time.Duration
	SweepLimit    int
	SweepLease    time.Duration
	CheckWorkers  int

	// Hostnames (SaaS mode; nil: off) are swept every HostnameInterval (6h).
	Hostnames        Hostnames
	HostnameInterval time.Duration

	// Alerts are evaluated every AlertInterval (5m): unverified for UnverifiedAlert (7 days),
	// certificates ending within CertificateWarning (14 days), checks due for StalledAfter (1h).
	// Reminders are the ages of an unverified registration at which its owner is emailed (1 and
	// 5 days).
	AlertInterval      time.Duration
	UnverifiedAlert    time.Duration
	CertificateWarning time.Duration
	StalledAfter       time.Duration
	Reminders          []time.Duration

	// Webhooks: Sealer opens signing secrets (nil: webhooks off, endpoints cannot be created);
	// Guard judges endpoint URLs when saved and at dial time (Allow: --webhook-allow-net);
	// Resolver resolves them when saved (nil: net.DefaultResolver). DeliveryWorkers (10)
	// deliveries run at once per replica, each within WebhookTimeout (15s). RetrySchedule is the
	// wait after each failed attempt (the spec's: 5s … 24h, about three days); an endpoint
	// failing for DisableAfter (5 days) is disabled and its owner told.
	//
	// DeliveryRate (50 per second per replica) caps attempts: a delivery costs about 3 ms of CPU
	// between this process and PostgreSQL, so a burst of thousands would otherwise take a core
	// from the API while it drains (docs/AUTOMATION.md, "Figures").
	Sealer          *webhooks.Sealer
	Guard           webhooks.Guard
	Resolver        webhooks.Resolver
	DeliveryWorkers int
	DeliveryRate    float64
	WebhookTimeout  time.Duration
	RetrySchedule   []time.Duration
	DisableAfter    time.Duration

	// Mailer sends notifications; nil or unconfigured: they are recorded (and logged), not sent.
	Mailer Mailer

	// Retention of the delivery log (30 days) and of notifications and resolved alerts (180 days);
	// purged daily.
	Retention store.Retention
}

// DefaultRetrySchedule is the Standard Webhooks specification's example schedule: after the
// first attempt, 5s, 5m, 30m, 2h, 5h, 10h, 14h, 20h and 24h (about 75 hours in all), each with
// ±10% jitter.
var DefaultRetrySchedule = []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour,
	5 * time.Hour, 10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour}

// Queues.
const (
	queueChecks     = "checks"
	queueWebhooks   = "webhooks"
	queueAutomation = "automation"
)

// Automation is the automation's River job set and what the API asks of it.
type Automation struct {
	cfg     Config
	logger  *slog.Logger
	client  *river.Client[pgx.Tx]
	sender  *webhooks.Client
	limiter *rate.Limiter // delivery attempts
	metrics *metrics
}

// New returns the automation; hand it to jobs.New with the other sets, and to store.UseAutomation.
func New(cfg Config) *Automation {
	if cfg.Clock == nil {
		cfg.Clock = clock.System
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.SweepInterval, time.Minute)
	def(&cfg.SweepLease, 10*time.Minute)
	def(&cfg.HostnameInterval, 6*time.Hour)
	def(&cfg.AlertInterval, 5*time.Minute)
	def(&cfg.UnverifiedAlert, 7*24*time.Hour)
	def(&cfg.CertificateWarning, 14*24*time.Hour)
	def(&cfg.StalledAfter, time.Hour)
	def(&cfg.WebhookTimeout, 15*time.Second)
	def(&cfg.DisableAfter, 5*24*time.Hour)
	def(&cfg.Retention.Deliveries, 30*24*time.Hour)
	def(&cfg.Retention.Notifications, 180*24*time.Hour)
	cfg.Health = withHealthDefaults(cfg.Health)
	if cfg.SweepLimit <= 0 {
		cfg.SweepLimit = 5000
	}
	if cfg.CheckWorkers <= 0 {
		cfg.CheckWorkers = 50
	}
	if cfg.DeliveryWorkers <= 0 {
		cfg.DeliveryWorkers = 10
	}
	if cfg.DeliveryRate <= 0 {
		cfg.DeliveryRate = 50
	}
	if cfg.Reminders == nil {
		cfg.Reminders = []time.Duration{24 * time.Hour, 5 * 24 * time.Hour}
	}
	if len(cfg.RetrySchedule) == 0 {
		cfg.RetrySchedule = DefaultRetrySchedule
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	return &Automation{cfg: cfg, logger: cfg.Logger, sender: webhooks.NewClient(cfg.Guard, cfg.WebhookTimeout),
		limiter: rate.NewLimiter(rate.Limit(cfg.DeliveryRate), cfg.DeliveryWorkers), metrics: newMetrics()}
}

func withHealthDefaults(h domains.Health) domains.Health {
	d := domains.DefaultHealth()
	if h.DNSErrorAlert <= 0 {
		h.DNSErrorAlert = d.DNSErrorAlert
	}
	if h.DisagreeAlert <= 0 {
		h.DisagreeAlert = d.DisagreeAlert
	}
	return h
}

// Webhooks reports whether webhook endpoints can be used (a secret key was given).
func (a *Automation) Webhooks() bool { return a.cfg.Sealer != nil }

func (a *Automation) now() time.Time { return a.cfg.Clock.Now() }

// AddWorkers implements jobs.Set.
func (a *Automation) AddWorkers(w *river.Workers) {
	river.AddWorker(w, &sweepChecksWorker{a: a})
	river.AddWorker(w, &checkWorker{a: a})
	river.AddWorker(w, &sweepHostnamesWorker{a: a})
	river.AddWorker(w, &evaluateWorker{a: a})
	river.AddWorker(w, &fanoutWorker{a: a})
	river.AddWorker(w, &deliverWorker{a: a})
	river.AddWorker(w, &emailWorker{a: a})
	river.AddWorker(w, &purgeWorker{a: a})
}

// Queues implements jobs.Set.
func (a *Automation) Queues() map[string]river.QueueConfig {
	return map[string]river.QueueConfig{
		queueChecks: {MaxWorkers: a.cfg.CheckWorkers},
		// The poll is the backup for an insert notification River leaves out in a burst (see
		// FanoutArgs); River's default (1 s) would be the tail of commit → request.
		queueWebhooks:   {MaxWorkers: a.cfg.DeliveryWorkers, FetchPollInterval: 250 * time.Millisecond},
		queueAutomation: {MaxWorkers: 10},
	}
}

// PeriodicJobs implements jobs.Set: the sweeps, on the leader.
func (a *Automation) PeriodicJobs() []*river.PeriodicJob {
	periodic := func(id string, every time.Duration, args river.JobArgs) *river.PeriodicJob {
		return river.NewPeriodicJob(river.PeriodicInterval(every),
			func() (river.JobArgs, *river.InsertOpts) { return args, nil },
			&river.PeriodicJobOpts{ID: id, RunOnStart: true})
	}
	out := []*river.PeriodicJob{
		periodic("sweep_checks", a.cfg.SweepInterval, SweepChecksArgs{}),
		periodic("evaluate_alerts", a.cfg.AlertInterval, EvaluateAlertsArgs{}),
		periodic("purge_automation", 24*time.Hour, PurgeArgs{}),
	}
	if a.cfg.Hostnames != nil {
		out = append(out, periodic("sweep_hostnames", a.cfg.HostnameInterval, SweepHostnamesArgs{}))
	}
	return out
}

// UseClient implements jobs.Set.
func (a *Automation) UseClient(c *river.Client[pgx.Tx]) { a.client = c }

// FanoutTx implements store.AutomationOutbox.
func (a *Automation) FanoutTx(ctx context.Context, tx pgx.Tx, eventID int64) error {
	_, err := a.client.InsertTx(ctx, tx, FanoutArgs{EventID: eventID}, nil)
	return err
}

// SendTx implements store.AutomationOutbox.
func (a *Automation) SendTx(ctx context.Context, tx pgx.Tx, notificationID int64) error {
	_, err := a.client.InsertTx(ctx, tx, SendEmailArgs{NotificationID: notificationID}, nil)
	return err
}

// Kick runs the sweeps now rather than at their next period (the test clock, after moving time,
// and operators). Jobs already queued are not duplicated.
func (a *Automation) Kick(ctx context.Context) error {
	params := []river.InsertManyParams{{Args: SweepChecksArgs{}}, {Args: EvaluateAlertsArgs{}}}
	if a.cfg.Hostnames != nil {
		params = append(params, river.InsertManyParams{Args: SweepHostnamesArgs{}})
	}
	if _, err := a.client.InsertMany(ctx, params); err != nil {
		return fmt.Errorf("run the sweeps: %w", err)
	}
	return nil
}

// Job arguments. Every kind is unique while queued.

// SweepChecksArgs claims due checks and enqueues them.
type SweepChecksArgs struct{}

// Kind implements river.JobArgs.
func (SweepChecksArgs) Kind() string { return "sweep_checks" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (SweepChecksArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueAutomation, UniqueOpts: jobs.WhileQueued, MaxAttempts: 3}
}

// CheckDomainArgs checks one domain. Claimed is when the sweep claimed it: the claim (its lease
// on next_check_at) is what keeps two sweeps from checking a domain twice, so each claim is its
// own job; unique by domain alone, a claim made while the previous check's job was still being
// completed would be dropped as its duplicate and the domain left unchecked until the lease ends.
type CheckDomainArgs struct {
	DomainID int64 `json:"domain_id"`
	Claimed  int64 `json:"claimed,omitempty"`
}

// Kind implements river.JobArgs.
func (CheckDomainArgs) Kind() string { return "check_domain" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (CheckDomainArgs) InsertOpts() river.InsertOpts {
	// A failed check is not retried by River: the lease brings it back at the next sweep.
	return river.InsertOpts{Queue: queueChecks, UniqueOpts: jobs.WhileQueued, MaxAttempts: 1}
}

// SweepHostnamesArgs reads every custom hostname.
type SweepHostnamesArgs struct{}

// Kind implements river.JobArgs.
func (SweepHostnamesArgs) Kind() string { return "sweep_hostnames" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (SweepHostnamesArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueAutomation, UniqueOpts: jobs.WhileQueued, MaxAttempts: 3}
}

// EvaluateAlertsArgs opens and resolves the time-based alerts.
type EvaluateAlertsArgs struct{}

// Kind implements river.JobArgs.
func (EvaluateAlertsArgs) Kind() string { return "evaluate_alerts" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (EvaluateAlertsArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueAutomation, UniqueOpts: jobs.WhileQueued, MaxAttempts: 3}
}

// FanoutArgs creates an event's deliveries.
type FanoutArgs struct {
	EventID int64 `json:"event_id"`
}

// Kind implements river.JobArgs.
func (FanoutArgs) Kind() string { return "fanout_event" }

// InsertOpts implements river.JobArgsWithInsertOpts. Not on the deliveries' queue: River sends
// at most one insert notification per queue per FetchCooldown, so deliveries inserted a few
// milliseconds after their fan-out job woke the queue went unannounced and waited for the next
// poll (commit → request was 1 s at p50).
func (FanoutArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueAutomation, UniqueOpts: jobs.WhileQueued}
}

// DeliverArgs sends one delivery. Round tells a delivery sent again on request from its earlier
// sending, whose job may not have completed yet (they would otherwise be one unique job).
type DeliverArgs struct {
	DeliveryID int64 `json:"delivery_id"`
	Round      int   `json:"round,omitempty"`
}

// Kind implements river.JobArgs.
func (DeliverArgs) Kind() string { return "deliver_webhook" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (a DeliverArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueWebhooks, UniqueOpts: jobs.WhileQueued, MaxAttempts: len(DefaultRetrySchedule) + 1}
}

// SendEmailArgs sends one notification.
type SendEmailArgs struct {
	NotificationID int64 `json:"notification_id"`
}

// Kind implements river.JobArgs.
func (SendEmailArgs) Kind() string { return "send_email" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (SendEmailArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueAutomation, UniqueOpts: jobs.WhileQueued, MaxAttempts: emailAttempts}
}

// PurgeArgs removes old delivery logs.
type PurgeArgs struct{}

// Kind implements river.JobArgs.
func (PurgeArgs) Kind() string { return "purge_automation" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (PurgeArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueAutomation, UniqueOpts: jobs.WhileQueued, MaxAttempts: 3}
}
