// Domain events: written in the same transaction as the change that caused them, they are the
// outbox of webhook deliveries and the history of what happened (docs/AUTOMATION.md, "Events").

package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// Event types, as webhook receivers see them (the Standard Webhooks shape: dot-separated,
// [a-zA-Z0-9_] only).
const (
	EventDomainVerified                 = "domain.verified"
	EventDomainActivated                = "domain.activated"
	EventDomainMisconfigured            = "domain.misconfigured"
	EventDomainRecovered                = "domain.recovered"
	EventDomainDeactivated              = "domain.deactivated"
	EventDomainDeleted                  = "domain.deleted"
	EventDomainVerificationExpired      = "domain.verification_expired"
	EventDomainCertificateExpiring      = "domain.certificate.expiring"
	EventDomainCertificateRenewalFailed = "domain.certificate.renewal_failed"
	EventWebhookTest                    = "webhook.test"
)

// EventTypes lists every event type an endpoint may subscribe to.
var EventTypes = []string{EventDomainVerified, EventDomainActivated, EventDomainMisconfigured, EventDomainRecovered,
	EventDomainDeactivated, EventDomainDeleted, EventDomainVerificationExpired, EventDomainCertificateExpiring,
	EventDomainCertificateRenewalFailed, EventWebhookTest}

// Coarse states carried by events: where the domain is after the event. Receivers re-read
// GET /api/domains/{id} for the full picture (its `state` and `steps`).
const (
	coarsePending       = "pending_dns"
	coarseExpired       = "expired"
	coarseVerified      = "verified"
	coarseActive        = "active"
	coarseMisconfigured = "misconfigured"
	coarseDeactivated   = "deactivated"
	coarseDeleted       = "deleted"
)

// AutomationOutbox enqueues, in the caller's transaction, the work an event or a notification
// needs: the fan-out of an event to webhook endpoints and the sending of an email. The River
// client of package automation implements it.
type AutomationOutbox interface {
	FanoutTx(ctx context.Context, tx pgx.Tx, eventID int64) error
	SendTx(ctx context.Context, tx pgx.Tx, notificationID int64) error
}

// UseAutomation makes events fan out to webhook endpoints and notifications go out as email.
// Call it once, before serving; without it events and notifications are only recorded.
func (s *Store) UseAutomation(o AutomationOutbox) { s.automation = o }

// Event is one thing that happened to a domain (or a test of an endpoint).
type Event struct {
	ID           int64
	Type         string
	DomainID     int64 // 0: none (a test event)
	CustomerID   *int64
	Hostname     string
	State        string // coarse state after the event
	Previous     string // coarse state before it
	Reason       string // a stable code (dnsverify's reason, the cause of a deletion), or ""
	OccurredAt   time.Time
	Seq          int64
	OnlyEndpoint int64 // a test event goes to this endpoint only
	// Extra fields of data (a certificate's expiry), all machine values.
	Extra map[string]any
}

// payload is the exact body every delivery of the event sends: thin (ids, state, sequence), so a
// receiver that needs more re-reads the domain, and ordered by seq per domain since delivery
// order is not promised.
func (e Event) payload() ([]byte, error) {
	data := map[string]any{}
	for k, v := range e.Extra {
		data[k] = v
	}
	if e.DomainID != 0 {
		data["domain_id"] = e.DomainID
		data["hostname"] = e.Hostname
		data["state"] = e.State
		data["previous_state"] = e.Previous
		data["seq"] = e.Seq
	}
	if e.CustomerID != nil {
		data["customer_id"] = *e.CustomerID
	}
	if e.Reason != "" {
		data["reason"] = e.Reason
	}
	return json.Marshal(map[string]any{
		"type":      e.Type,
		"timestamp": e.OccurredAt.UTC().Format(time.RFC3339Nano),
		"data":      data,
	})
}

// MessageID is the webhook-id of an event's deliveries: the same on every retry and endpoint,
// so receivers deduplicate by it.
func MessageID(eventID int64) string { return "msg_" + strconv.FormatInt(eventID, 10) }

