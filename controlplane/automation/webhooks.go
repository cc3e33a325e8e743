package automation

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/controlplane/webhooks"
	"github.com/jeturing/sajet-domains/internal/i18n"
)

// Error is a request the automation refuses, with a stable Code and a sentence for its author.
type Error struct {
	Code    string
	Message i18n.Text
	// Unavailable: the feature is off in this control plane (webhooks without a secret key).
	Unavailable bool
}

func (e *Error) Error() string { return e.Message.EN }

// ErrWebhooksOff is returned when no --webhook-secret-key was given.
var ErrWebhooksOff = &Error{Code: "webhooks_disabled", Unavailable: true, Message: i18n.T(
	"los webhooks están desactivados: el plano de control necesita --webhook-secret-key para cifrar los secretos de firma",
	"webhooks are disabled: the control plane needs --webhook-secret-key to encrypt signing secrets")}

// Bounds of an endpoint's fields.
const (
	maxURL          = 2048
	maxDescription  = 500
	maxGrace        = 7 * 24 * time.Hour
	defaultGrace    = 24 * time.Hour
	maxRecoverRange = 30 * 24 * time.Hour
)

// EndpointInput is an endpoint as created or changed through the API.
type EndpointInput struct {
	CustomerID  *int64
	URL         string
	Description string
	EventTypes  []string
	Enabled     bool
}

func invalid(code string, msg i18n.Text) error { return &Error{Code: code, Message: msg} }

