// Webhook endpoints, their sealed signing secrets, and the delivery log (docs/AUTOMATION.md,
// "Webhooks"). Secrets reach this package only sealed (package webhooks' Sealer): the store never
// sees one in clear.

package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// WebhookEndpoint is an endpoint (without its secrets).
type WebhookEndpoint struct {
	ID             int64
	CustomerID     *int64 // nil: admin-wide, receives every customer's events
	URL            string
	Description    string
	EventTypes     []string // empty: every type
	Enabled        bool
	DisabledReason *string // "gone" (410), "failing" (days of failures), "manual"
	DisabledAt     *time.Time
	FailingSince   *time.Time
	CreatedBy      string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	// Secrets is how many secrets sign now (2 during a rotation's grace period).
	Secrets int
}

// Why an endpoint was disabled.
const (
	DisabledGone    = "gone"
	DisabledFailing = "failing"
	DisabledManual  = "manual"
)

// Seal seals a new secret for an endpoint once its id is known (the sealed value is bound to it).
type Seal func(endpointID int64) []byte

const endpointColumns = `w.id, w.customer_id, w.url, w.description, w.event_types, w.enabled, w.disabled_reason, w.disabled_at,
	w.failing_since, w.created_by, w.created_at, w.updated_at,
	(SELECT count(*) FROM webhook_secrets s WHERE s.endpoint_id = w.id AND (s.expires_at IS NULL OR s.expires_at > now()))`

func scanEndpoint(r pgx.CollectableRow) (WebhookEndpoint, error) {
	var e WebhookEndpoint
	err := r.Scan(&e.ID, &e.CustomerID, &e.URL, &e.Description, &e.EventTypes, &e.Enabled, &e.DisabledReason, &e.DisabledAt,
		&e.FailingSince, &e.CreatedBy, &e.CreatedAt, &e.UpdatedAt, &e.Secrets)
	return e, err
}

func getEndpoint(ctx context.Context, q querier, id int64) (WebhookEndpoint, error) {
	rows, _ := q.Query(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints w WHERE w.id = $1`, id)
	e, err := pgx.CollectExactlyOneRow(rows, scanEndpoint)
	if errors.Is(err, pgx.ErrNoRows) {
		return e, ErrNotFound
	}
	if err != nil {
		return e, fmt.Errorf("get webhook endpoint %d: %w", id, err)
	}
	return e, nil
}

// GetWebhookEndpoint returns an endpoint.
func (s *Store) GetWebhookEndpoint(ctx context.Context, id int64) (WebhookEndpoint, error) {
	return getEndpoint(ctx, s.pool, id)
}

// MaxEndpointsPerOwner bounds the endpoints of one customer (and the admin-wide ones).
const MaxEndpointsPerOwner = 20

// CreateWebhookEndpoint stores an endpoint and its first secret (sealed by seal once the id is
// known), at most MaxEndpointsPerOwner per customer.
func (s *Store) CreateWebhookEndpoint(ctx context.Context, actor string, e WebhookEndpoint, seal Seal) (WebhookEndpoint, error) {
	var out WebhookEndpoint
	e.EventTypes = orEmpty(e.EventTypes) // the column is NOT NULL; pgx sends a nil slice as NULL
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if e.CustomerID != nil {
			// Serialises a customer's creations, so the bound holds under concurrency.
			if err := tx.QueryRow(ctx, `SELECT id FROM customers WHERE id = $1 FOR UPDATE`, *e.CustomerID).Scan(new(int64)); errors.Is(err, pgx.ErrNoRows) {
				return &MissingError{Code: "customer_not_found", Message: i18n.F("el cliente %d no existe", "customer %d does not exist", *e.CustomerID)}
			} else if err != nil {
				return fmt.Errorf("lock customer %d: %w", *e.CustomerID, err)
			}
		} else if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(1936357224)`); err != nil { // "sjwh": admin-wide creations
			return fmt.Errorf("lock admin endpoints: %w", err)
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM webhook_endpoints WHERE customer_id IS NOT DISTINCT FROM $1`, e.CustomerID).Scan(&n); err != nil {
			return fmt.Errorf("count webhook endpoints: %w", err)
		}
		if n >= MaxEndpointsPerOwner {
			return &ConflictError{Code: "endpoint_limit", Message: i18n.F("ya hay %d endpoints de webhook; elimine uno antes de crear otro",
				"there are already %d webhook endpoints; delete one before creating another", n)}
		}
		var id int64
		if err := tx.QueryRow(ctx, `INSERT INTO webhook_endpoints (customer_id, url, description, event_types, enabled, created_by,
				disabled_reason, disabled_at)
			VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN NOT $5 THEN 'manual' END, CASE WHEN NOT $5 THEN now() END) RETURNING id`,
			e.CustomerID, e.URL, e.Description, e.EventTypes, e.Enabled, actor).Scan(&id); err != nil {
			return fmt.Errorf("insert webhook endpoint: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO webhook_secrets (endpoint_id, sealed) VALUES ($1, $2)`, id, seal(id)); err != nil {
			return fmt.Errorf("store webhook secret: %w", err)
		}
		if err := audit(ctx, tx, actor, "webhook_endpoint.create", "webhook_endpoint", id, map[string]any{
			"url": e.URL, "customer_id": e.CustomerID, "event_types": e.EventTypes}); err != nil {
			return err
		}
		var err error
		out, err = getEndpoint(ctx, tx, id)
		return err
	})
	return out, err
}