// emit records an event in tx: the domain's sequence number is bumped (its row must be locked by
// the caller or is locked here), and the fan-out to webhook endpoints is enqueued when an enabled
// endpoint wants the event.
func (s *Store) emit(ctx context.Context, tx pgx.Tx, e Event) (int64, error) {
	if e.DomainID != 0 {
		err := tx.QueryRow(ctx, `UPDATE custom_domains SET event_seq = event_seq + 1 WHERE id = $1 RETURNING event_seq`,
			e.DomainID).Scan(&e.Seq)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return 0, fmt.Errorf("number event of domain %d: %w", e.DomainID, err)
		}
	}
	body, err := e.payload()
	if err != nil {
		return 0, fmt.Errorf("encode event %s: %w", e.Type, err)
	}
	var only *int64
	if e.OnlyEndpoint != 0 {
		only = &e.OnlyEndpoint
	}
	var domain *int64
	if e.DomainID != 0 {
		domain = &e.DomainID
	}
	var id int64
	if err := tx.QueryRow(ctx, `INSERT INTO domain_events (type, domain_id, customer_id, seq, occurred_at, payload, only_endpoint_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		e.Type, domain, e.CustomerID, e.Seq, e.OccurredAt, string(body), only).Scan(&id); err != nil {
		return 0, fmt.Errorf("record event %s: %w", e.Type, err)
	}
	if s.automation == nil {
		return id, nil
	}
	// Most customers have no endpoint: no fan-out job for them.
	var wanted bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.enabled
			AND (w.customer_id IS NULL OR w.customer_id = $1) AND (w.event_types = '{}' OR $2 = ANY (w.event_types))
			AND ($3::bigint IS NULL OR w.id = $3))`, e.CustomerID, e.Type, only).Scan(&wanted); err != nil {
		return 0, fmt.Errorf("find endpoints for event %s: %w", e.Type, err)
	}
	if wanted {
		if err := s.automation.FanoutTx(ctx, tx, id); err != nil {
			return 0, fmt.Errorf("enqueue fan-out of event %d: %w", id, err)
		}
	}
	return id, nil
}

// EventRecord is a stored event.
type EventRecord struct {
	ID             int64     `json:"id"`
	Type           string    `json:"type"`
	DomainID       *int64    `json:"domain_id"`
	CustomerID     *int64    `json:"customer_id"`
	Seq            int64     `json:"seq"`
	OccurredAt     time.Time `json:"occurred_at"`
	Payload        string    `json:"-"`
	OnlyEndpointID *int64    `json:"-"`
}

// GetEvent returns a stored event.
func (s *Store) GetEvent(ctx context.Context, id int64) (EventRecord, error) {
	var e EventRecord
	err := s.pool.QueryRow(ctx, `SELECT id, type, domain_id, customer_id, seq, occurred_at, payload, only_endpoint_id
		FROM domain_events WHERE id = $1`, id).Scan(&e.ID, &e.Type, &e.DomainID, &e.CustomerID, &e.Seq, &e.OccurredAt, &e.Payload, &e.OnlyEndpointID)
	if errors.Is(err, pgx.ErrNoRows) {
		return e, ErrNotFound
	}
	if err != nil {
		return e, fmt.Errorf("get event %d: %w", id, err)
	}
	return e, nil
}

// DomainEvents returns a domain's latest events, newest first.
func (s *Store) DomainEvents(ctx context.Context, domainID int64, limit int) ([]EventRecord, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id, type, domain_id, customer_id, seq, occurred_at, payload, only_endpoint_id
		FROM domain_events WHERE domain_id = $1 ORDER BY id DESC LIMIT $2`, domainID, limit)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (EventRecord, error) {
		var e EventRecord
		err := r.Scan(&e.ID, &e.Type, &e.DomainID, &e.CustomerID, &e.Seq, &e.OccurredAt, &e.Payload, &e.OnlyEndpointID)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("list events of domain %d: %w", domainID, err)
	}
	return out, nil
}
