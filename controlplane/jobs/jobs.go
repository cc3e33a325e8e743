// Package jobs builds the control plane's one River client. Every replica's client knows every
// kind of job (provisioning, automation): River's leader rescues jobs stuck in a dead process
// and discards those whose kind its client does not know, and runs only its own client's periodic
// jobs, so two clients on one database would lose jobs and skip sweeps depending on which one
// happened to be elected.
package jobs

import (
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
)

// Set is a group of workers that share the client: provisioning, automation.
type Set interface {
	// AddWorkers registers the set's workers.
	AddWorkers(*river.Workers)
	// Queues are the queues the set's jobs run on, with their worker slots.
	Queues() map[string]river.QueueConfig
	// PeriodicJobs run on the elected leader only.
	PeriodicJobs() []*river.PeriodicJob
	// UseClient gives the set the client, to insert follow-up jobs.
	UseClient(*river.Client[pgx.Tx])
}

// Config tunes the client; zero values take the defaults noted.
type Config struct {
	Logger *slog.Logger
	// JobTimeout bounds a job whose worker does not say otherwise; default 1m.
	JobTimeout time.Duration
	// RescueStuckJobsAfter: a job running longer than this (its process died) runs again; default 2m.
	RescueStuckJobsAfter time.Duration
	// FetchCooldown is the least time between two fetches; default 10ms.
	FetchCooldown time.Duration
	// FetchPollInterval is how often queues are polled when no insert notification arrives; default 1s.
	FetchPollInterval time.Duration
	// RetryPolicy is the retry schedule of workers that do not set their own; default
	// Backoff{Base: 1s, Max: 5m}.
	RetryPolicy river.ClientRetryPolicy
}

// New builds the client with every set's workers, queues and periodic jobs, and hands it to the
// sets. It does not start working until Start.
func New(pool *pgxpool.Pool, cfg Config, sets ...Set) (*river.Client[pgx.Tx], error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.JobTimeout, time.Minute)
	def(&cfg.RescueStuckJobsAfter, 2*time.Minute)
	def(&cfg.FetchCooldown, 10*time.Millisecond)
	def(&cfg.FetchPollInterval, time.Second)
	if cfg.RetryPolicy == nil {
		cfg.RetryPolicy = &Backoff{Base: time.Second, Max: 5 * time.Minute}
	}
	workers := river.NewWorkers()
	queues := map[string]river.QueueConfig{}
	var periodic []*river.PeriodicJob
	for _, s := range sets {
		s.AddWorkers(workers)
		for name, q := range s.Queues() {
			if _, dup := queues[name]; dup {
				return nil, fmt.Errorf("jobs: queue %q declared twice", name)
			}
			queues[name] = q
		}
		periodic = append(periodic, s.PeriodicJobs()...)
	}
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:               maps.Clone(queues),
		Workers:              workers,
		PeriodicJobs:         periodic,
		JobTimeout:           cfg.JobTimeout,
		RescueStuckJobsAfter: cfg.RescueStuckJobsAfter,
		RetryPolicy:          cfg.RetryPolicy,
		Logger:               cfg.Logger,
		FetchCooldown:        cfg.FetchCooldown,
		FetchPollInterval:    cfg.FetchPollInterval,
	})
	if err != nil {
		return nil, fmt.Errorf("river client: %w", err)
	}
	for _, s := range sets {
		s.UseClient(client)
	}
	return client, nil
}

// Backoff retries fast at first and doubles the wait per attempt up to Max, with ±10% jitter so
// jobs that failed together do not retry together.
type Backoff struct{ Base, Max time.Duration }

// NextRetry implements river.ClientRetryPolicy.
func (b *Backoff) NextRetry(job *rivertype.JobRow) time.Time {
	d := b.Base
	for i := 1; i < job.Attempt && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	jitter := time.Duration((rand.Float64()*0.2 - 0.1) * float64(d))
	return time.Now().Add(d + jitter)
}

// WhileQueued makes a job unique per arguments while one is waiting or running. River's default
// also counts completed jobs, which would silently drop every later job with the same arguments
// for as long as the completed row is kept.
var WhileQueued = river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
	rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
	rivertype.JobStateRetryable, rivertype.JobStateScheduled,
}}