// EndpointFilter selects endpoints; CustomerID nil means every owner (admins).
type EndpointFilter struct {
	CustomerID *int64
	AdminWide  bool // only the admin-wide ones
	After      int64
	Limit      int
}

// ListWebhookEndpoints returns endpoints in id order.
func (s *Store) ListWebhookEndpoints(ctx context.Context, f EndpointFilter) ([]WebhookEndpoint, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	rows, _ := s.pool.Query(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints w
		WHERE w.id > $1 AND ($2::bigint IS NULL OR w.customer_id = $2) AND (NOT $3 OR w.customer_id IS NULL)
		ORDER BY w.id LIMIT $4`, f.After, f.CustomerID, f.AdminWide, f.Limit)
	out, err := pgx.CollectRows(rows, scanEndpoint)
	if err != nil {
		return nil, fmt.Errorf("list webhook endpoints: %w", err)
	}
	return out, nil
}

// EndpointPatch is a partial update of an endpoint.
type EndpointPatch struct {
	URL         Change[string]
	Description Change[string]
	EventTypes  Change[[]string]
	Enabled     Change[bool]
}

// UpdateWebhookEndpoint applies p. Enabling a disabled endpoint forgets its failures, so it is
// not disabled again by the streak that disabled it.
func (s *Store) UpdateWebhookEndpoint(ctx context.Context, actor string, id int64, p EndpointPatch) (WebhookEndpoint, error) {
	var out WebhookEndpoint
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		old, err := getEndpoint(ctx, tx, id)
		if err != nil {
			return err
		}
		enabled := p.Enabled.To(old.Enabled)
		_, err = tx.Exec(ctx, `UPDATE webhook_endpoints SET url = $2, description = $3, event_types = $4, enabled = $5,
				disabled_reason = CASE WHEN $5 THEN NULL WHEN enabled THEN 'manual' ELSE disabled_reason END,
				disabled_at = CASE WHEN $5 THEN NULL WHEN enabled THEN now() ELSE disabled_at END,
				failing_since = CASE WHEN $5 AND NOT enabled THEN NULL ELSE failing_since END,
				updated_at = now()
			WHERE id = $1`, id, p.URL.To(old.URL), p.Description.To(old.Description), orEmpty(p.EventTypes.To(old.EventTypes)), enabled)
		if err != nil {
			return fmt.Errorf("update webhook endpoint %d: %w", id, err)
		}
		c := changes{}
		note(c, "url", old.URL, p.URL.To(old.URL))
		note(c, "description", old.Description, p.Description.To(old.Description))
		note(c, "enabled", old.Enabled, enabled)
		if p.EventTypes.Set && strings.Join(p.EventTypes.Value, ",") != strings.Join(old.EventTypes, ",") {
			c["event_types"] = map[string]any{"old": old.EventTypes, "new": p.EventTypes.Value}
		}
		if err := audit(ctx, tx, actor, "webhook_endpoint.update", "webhook_endpoint", id, c); err != nil {
			return err
		}
		out, err = getEndpoint(ctx, tx, id)
		return err
	})
	return out, err
}

// DeleteWebhookEndpoint removes an endpoint, its secrets and its delivery log.
func (s *Store) DeleteWebhookEndpoint(ctx context.Context, actor string, id int64) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var url string
		err := tx.QueryRow(ctx, `DELETE FROM webhook_endpoints WHERE id = $1 RETURNING url`, id).Scan(&url)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("delete webhook endpoint %d: %w", id, err)
		}
		return audit(ctx, tx, actor, "webhook_endpoint.delete", "webhook_endpoint", id, map[string]any{"url": url})
	})
}

// RotateWebhookSecret gives an endpoint a new secret; the ones signing now keep signing beside
// it until now+grace (0: they stop at once).
func (s *Store) RotateWebhookSecret(ctx context.Context, actor string, id int64, seal Seal, grace time.Duration, now time.Time) (WebhookEndpoint, error) {
	var out WebhookEndpoint
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT id FROM webhook_endpoints WHERE id = $1 FOR UPDATE`, id).Scan(new(int64)); errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		} else if err != nil {
			return fmt.Errorf("lock webhook endpoint %d: %w", id, err)
		}
		until := now.Add(grace)
		if _, err := tx.Exec(ctx, `UPDATE webhook_secrets SET expires_at = $2
			WHERE endpoint_id = $1 AND (expires_at IS NULL OR expires_at > $2)`, id, until); err != nil {
			return fmt.Errorf("retire webhook secrets of endpoint %d: %w", id, err)
		}
		// Secrets long past their grace are of no use to anyone.
		if _, err := tx.Exec(ctx, `DELETE FROM webhook_secrets WHERE endpoint_id = $1 AND expires_at < $2`, id, now.Add(-24*time.Hour)); err != nil {
			return fmt.Errorf("drop old webhook secrets of endpoint %d: %w", id, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO webhook_secrets (endpoint_id, sealed, created_at) VALUES ($1, $2, $3)`, id, seal(id), now); err != nil {
			return fmt.Errorf("store webhook secret: %w", err)
		}
		if err := audit(ctx, tx, actor, "webhook_endpoint.rotate_secret", "webhook_endpoint", id,
			map[string]any{"old_secrets_valid_until": until}); err != nil {
			return err
		}
		var err error
		out, err = getEndpoint(ctx, tx, id)
		return err
	})
	return out, err
}

// SigningSecrets returns an endpoint's sealed secrets that sign at now, newest first.
func (s *Store) SigningSecrets(ctx context.Context, endpointID int64, now time.Time) ([][]byte, error) {
	rows, _ := s.pool.Query(ctx, `SELECT sealed FROM webhook_secrets WHERE endpoint_id = $1 AND (expires_at IS NULL OR expires_at > $2)
		ORDER BY id DESC`, endpointID, now)
	out, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, fmt.Errorf("signing secrets of endpoint %d: %w", endpointID, err)
	}
	return out, nil
}

// Delivery statuses.
const (
	DeliveryPending   = "pending"
	DeliverySucceeded = "succeeded"
	DeliveryFailed    = "failed"
)

// Delivery is one event's delivery to one endpoint.
type Delivery struct {
	ID         int64      `json:"id"`
	EventID    int64      `json:"event_id"`
	EventType  string     `json:"event_type"`
	DomainID   *int64     `json:"domain_id"`
	EndpointID int64      `json:"endpoint_id"`
	Status     string     `json:"status"`
	Attempts   int        `json:"attempts"`
	LastStatus *int       `json:"last_status"`
	LastError  *string    `json:"last_error"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	FinishedAt *time.Time `json:"finished_at"`
}

const deliveryColumns = `d.id, d.event_id, e.type, e.domain_id, d.endpoint_id, d.status, d.attempts, d.last_status, d.last_error,
	d.created_at, d.updated_at, d.finished_at`

func scanDelivery(r pgx.CollectableRow) (Delivery, error) {
	var d Delivery
	err := r.Scan(&d.ID, &d.EventID, &d.EventType, &d.DomainID, &d.EndpointID, &d.Status, &d.Attempts, &d.LastStatus, &d.LastError,
		&d.CreatedAt, &d.UpdatedAt, &d.FinishedAt)
	return d, err
}

// QueuedDelivery is a delivery to send, in its round (0 when first sent, one more each time it
// is sent again on request).
type QueuedDelivery struct {
	ID    int64
	Round int
}

// EnqueueDeliveries enqueues the sending of deliveries in the transaction that created or reset
// them.
type EnqueueDeliveries func(ctx context.Context, tx pgx.Tx, deliveries []QueuedDelivery) error

func firstRound(ids []int64) []QueuedDelivery {
	out := make([]QueuedDelivery, len(ids))
	for i, id := range ids {
		out[i] = QueuedDelivery{ID: id}
	}
	return out
}

func scanQueued(r pgx.CollectableRow) (QueuedDelivery, error) {
	var q QueuedDelivery
	err := r.Scan(&q.ID, &q.Round)
	return q, err
}

// FanoutEvent creates a delivery of the event for every enabled endpoint that wants it (once:
// a fan-out that runs again creates nothing new) and enqueues their sending in the same
// transaction.
func (s *Store) FanoutEvent(ctx context.Context, eventID int64, now time.Time, enqueue EnqueueDeliveries) (int, error) {
	var n int
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `INSERT INTO webhook_deliveries (event_id, endpoint_id, created_at, updated_at)
			SELECT e.id, w.id, $2, $2 FROM domain_events e JOIN webhook_endpoints w ON w.enabled
				AND (w.customer_id IS NULL OR w.customer_id = e.customer_id)
				AND (w.event_types = '{}' OR e.type = ANY (w.event_types))
				AND (e.only_endpoint_id IS NULL OR w.id = e.only_endpoint_id)
			WHERE e.id = $1
			ON CONFLICT (event_id, endpoint_id) DO NOTHING RETURNING id`, eventID, now)
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("fan out event %d: %w", eventID, err)
		}
		n = len(ids)
		if n == 0 {
			return nil
		}
		return enqueue(ctx, tx, firstRound(ids))
	})
	return n, err
}

