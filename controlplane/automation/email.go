package automation

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/riverqueue/river"

	"github.com/jeturing/sajet-domains/controlplane/mailer"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/internal/i18n"
)

// emailAttempts is how many times an email is tried (about an hour and a half with the backoff).
const emailAttempts = 8

type emailWorker struct {
	river.WorkerDefaults[SendEmailArgs]
	a *Automation
}

// NextRetry backs off 30s, 1m, 2m … up to 30m: an SMTP relay that is down usually comes back.
func (w *emailWorker) NextRetry(job *river.Job[SendEmailArgs]) time.Time {
	d := 30 * time.Second << min(job.Attempt-1, 6)
	return time.Now().Add(min(d, 30*time.Minute))
}

// Work renders the notification in its reader's language and sends it. Without an SMTP server it
// is recorded instead (and written to the log, so `make run` shows it), never lost and never sent
// twice: a sent or recorded notification is done.
func (w *emailWorker) Work(ctx context.Context, job *river.Job[SendEmailArgs]) error {
	a := w.a
	n, err := a.cfg.Store.GetNotification(ctx, job.Args.NotificationID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if n.Status == store.NotificationSent || n.Status == store.NotificationRecorded {
		return nil
	}
	r, err := Render(n)
	if err != nil {
		_ = a.cfg.Store.RecordNotification(ctx, n.ID, store.NotificationOutcome{Status: store.NotificationFailed, Error: err.Error(), At: a.now()})
		return river.JobCancel(err)
	}
	switch {
	case a.cfg.Mailer == nil || !a.cfg.Mailer.Configured():
		a.logger.InfoContext(ctx, "notification recorded, not sent (no SMTP server configured)", "notification_id", n.ID,
			"kind", n.Kind, "to", deref(n.To), "subject", r.Subject, "text", r.Text)
		a.metrics.emails.WithLabelValues(n.Kind, store.NotificationRecorded).Inc()
		return a.cfg.Store.RecordNotification(ctx, n.ID, store.NotificationOutcome{Status: store.NotificationRecorded, Subject: r.Subject, At: a.now()})
	case n.To == nil || *n.To == "":
		a.metrics.emails.WithLabelValues(n.Kind, store.NotificationRecorded).Inc()
		return a.cfg.Store.RecordNotification(ctx, n.ID, store.NotificationOutcome{Status: store.NotificationRecorded, Subject: r.Subject,
			Error: "no address to send to", At: a.now()})
	}
	err = a.cfg.Mailer.Send(ctx, *n.To, r, "notification-"+strconv.FormatInt(n.ID, 10))
	if err == nil {
		a.metrics.emails.WithLabelValues(n.Kind, store.NotificationSent).Inc()
		return a.cfg.Store.RecordNotification(ctx, n.ID, store.NotificationOutcome{Status: store.NotificationSent, Subject: r.Subject, At: a.now()})
	}
	status := store.NotificationPending
	if job.Attempt >= job.MaxAttempts {
		status = store.NotificationFailed
	}
	a.metrics.emails.WithLabelValues(n.Kind, "error").Inc()
	if rerr := a.cfg.Store.RecordNotification(ctx, n.ID, store.NotificationOutcome{Status: status, Subject: r.Subject, Error: err.Error(), At: a.now()}); rerr != nil {
		return rerr
	}
	return fmt.Errorf("send notification %d: %w", n.ID, err)
}

// Render writes a notification in its reader's language (Spanish unless they chose English).
func Render(n store.Notification) (mailer.Rendered, error) {
	lang := i18n.Lang(n.Lang)
	if lang != i18n.EN {
		lang = i18n.ES
	}
	d := n.Data
	date := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return mailer.FormatDate(*t, string(lang))
	}
	return mailer.Render(n.Kind, string(lang), map[string]any{
		"Hostname": d.Hostname, "PlatformHostname": d.PlatformHostname,
		"Problem": d.Problem.In(lang), "Fix": d.Fix.In(lang), "Next": d.Next.In(lang),
		"GraceUntil": date(d.GraceUntil), "Since": date(d.Since), "ExpiresAt": date(d.ExpiresAt),
		"Days": d.Days, "URL": d.URL, "EndpointID": d.EndpointID,
	})
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
