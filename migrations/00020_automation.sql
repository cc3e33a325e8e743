-- Automation (docs/AUTOMATION.md): every domain keeps being checked, a verified domain whose DNS
-- stops pointing at us becomes misconfigured and, after a grace period, deactivated; alerts,
-- events for signed webhooks, and email notifications. Numbered 00020 to stay clear of the
-- migrations other work in progress adds.

-- +goose Up

-- The language a customer's emails are written in (Spanish unless they chose English).
ALTER TABLE customers ADD COLUMN IF NOT EXISTS language varchar(2) NOT NULL DEFAULT 'es'
    CHECK (language IN ('es', 'en'));

ALTER TABLE custom_domains
    -- When the next automatic DNS check is due; NULL: none (an expired registration, a domain
    -- being deleted). New rows are due at once.
    ADD COLUMN next_check_at     timestamptz DEFAULT now(),
    -- When the sweep first found the check due; cleared by the check. Old means checks stall.
    ADD COLUMN due_since         timestamptz,
    -- Automatic checks of a domain never verified: the backoff's step.
    ADD COLUMN pending_checks    integer NOT NULL DEFAULT 0,
    -- The current run of checks whose resolvers answered with the wrong records, and when it began.
    ADD COLUMN wrong_streak      integer NOT NULL DEFAULT 0,
    ADD COLUMN wrong_since       timestamptz,
    -- Since when no resolver answers (timeouts, SERVFAIL), and since when they disagree.
    ADD COLUMN dns_error_since   timestamptz,
    ADD COLUMN disagree_since    timestamptz,
    -- The SOA negative TTL the resolvers gave with a negative answer (seconds): how long they may
    -- keep answering "no such record" after the customer publishes it.
    ADD COLUMN negative_ttl      integer,
    -- A verified domain whose DNS no longer points at us keeps serving until grace_until, then is
    -- deactivated: its rules leave the tunnel and its Cloudflare objects are removed.
    ADD COLUMN misconfigured_at  timestamptz,
    ADD COLUMN grace_until       timestamptz,
    ADD COLUMN deactivated_at    timestamptz,
    -- Whether the domain was active when it was deactivated (it is active again on recovery).
    ADD COLUMN reactivate        boolean NOT NULL DEFAULT false,
    -- The number of the domain's last event: receivers order a domain's events by it.
    ADD COLUMN event_seq         bigint NOT NULL DEFAULT 0,
    -- SaaS mode: the custom hostname's certificate expiry, whether its certificate was ever active
    -- (a later drop to pending_issuance is a failed renewal), and when the sweep last read it.
    ADD COLUMN cert_expires_at   timestamptz,
    ADD COLUMN ssl_was_active    boolean NOT NULL DEFAULT false,
    ADD COLUMN hostname_checked_at timestamptz;

-- Existing domains: verified ones spread over the first six hours instead of all at once.
UPDATE custom_domains SET next_check_at = now() + random() * interval '6 hours'
    WHERE verified_at IS NOT NULL AND deleting_at IS NULL;
UPDATE custom_domains SET next_check_at = NULL WHERE deleting_at IS NOT NULL;
UPDATE custom_domains SET ssl_was_active = true WHERE ssl_status = 'active';
CREATE INDEX idx_custom_domains_next_check ON custom_domains (next_check_at)
    WHERE next_check_at IS NOT NULL AND deleting_at IS NULL;

-- The outbox and history of what happened to domains. payload is the exact body every webhook
-- delivery of the event sends (and signs); no foreign key, so events outlive their domain.
CREATE TABLE domain_events (
    id               bigserial PRIMARY KEY,
    type             varchar(64) NOT NULL,
    domain_id        bigint,
    customer_id      bigint,
    seq              bigint NOT NULL DEFAULT 0,
    occurred_at      timestamptz NOT NULL,
    payload          text NOT NULL,
    -- A test event is delivered to this endpoint only.
    only_endpoint_id bigint
);
CREATE INDEX idx_domain_events_domain ON domain_events (domain_id, id);
CREATE INDEX idx_domain_events_occurred ON domain_events (occurred_at);

-- Recent DNS checks of a domain with every resolver's answer: every check that was not a plain
-- success, and the success that ended a run of them (the last 20 per domain are kept).
CREATE TABLE domain_checks (
    id         bigserial PRIMARY KEY,
    domain_id  bigint NOT NULL REFERENCES custom_domains (id) ON DELETE CASCADE,
    checked_at timestamptz NOT NULL,
    result     varchar(16) NOT NULL CHECK (result IN ('ok', 'wrong', 'error', 'disagree', 'expired')),
    automatic  boolean NOT NULL,
    health     varchar(16) NOT NULL,
    evidence   jsonb NOT NULL
);
CREATE INDEX idx_domain_checks_domain ON domain_checks (domain_id, id);