// FanoutTest creates the delivery of a test event to its endpoint even when the endpoint is
// disabled (its owner tests it before enabling it again).
func (s *Store) FanoutTest(ctx context.Context, eventID, endpointID int64, now time.Time, enqueue EnqueueDeliveries) (int, error) {
	var n int
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `INSERT INTO webhook_deliveries (event_id, endpoint_id, created_at, updated_at)
			SELECT e.id, $2, $3, $3 FROM domain_events e WHERE e.id = $1 AND e.only_endpoint_id = $2
			ON CONFLICT (event_id, endpoint_id) DO NOTHING RETURNING id`, eventID, endpointID, now)
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("fan out test event %d: %w", eventID, err)
		}
		n = len(ids)
		if n == 0 {
			return nil
		}
		return enqueue(ctx, tx, firstRound(ids))
	})
	return n, err
}

// Sending is what a delivery attempt needs.
type Sending struct {
	Delivery Delivery
	Endpoint WebhookEndpoint
	Payload  []byte
}

// GetSending reads a delivery with its endpoint and the event's body.
func (s *Store) GetSending(ctx context.Context, deliveryID int64) (Sending, error) {
	var out Sending
	d, err := s.GetDelivery(ctx, deliveryID)
	if err != nil {
		return out, err
	}
	out.Delivery = d
	if out.Endpoint, err = getEndpoint(ctx, s.pool, d.EndpointID); err != nil {
		return out, err
	}
	var payload string
	if err := s.pool.QueryRow(ctx, `SELECT payload FROM domain_events WHERE id = $1`, d.EventID).Scan(&payload); err != nil {
		return out, fmt.Errorf("read event %d: %w", d.EventID, err)
	}
	out.Payload = []byte(payload)
	return out, nil
}

