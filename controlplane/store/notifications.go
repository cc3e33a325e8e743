// Notifications: the emails customers get about their domains, one per transition (dedupe_key),
// recorded in the transaction of the transition and sent by a job (docs/AUTOMATION.md, "Email").

package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// Notification kinds (the mailer's templates).
const (
	NotifyDomainVerified          = "domain_verified"
	NotifyDomainMisconfigured     = "domain_misconfigured"
	NotifyDomainRecovered         = "domain_recovered"
	NotifyDomainDeactivated       = "domain_deactivated"
	NotifyDomainUnverified        = "domain_unverified"
	NotifyCertificateTrouble      = "certificate_trouble"
	NotifyWebhookEndpointDisabled = "webhook_endpoint_disabled"
)

// Notification statuses.
const (
	NotificationPending  = "pending"  // waiting to be sent
	NotificationSent     = "sent"     // the SMTP server accepted it
	NotificationFailed   = "failed"   // every attempt failed
	NotificationRecorded = "recorded" // no SMTP server configured: kept, shown, not sent
)

// NotificationData is what an email says, in both languages where it is a sentence; dates are
// written in the reader's language when the email is rendered.
type NotificationData struct {
	Hostname         string     `json:"hostname,omitempty"`
	PlatformHostname string     `json:"platform_hostname,omitempty"`
	Problem          i18n.Text  `json:"problem"`
	Fix              i18n.Text  `json:"fix"`
	Next             i18n.Text  `json:"next"`
	GraceUntil       *time.Time `json:"grace_until,omitempty"`
	Since            *time.Time `json:"since,omitempty"`
	ExpiresAt        *time.Time `json:"expires_at,omitempty"`
	Days             int        `json:"days,omitempty"`
	URL              string     `json:"url,omitempty"`
	EndpointID       int64      `json:"endpoint_id,omitempty"`
}

// Notification is a notifications row, with the address and language it goes to.
type Notification struct {
	ID         int64            `json:"id"`
	Kind       string           `json:"kind"`
	CustomerID *int64           `json:"customer_id"`
	DomainID   *int64           `json:"domain_id"`
	EndpointID *int64           `json:"endpoint_id"`
	DedupeKey  string           `json:"-"`
	Data       NotificationData `json:"data"`
	Status     string           `json:"status"`
	To         *string          `json:"to"`
	Lang       string           `json:"lang"`
	Subject    *string          `json:"subject"`
	Attempts   int              `json:"attempts"`
	LastError  *string          `json:"last_error"`
	CreatedAt  time.Time        `json:"created_at"`
	SentAt     *time.Time       `json:"sent_at"`
}

// notify records a notification for a customer (its address and language are looked up) unless
// one with the same dedupe key exists: at most one email per transition. Its sending is enqueued
// in the same transaction.
func (s *Store) notify(ctx context.Context, tx pgx.Tx, n Notification, now time.Time) error {
	var id int64
	err := tx.QueryRow(ctx, `INSERT INTO notifications (kind, customer_id, domain_id, endpoint_id, dedupe_key, data, to_address, lang, created_at)
		SELECT $1, $2, $3, $4, $5, $6, c.email, c.language, $7
		FROM (SELECT 1) one LEFT JOIN customers c ON c.id = $2
		ON CONFLICT (dedupe_key) DO NOTHING RETURNING id`,
		n.Kind, n.CustomerID, n.DomainID, n.EndpointID, n.DedupeKey, n.Data, now).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // already told
	}
	if err != nil {
		return fmt.Errorf("record notification %s: %w", n.DedupeKey, err)
	}
	if s.automation != nil {
		if err := s.automation.SendTx(ctx, tx, id); err != nil {
			return fmt.Errorf("enqueue notification %d: %w", id, err)
		}
	}
	return nil
}

const notificationColumns = `id, kind, customer_id, domain_id, endpoint_id, dedupe_key, data, status, to_address,
	coalesce(lang, 'es'), subject, attempts, last_error, created_at, sent_at`

func scanNotification(r pgx.CollectableRow) (Notification, error) {
	var n Notification
	err := r.Scan(&n.ID, &n.Kind, &n.CustomerID, &n.DomainID, &n.EndpointID, &n.DedupeKey, &n.Data, &n.Status, &n.To,
		&n.Lang, &n.Subject, &n.Attempts, &n.LastError, &n.CreatedAt, &n.SentAt)
	return n, err
}

// GetNotification returns one notification.
func (s *Store) GetNotification(ctx context.Context, id int64) (Notification, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+notificationColumns+` FROM notifications WHERE id = $1`, id)
	n, err := pgx.CollectExactlyOneRow(rows, scanNotification)
	if errors.Is(err, pgx.ErrNoRows) {
		return n, ErrNotFound
	}
	if err != nil {
		return n, fmt.Errorf("get notification %d: %w", id, err)
	}
	return n, nil
}

// NotificationFilter selects notifications; zero values mean "any".
type NotificationFilter struct {
	CustomerID int64
	DomainID   int64
	Status     string
	Before     int64 // cursor: ids smaller than this (newest first)
	Limit      int
}

// ListNotifications returns notifications newest first.
func (s *Store) ListNotifications(ctx context.Context, f NotificationFilter) ([]Notification, error) {
	w := where()
	if f.CustomerID != 0 {
		w.add("customer_id = $%d", f.CustomerID)
	}
	if f.DomainID != 0 {
		w.add("domain_id = $%d", f.DomainID)
	}
	if f.Status != "" {
		w.add("status = $%d", f.Status)
	}
	if f.Before > 0 {
		w.add("id < $%d", f.Before)
	}
	clause, args := w.newestFirst(f.Limit)
	rows, _ := s.pool.Query(ctx, `SELECT `+notificationColumns+` FROM notifications WHERE `+clause, args...)
	out, err := pgx.CollectRows(rows, scanNotification)
	if err != nil {
		return nil, fmt.Errorf("list notifications: %w", err)
	}
	return out, nil
}

// NotificationOutcome is what one sending attempt did.
type NotificationOutcome struct {
	Status  string // NotificationSent, NotificationRecorded, NotificationFailed, or NotificationPending (will retry)
	Subject string
	Error   string
	At      time.Time
}

// RecordNotification stores a sending attempt's outcome; a sent or recorded notification does
// not change any more (a retry after a crash finds it done).
func (s *Store) RecordNotification(ctx context.Context, id int64, o NotificationOutcome) error {
	var errText *string
	if o.Error != "" {
		e := o.Error
		if len(e) > 2000 {
			e = e[:2000]
		}
		errText = &e
	}
	_, err := s.pool.Exec(ctx, `UPDATE notifications SET status = $2::text, subject = coalesce(nullif($3, ''), subject),
			last_error = $4, attempts = attempts + 1,
			sent_at = CASE WHEN $2::text = 'sent' THEN $5 ELSE sent_at END
		WHERE id = $1 AND status IN ('pending', 'failed')`, id, o.Status, o.Subject, errText, o.At)
	if err != nil {
		return fmt.Errorf("record notification %d: %w", id, err)
	}
	return nil
}
