package automation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/jeturing/sajet-domains/controlplane/domains"
	"github.com/jeturing/sajet-domains/controlplane/store"
)

type sweepChecksWorker struct {
	river.WorkerDefaults[SweepChecksArgs]
	a *Automation
}

// Work claims the checks due now and enqueues one job per domain, in one transaction with the
// claim (a claim without its job cannot commit). When the claim was full there may be more due:
// the sweep runs again at once.
func (w *sweepChecksWorker) Work(ctx context.Context, _ *river.Job[SweepChecksArgs]) error {
	n, err := w.a.SweepChecks(ctx)
	if err != nil {
		return err
	}
	if n >= w.a.cfg.SweepLimit {
		if _, err := w.a.client.Insert(ctx, SweepChecksArgs{}, &river.InsertOpts{ScheduledAt: time.Now().Add(time.Second)}); err != nil {
			return fmt.Errorf("schedule the next sweep: %w", err)
		}
	}
	return nil
}

// SweepChecks claims up to SweepLimit due checks and enqueues them; it returns how many.
func (a *Automation) SweepChecks(ctx context.Context) (int, error) {
	now := a.now()
	n, err := a.cfg.Store.ClaimDueChecks(ctx, now, a.cfg.SweepLease, a.cfg.SweepLimit,
		func(ctx context.Context, tx pgx.Tx, ids []int64) error {
			params := make([]river.InsertManyParams, len(ids))
			for i, id := range ids {
				params[i] = river.InsertManyParams{Args: CheckDomainArgs{DomainID: id, Claimed: now.UnixMilli()}}
			}
			_, err := a.client.InsertManyTx(ctx, tx, params)
			return err
		})
	if err != nil {
		return 0, fmt.Errorf("sweep checks: %w", err)
	}
	if n > 0 {
		a.logger.DebugContext(ctx, "checks enqueued", "count", n)
	}
	return n, nil
}

type checkWorker struct {
	river.WorkerDefaults[CheckDomainArgs]
	a *Automation
}

// Timeout bounds a check: the verifier's own bound (5s) plus the transaction.
func (w *checkWorker) Timeout(*river.Job[CheckDomainArgs]) time.Duration { return 30 * time.Second }

// Work checks one domain through the domain rules (domains.Service.Check).
func (w *checkWorker) Work(ctx context.Context, job *river.Job[CheckDomainArgs]) error {
	result, err := w.a.cfg.Domains.Check(ctx, job.Args.DomainID)
	var de *domains.Error
	if errors.As(err, &de) && de.Kind == domains.NotFound {
		return nil // deleted since the sweep
	}
	if err != nil {
		w.a.metrics.checks.WithLabelValues("not_recorded").Inc()
		return fmt.Errorf("check domain %d: %w", job.Args.DomainID, err)
	}
	w.a.metrics.checks.WithLabelValues(result).Inc()
	return nil
}

type evaluateWorker struct {
	river.WorkerDefaults[EvaluateAlertsArgs]
	a *Automation
}

// Work opens and resolves the time-based alerts.
func (w *evaluateWorker) Work(ctx context.Context, _ *river.Job[EvaluateAlertsArgs]) error {
	_, err := w.a.EvaluateAlerts(ctx)
	return err
}

// EvaluateAlerts opens and resolves the time-based alerts now (the periodic job does it every
// AlertInterval).
func (a *Automation) EvaluateAlerts(ctx context.Context) (store.AlertSummary, error) {
	sum, err := a.cfg.Store.EvaluateAlerts(ctx, store.AlertPolicy{Now: a.now(), UnverifiedAfter: a.cfg.UnverifiedAlert,
		DNSErrorAfter: a.cfg.Health.DNSErrorAlert, DisagreeAfter: a.cfg.Health.DisagreeAlert,
		CertificateWarning: a.cfg.CertificateWarning, StalledAfter: a.cfg.StalledAfter, Reminders: a.cfg.Reminders})
	if err != nil {
		return sum, fmt.Errorf("evaluate alerts: %w", err)
	}
	if sum.Opened+sum.Resolved > 0 {
		a.logger.InfoContext(ctx, "alerts evaluated", "opened", sum.Opened, "resolved", sum.Resolved)
	}
	return sum, nil
}

type purgeWorker struct {
	river.WorkerDefaults[PurgeArgs]
	a *Automation
}

// Work removes delivery logs, events and notifications past their retention.
func (w *purgeWorker) Work(ctx context.Context, _ *river.Job[PurgeArgs]) error {
	n, err := w.a.cfg.Store.Purge(ctx, w.a.now(), w.a.cfg.Retention)
	if err != nil {
		return err
	}
	if n > 0 {
		w.a.logger.InfoContext(ctx, "automation history purged", "rows", n)
	}
	return nil
}