// GetDelivery returns a delivery.
func (s *Store) GetDelivery(ctx context.Context, id int64) (Delivery, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries d JOIN domain_events e ON e.id = d.event_id
		WHERE d.id = $1`, id)
	d, err := pgx.CollectExactlyOneRow(rows, scanDelivery)
	if errors.Is(err, pgx.ErrNoRows) {
		return d, ErrNotFound
	}
	if err != nil {
		return d, fmt.Errorf("get delivery %d: %w", id, err)
	}
	return d, nil
}

// DeliveryFilter selects an endpoint's deliveries, newest first.
type DeliveryFilter struct {
	EndpointID int64
	Status     string
	Before     int64
	Limit      int
}

// ListDeliveries returns an endpoint's deliveries, newest first.
func (s *Store) ListDeliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	rows, _ := s.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries d JOIN domain_events e ON e.id = d.event_id
		WHERE d.endpoint_id = $1 AND ($2 = '' OR d.status = $2) AND ($3::bigint = 0 OR d.id < $3)
		ORDER BY d.id DESC LIMIT $4`, f.EndpointID, f.Status, f.Before, f.Limit)
	out, err := pgx.CollectRows(rows, scanDelivery)
	if err != nil {
		return nil, fmt.Errorf("list deliveries of endpoint %d: %w", f.EndpointID, err)
	}
	return out, nil
}

// Attempt is one delivery attempt: the delivery log.
type Attempt struct {
	ID          int64     `json:"id"`
	AttemptedAt time.Time `json:"attempted_at"`
	DurationMS  int       `json:"duration_ms"`
	StatusCode  *int      `json:"status_code"`
	Error       *string   `json:"error"`
	Excerpt     *string   `json:"response_excerpt"`
}