-- Webhook endpoints: a customer's, or admin-wide (customer_id NULL: every customer's events).
CREATE TABLE webhook_endpoints (
    id              bigserial PRIMARY KEY,
    customer_id     bigint REFERENCES customers (id) ON DELETE CASCADE,
    url             text NOT NULL CHECK (length(url) <= 2048),
    description     text NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    -- Empty: every event type.
    event_types     text[] NOT NULL DEFAULT '{}',
    enabled         boolean NOT NULL DEFAULT true,
    disabled_reason varchar(32),
    disabled_at     timestamptz,
    -- The first failed attempt since the last success; after days of failure the endpoint is disabled.
    failing_since   timestamptz,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_webhook_endpoints_customer ON webhook_endpoints (customer_id, id);

-- Signing secrets, sealed with AES-256-GCM under the key given to `serve` (never in clear: unlike
-- API tokens they cannot be hashed, since we sign with them). The current secret has no
-- expiry; a rotated one signs beside it until expires_at.
CREATE TABLE webhook_secrets (
    id          bigserial PRIMARY KEY,
    endpoint_id bigint NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    sealed      bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz
);
CREATE INDEX idx_webhook_secrets_endpoint ON webhook_secrets (endpoint_id);

-- One delivery per event and endpoint; its attempts are the delivery log.
CREATE TABLE webhook_deliveries (
    id          bigserial PRIMARY KEY,
    event_id    bigint NOT NULL REFERENCES domain_events (id) ON DELETE CASCADE,
    endpoint_id bigint NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    status      varchar(16) NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts    integer NOT NULL DEFAULT 0,
    -- How many times it was sent again on request (retry, recover): each round is its own job,
    -- unique while queued, so a request right after the last attempt is not taken for it.
    rounds      integer NOT NULL DEFAULT 0,
    last_status integer,
    last_error  text,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    finished_at timestamptz,
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX idx_webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);
CREATE INDEX idx_webhook_deliveries_failed ON webhook_deliveries (endpoint_id, created_at) WHERE status = 'failed';

CREATE TABLE webhook_attempts (
    id               bigserial PRIMARY KEY,
    delivery_id      bigint NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempted_at     timestamptz NOT NULL,
    duration_ms      integer NOT NULL,
    status_code      integer,
    error            text,
    response_excerpt text
);
CREATE INDEX idx_webhook_attempts_delivery ON webhook_attempts (delivery_id, id);
CREATE INDEX idx_webhook_attempts_at ON webhook_attempts (attempted_at);

-- Alerts: one open row per kind and domain (domain_id NULL for platform-wide ones).
CREATE TABLE alerts (
    id           bigserial PRIMARY KEY,
    kind         varchar(48) NOT NULL,
    severity     varchar(16) NOT NULL CHECK (severity IN ('warning', 'critical')),
    domain_id    bigint,
    customer_id  bigint,
    hostname     varchar(253),
    message      jsonb NOT NULL,
    opened_at    timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    resolved_at  timestamptz
);
CREATE UNIQUE INDEX alerts_one_open ON alerts (kind, coalesce(domain_id, 0)) WHERE resolved_at IS NULL;
CREATE INDEX idx_alerts_customer ON alerts (customer_id, id);
CREATE INDEX idx_alerts_domain ON alerts (domain_id) WHERE resolved_at IS NULL;

-- Emails to customers, one per transition (dedupe_key). Without SMTP they are recorded, not sent.
CREATE TABLE notifications (
    id          bigserial PRIMARY KEY,
    kind        varchar(48) NOT NULL,
    customer_id bigint,
    domain_id   bigint,
    endpoint_id bigint,
    dedupe_key  text NOT NULL UNIQUE,
    data        jsonb NOT NULL,
    status      varchar(16) NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed', 'recorded')),
    to_address  text,
    lang        varchar(2),
    subject     text,
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text,
    created_at  timestamptz NOT NULL,
    sent_at     timestamptz
);
CREATE INDEX idx_notifications_customer ON notifications (customer_id, id);

-- +goose Down
DROP TABLE notifications;
DROP TABLE alerts;
DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_secrets;
DROP TABLE webhook_endpoints;
DROP TABLE domain_checks;
DROP TABLE domain_events;
DROP INDEX idx_custom_domains_next_check;
ALTER TABLE custom_domains
    DROP COLUMN next_check_at, DROP COLUMN due_since, DROP COLUMN pending_checks,
    DROP COLUMN wrong_streak, DROP COLUMN wrong_since, DROP COLUMN dns_error_since,
    DROP COLUMN disagree_since, DROP COLUMN negative_ttl, DROP COLUMN misconfigured_at,
    DROP COLUMN grace_until, DROP COLUMN deactivated_at, DROP COLUMN reactivate,
    DROP COLUMN event_seq, DROP COLUMN cert_expires_at, DROP COLUMN ssl_was_active,
    DROP COLUMN hostname_checked_at;
ALTER TABLE customers DROP COLUMN language;