// checkURL judges an endpoint URL as it is saved; the same guard runs again at dial time.
func (a *Automation) checkURL(ctx context.Context, raw string) error {
	if len(raw) > maxURL || !utf8.ValidString(raw) {
		return invalid("invalid_url", i18n.F("la URL tiene más de %d bytes", "the URL is longer than %d bytes", maxURL))
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := a.cfg.Guard.CheckURL(ctx, a.cfg.Resolver, raw); err != nil {
		// The guard's own words, quoted (they name the address it refused).
		return invalid("invalid_url", i18n.F("la URL no se acepta: %s", "the URL is not accepted: %s", err.Error()))
	}
	return nil
}

func checkEventTypes(types []string) ([]string, error) {
	if len(types) > len(store.EventTypes) {
		return nil, invalid("invalid_event_types", i18n.T("demasiados tipos de evento", "too many event types"))
	}
	out := make([]string, 0, len(types))
	for _, t := range types {
		if !slices.Contains(store.EventTypes, t) {
			return nil, invalid("invalid_event_types", i18n.F("tipo de evento desconocido %q; los tipos son: %s",
				"unknown event type %q; the types are: %s", t, strings.Join(store.EventTypes, ", ")))
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out, nil
}

func checkDescription(d string) error {
	if len(d) > maxDescription || !utf8.ValidString(d) {
		return invalid("invalid_description", i18n.F("la descripción tiene más de %d bytes", "the description is longer than %d bytes", maxDescription))
	}
	return nil
}

// CreateEndpoint checks and stores an endpoint with a fresh signing secret, which is returned
// here and never again (the database holds it sealed).
func (a *Automation) CreateEndpoint(ctx context.Context, actor string, in EndpointInput) (store.WebhookEndpoint, string, error) {
	if a.cfg.Sealer == nil {
		return store.WebhookEndpoint{}, "", ErrWebhooksOff
	}
	if err := checkDescription(in.Description); err != nil {
		return store.WebhookEndpoint{}, "", err
	}
	types, err := checkEventTypes(in.EventTypes)
	if err != nil {
		return store.WebhookEndpoint{}, "", err
	}
	if err := a.checkURL(ctx, in.URL); err != nil {
		return store.WebhookEndpoint{}, "", err
	}
	secret := webhooks.NewSecret()
	ep, err := a.cfg.Store.CreateWebhookEndpoint(ctx, actor, store.WebhookEndpoint{CustomerID: in.CustomerID, URL: in.URL,
		Description: in.Description, EventTypes: types, Enabled: in.Enabled},
		func(id int64) []byte { return a.cfg.Sealer.Seal(id, secret) })
	if err != nil {
		return store.WebhookEndpoint{}, "", err
	}
	return ep, secret, nil
}

// UpdateEndpoint checks and applies a change; a new URL is judged like a new endpoint's.
func (a *Automation) UpdateEndpoint(ctx context.Context, actor string, id int64, p store.EndpointPatch) (store.WebhookEndpoint, error) {
	if p.URL.Set {
		if err := a.checkURL(ctx, p.URL.Value); err != nil {
			return store.WebhookEndpoint{}, err
		}
	}
	if p.Description.Set {
		if err := checkDescription(p.Description.Value); err != nil {
			return store.WebhookEndpoint{}, err
		}
	}
	if p.EventTypes.Set {
		types, err := checkEventTypes(p.EventTypes.Value)
		if err != nil {
			return store.WebhookEndpoint{}, err
		}
		p.EventTypes.Value = types
	}
	return a.cfg.Store.UpdateWebhookEndpoint(ctx, actor, id, p)
}

// RotateSecret gives an endpoint a new secret, returned once; the old one keeps signing beside it
// for grace (default 24h, at most 7 days), so receivers can switch without losing a request.
func (a *Automation) RotateSecret(ctx context.Context, actor string, id int64, grace *time.Duration) (store.WebhookEndpoint, string, error) {
	if a.cfg.Sealer == nil {
		return store.WebhookEndpoint{}, "", ErrWebhooksOff
	}
	g := defaultGrace
	if grace != nil {
		g = *grace
	}
	if g < 0 || g > maxGrace {
		return store.WebhookEndpoint{}, "", invalid("invalid_grace", i18n.T("el periodo de gracia va de 0 a 7 días", "the grace period is between 0 and 7 days"))
	}
	secret := webhooks.NewSecret()
	ep, err := a.cfg.Store.RotateWebhookSecret(ctx, actor, id, func(id int64) []byte { return a.cfg.Sealer.Seal(id, secret) }, g, a.now())
	if err != nil {
		return ep, "", err
	}
	return ep, secret, nil
}

// TestEndpoint sends a webhook.test event to one endpoint (enabled or not: a test is how its owner
// checks it before enabling it again). It returns the event's id.
func (a *Automation) TestEndpoint(ctx context.Context, ep store.WebhookEndpoint) (int64, error) {
	if a.cfg.Sealer == nil {
		return 0, ErrWebhooksOff
	}
	id, err := a.cfg.Store.EmitTestEvent(ctx, ep, a.now())
	if err != nil {
		return 0, err
	}
	if !ep.Enabled { // the fan-out sends only to enabled endpoints; a test goes to this one anyway
		if _, err := a.cfg.Store.FanoutTest(ctx, id, ep.ID, a.now(), a.enqueueDeliveries); err != nil {
			return 0, err
		}
	}
	return id, nil
}

// Recover sends again an endpoint's failed deliveries created in [since, until).
func (a *Automation) Recover(ctx context.Context, endpointID int64, since time.Time, until *time.Time) (int, error) {
	end := a.now()
	if until != nil {
		end = *until
	}
	if !since.Before(end) || end.Sub(since) > maxRecoverRange {
		return 0, invalid("invalid_range", i18n.T("since debe ser anterior a until, con 30 días como mucho entre ambos",
			"since must come before until, at most 30 days apart"))
	}
	// Without an end, every failed delivery since since: "until now" would miss those created at
	// this very instant.
	return a.cfg.Store.RecoverDeliveries(ctx, endpointID, since, until, a.now(), a.enqueueDeliveries)
}

// RetryDelivery sends one delivery again, with its webhook-id.
func (a *Automation) RetryDelivery(ctx context.Context, id int64) error {
	return a.cfg.Store.RetryDelivery(ctx, id, a.now(), a.enqueueDeliveries)
}

// enqueueDeliveries inserts the delivery jobs, with as many attempts as the retry schedule has
// waits plus one.
func (a *Automation) enqueueDeliveries(ctx context.Context, tx pgx.Tx, ds []store.QueuedDelivery) error {
	opts := &river.InsertOpts{MaxAttempts: len(a.cfg.RetrySchedule) + 1}
	params := make([]river.InsertManyParams, len(ds))
	for i, d := range ds {
		params[i] = river.InsertManyParams{Args: DeliverArgs{DeliveryID: d.ID, Round: d.Round}, InsertOpts: opts}
	}
	_, err := a.client.InsertManyTx(ctx, tx, params)
	return err
}

type fanoutWorker struct {
	river.WorkerDefaults[FanoutArgs]
	a *Automation
}

// Work creates the event's deliveries and enqueues them.
func (w *fanoutWorker) Work(ctx context.Context, job *river.Job[FanoutArgs]) error {
	_, err := w.a.cfg.Store.FanoutEvent(ctx, job.Args.EventID, w.a.now(), w.a.enqueueDeliveries)
	return err
}

type deliverWorker struct {
	river.WorkerDefaults[DeliverArgs]
	a *Automation
}

// Timeout bounds one attempt: the request's own timeout and the bookkeeping around it.
func (w *deliverWorker) Timeout(*river.Job[DeliverArgs]) time.Duration {
	return w.a.cfg.WebhookTimeout + 15*time.Second
}

// NextRetry follows the retry schedule, ±10% jitter so failures that happened together do not
// retry together.
func (w *deliverWorker) NextRetry(job *river.Job[DeliverArgs]) time.Time {
	s := w.a.cfg.RetrySchedule
	d := s[min(max(job.Attempt-1, 0), len(s)-1)]
	return time.Now().Add(d + time.Duration((rand.Float64()*0.2-0.1)*float64(d)))
}

// Work makes one attempt. A 2xx delivers; a 410 disables the endpoint; 429 and 503 with
// Retry-After wait as told (not an attempt); anything else, 3xx included, is a failure retried on
// the schedule until the attempts run out.
func (w *deliverWorker) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	a := w.a
	if err := a.limiter.Wait(ctx); err != nil {
		return fmt.Errorf("wait for the delivery rate: %w", err)
	}
	s, err := a.cfg.Store.GetSending(ctx, job.Args.DeliveryID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // its endpoint was deleted
	}
	if err != nil {
		return err
	}
	if s.Delivery.Status != store.DeliveryPending {
		return nil // settled already (a recovery or a disabled endpoint)
	}
	if !s.Endpoint.Enabled && s.Delivery.EventType != store.EventWebhookTest {
		_, err := a.cfg.Store.RecordAttempt(ctx, store.AttemptOutcome{DeliveryID: s.Delivery.ID, At: a.now(),
			Error: "endpoint disabled", Result: store.DeliveryFailed})
		return err
	}
	if a.cfg.Sealer == nil {
		return river.JobSnooze(time.Hour) // a replica without the key leaves it to one that has it
	}
	sealed, err := a.cfg.Store.SigningSecrets(ctx, s.Endpoint.ID, a.now())
	if err != nil {
		return err
	}
	keys := make([][]byte, 0, len(sealed))
	for _, b := range sealed {
		key, err := a.openKey(s.Endpoint.ID, b)
		if err != nil {
			// Another key than the one that sealed it: retrying cannot help.
			return river.JobCancel(fmt.Errorf("endpoint %d: signing secret: %w", s.Endpoint.ID, err))
		}
		keys = append(keys, key)
	}
	// The timestamp is the real time of the attempt: receivers compare it with their own clock.
	o := a.sender.Send(ctx, s.Endpoint.URL, keys, store.MessageID(s.Delivery.EventID), s.Payload, time.Now())
	out := store.AttemptOutcome{DeliveryID: s.Delivery.ID, At: a.now(), Duration: o.Duration, Status: o.Status, Error: o.Err,
		Excerpt: o.Excerpt, DisableAfter: a.cfg.DisableAfter}
	// Waits a receiver asked for (Retry-After) are not attempts, but do not stretch the whole
	// beyond the schedule.
	last := job.Attempt >= job.MaxAttempts || a.now().Sub(s.Delivery.CreatedAt) > a.retryWindow()
	switch {
	case o.Delivered():
		out.Result = store.DeliverySucceeded
	case o.Gone():
		out.Result, out.Gone = store.DeliveryFailed, true
	case last:
		out.Result = store.DeliveryFailed
	default:
		out.Result = store.DeliveryPending
	}
	a.metrics.delivered(out.Result, o)
	disabled, err := a.cfg.Store.RecordAttempt(ctx, out)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if disabled {
		a.logger.WarnContext(ctx, "webhook endpoint disabled", "endpoint_id", s.Endpoint.ID, "status", o.Status, "err", o.Err)
	}
	switch {
	case out.Result != store.DeliveryPending || disabled:
		return nil
	case o.RetryAfter > 0:
		return river.JobSnooze(o.RetryAfter)
	}
	what := o.Err
	if what == "" {
		what = fmt.Sprintf("HTTP %d", o.Status)
	}
	return fmt.Errorf("deliver %s to endpoint %d: %s", store.MessageID(s.Delivery.EventID), s.Endpoint.ID, what)
}

func (a *Automation) openKey(endpointID int64, sealed []byte) ([]byte, error) {
	secret, err := a.cfg.Sealer.Open(endpointID, sealed)
	if err != nil {
		return nil, err
	}
	return webhooks.ParseSecret(secret)
}

// retryWindow is how long a delivery is tried: the whole retry schedule.
func (a *Automation) retryWindow() time.Duration {
	var total time.Duration
	for _, d := range a.cfg.RetrySchedule {
		total += d
	}
	return total + total/10
}