// DeliveryAttempts returns a delivery's attempts in order.
func (s *Store) DeliveryAttempts(ctx context.Context, deliveryID int64) ([]Attempt, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id, attempted_at, duration_ms, status_code, error, response_excerpt
		FROM webhook_attempts WHERE delivery_id = $1 ORDER BY id LIMIT 100`, deliveryID)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Attempt, error) {
		var a Attempt
		err := r.Scan(&a.ID, &a.AttemptedAt, &a.DurationMS, &a.StatusCode, &a.Error, &a.Excerpt)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("attempts of delivery %d: %w", deliveryID, err)
	}
	return out, nil
}

// AttemptOutcome is what one attempt decided.
type AttemptOutcome struct {
	DeliveryID int64
	At         time.Time
	Duration   time.Duration
	Status     int    // 0: no answer
	Error      string // why no usable answer came
	Excerpt    string
	// Result is DeliverySucceeded, DeliveryFailed (no more attempts), or DeliveryPending (retried).
	Result string
	// Gone: the receiver answered 410 and the endpoint is disabled.
	Gone bool
	// DisableAfter: an endpoint failing for this long is disabled (0: never).
	DisableAfter time.Duration
}

// RecordAttempt stores an attempt and its consequences in one transaction: the delivery's
// status, the endpoint's failure streak (cleared by a success), and disabling the endpoint, with a
// notification to its owner, after a 410 or DisableAfter of failures. It reports whether the
// endpoint was disabled by this attempt.
func (s *Store) RecordAttempt(ctx context.Context, o AttemptOutcome) (disabled bool, err error) {
	excerpt, errText := nullable(o.Excerpt), nullable(o.Error)
	var status *int
	if o.Status != 0 {
		status = &o.Status
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var endpointID int64
		err := tx.QueryRow(ctx, `UPDATE webhook_deliveries SET attempts = attempts + 1, status = $2::text, last_status = $3, last_error = $4,
				updated_at = $5, finished_at = CASE WHEN $2::text <> 'pending' THEN $5::timestamptz END
			WHERE id = $1 RETURNING endpoint_id`, o.DeliveryID, o.Result, status, errText, o.At).Scan(&endpointID)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound // the endpoint was deleted meanwhile
		}
		if err != nil {
			return fmt.Errorf("record delivery %d: %w", o.DeliveryID, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO webhook_attempts (delivery_id, attempted_at, duration_ms, status_code, error, response_excerpt)
			VALUES ($1, $2, $3, $4, $5, $6)`, o.DeliveryID, o.At, int(o.Duration/time.Millisecond), status, errText, excerpt); err != nil {
			return fmt.Errorf("record attempt of delivery %d: %w", o.DeliveryID, err)
		}
		if o.Result == DeliverySucceeded {
			_, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL`, endpointID)
			return err
		}
		var failingSince time.Time
		var enabled bool
		if err := tx.QueryRow(ctx, `UPDATE webhook_endpoints SET failing_since = coalesce(failing_since, $2) WHERE id = $1
			RETURNING failing_since, enabled`, endpointID, o.At).Scan(&failingSince, &enabled); err != nil {
			return fmt.Errorf("note failure of endpoint %d: %w", endpointID, err)
		}
		reason := ""
		switch {
		case !enabled:
		case o.Gone:
			reason = DisabledGone
		case o.DisableAfter > 0 && o.At.Sub(failingSince) >= o.DisableAfter:
			reason = DisabledFailing
		}
		if reason == "" {
			return nil
		}
		disabled = true
		// This delivery ends here too: no job will try it again once its endpoint is disabled.
		if _, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET status = 'failed', finished_at = $2 WHERE id = $1 AND status = 'pending'`,
			o.DeliveryID, o.At); err != nil {
			return fmt.Errorf("fail delivery %d: %w", o.DeliveryID, err)
		}
		return s.disableEndpoint(ctx, tx, endpointID, reason, failingSince, o, o.At)
	})
	return disabled, err
}

// disableEndpoint stops deliveries to an endpoint and tells its owner.
func (s *Store) disableEndpoint(ctx context.Context, tx pgx.Tx, id int64, reason string, since time.Time, last AttemptOutcome, now time.Time) error {
	var customer *int64
	var url string
	if err := tx.QueryRow(ctx, `UPDATE webhook_endpoints SET enabled = false, disabled_reason = $2, disabled_at = $3, updated_at = $3
		WHERE id = $1 RETURNING customer_id, url`, id, reason, now).Scan(&customer, &url); err != nil {
		return fmt.Errorf("disable endpoint %d: %w", id, err)
	}
	// What is still queued for it fails now rather than over the next days.
	if _, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET status = 'failed', last_error = 'endpoint disabled', finished_at = $2, updated_at = $2
		WHERE endpoint_id = $1 AND status = 'pending' AND id <> $3`, id, now, last.DeliveryID); err != nil {
		return fmt.Errorf("fail deliveries of endpoint %d: %w", id, err)
	}
	if err := audit(ctx, tx, "webhooks", "webhook_endpoint.disable", "webhook_endpoint", id,
		map[string]any{"reason": reason, "failing_since": since, "last_status": last.Status, "last_error": last.Error}); err != nil {
		return err
	}
	problem := i18n.F("la última respuesta fue HTTP %d", "the last answer was HTTP %d", last.Status)
	switch {
	case reason == DisabledGone:
		problem = i18n.T("el receptor respondió 410 Gone, que pide dejar de enviar", "the receiver answered 410 Gone, which asks us to stop")
	case last.Status == 0:
		problem = i18n.F("sin respuesta: %s", "no answer: %s", last.Error)
	}
	return s.notify(ctx, tx, Notification{Kind: NotifyWebhookEndpointDisabled, CustomerID: customer, EndpointID: &id,
		DedupeKey: fmt.Sprintf("endpoint:%d:disabled:%d", id, now.Unix()),
		Data:      NotificationData{URL: url, EndpointID: id, Since: &since, Problem: problem}}, now)
}

// orEmpty returns an empty slice for nil: "every type" is '{}', never NULL.
func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// MaxRecover bounds one recovery request.
const MaxRecover = 10000

// RecoverDeliveries sends an endpoint's failed deliveries created in [since, until) again (the
// same webhook-id: receivers deduplicate), at most MaxRecover of them, oldest first. A nil until
// takes every delivery since since, up to the last one.
func (s *Store) RecoverDeliveries(ctx context.Context, endpointID int64, since time.Time, until *time.Time, now time.Time, enqueue EnqueueDeliveries) (int, error) {
	var n int
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `UPDATE webhook_deliveries SET status = 'pending', finished_at = NULL, updated_at = $4, rounds = rounds + 1
			WHERE id IN (SELECT id FROM webhook_deliveries WHERE endpoint_id = $1 AND status = 'failed'
				AND created_at >= $2 AND ($3::timestamptz IS NULL OR created_at < $3) ORDER BY id LIMIT $5)
			RETURNING id, rounds`, endpointID, since, until, now, MaxRecover)
		ids, err := pgx.CollectRows(rows, scanQueued)
		if err != nil {
			return fmt.Errorf("recover deliveries of endpoint %d: %w", endpointID, err)
		}
		n = len(ids)
		if n == 0 {
			return nil
		}
		if err := audit(ctx, tx, "webhooks", "webhook_endpoint.recover", "webhook_endpoint", endpointID,
			map[string]any{"since": since, "until": until, "deliveries": n}); err != nil {
			return err
		}
		return enqueue(ctx, tx, ids)
	})
	return n, err
}

// RetryDelivery sends one delivery again (a succeeded one too: the receiver asked for it), with
// the same webhook-id.
func (s *Store) RetryDelivery(ctx context.Context, id int64, now time.Time, enqueue EnqueueDeliveries) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		q := QueuedDelivery{ID: id}
		err := tx.QueryRow(ctx, `UPDATE webhook_deliveries SET status = 'pending', finished_at = NULL, updated_at = $2, rounds = rounds + 1
			WHERE id = $1 RETURNING rounds`, id, now).Scan(&q.Round)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("retry delivery %d: %w", id, err)
		}
		return enqueue(ctx, tx, []QueuedDelivery{q})
	})
}

// EmitTestEvent records a webhook.test event for one endpoint and enqueues its fan-out.
func (s *Store) EmitTestEvent(ctx context.Context, endpoint WebhookEndpoint, now time.Time) (int64, error) {
	var id int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		id, err = s.emit(ctx, tx, Event{Type: EventWebhookTest, CustomerID: endpoint.CustomerID, OnlyEndpoint: endpoint.ID,
			OccurredAt: now, Extra: map[string]any{"endpoint_id": endpoint.ID}})
		return err
	})
	return id, err
}
