-- +goose Up

-- The ERP already has customers and tenant_deployments in erp_core_db. We create them only when
-- absent and add the columns we rely on, so running against the real database changes nothing of
-- theirs beyond the additions.
CREATE TABLE IF NOT EXISTS customers (
    id           bigserial PRIMARY KEY,
    email        text NOT NULL,
    company_name text NOT NULL
);
ALTER TABLE customers ADD COLUMN IF NOT EXISTS plan text NOT NULL DEFAULT 'basic';
-- NULL means "the plan's quota" (basic 10, enterprise 50); a number overrides it for this customer.
ALTER TABLE customers ADD COLUMN IF NOT EXISTS domain_quota integer CHECK (domain_quota >= 0);
-- Whether this customer must prove ownership with the TXT token before provisioning (seed step 2,
-- "opcional según plan"). Enterprise plans default to requiring it in the API layer.
ALTER TABLE customers ADD COLUMN IF NOT EXISTS require_txt boolean NOT NULL DEFAULT false;
ALTER TABLE customers ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE customers ADD CONSTRAINT customers_plan_check CHECK (plan IN ('basic', 'enterprise'));

CREATE TABLE tunnels (
    id                   bigserial PRIMARY KEY,
    name                 text NOT NULL UNIQUE,
    cloudflare_tunnel_id uuid NOT NULL UNIQUE,
    -- Bumped in the same transaction as any change to the tunnel's desired ingress; only increases.
    config_version       bigint NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS tenant_deployments (
    id          bigserial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    name        text NOT NULL
);
ALTER TABLE tenant_deployments ADD COLUMN IF NOT EXISTS tunnel_id bigint REFERENCES tunnels (id) ON DELETE RESTRICT;
ALTER TABLE tenant_deployments ADD COLUMN IF NOT EXISTS backend_url text;
ALTER TABLE tenant_deployments ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX IF NOT EXISTS idx_tenant_deployments_customer ON tenant_deployments (customer_id);
CREATE INDEX IF NOT EXISTS idx_tenant_deployments_tunnel ON tenant_deployments (tunnel_id);

-- Declared before the table that uses it (the seed declares it after and never uses it).
CREATE TYPE domain_verification_status AS ENUM ('pending', 'verifying', 'verified', 'failed');

CREATE TABLE custom_domains (
    id                        bigserial PRIMARY KEY,
    customer_id               bigint NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    tenant_deployment_id      bigint REFERENCES tenant_deployments (id) ON DELETE SET NULL,
    -- ASCII (punycode) form; the API shows the Unicode form beside it.
    external_domain           varchar(253) COLLATE "C" NOT NULL,
    sajet_subdomain           varchar(63) COLLATE "C" NOT NULL,
    -- The platform zone is configuration, so it is stored per row instead of a '.sajet.us' literal.
    sajet_zone                varchar(253) COLLATE "C" NOT NULL,
    sajet_full_domain         varchar(320) GENERATED ALWAYS AS (sajet_subdomain || '.' || sajet_zone) STORED,
    verification_status       domain_verification_status NOT NULL DEFAULT 'pending',
    verification_token        varchar(64) NOT NULL,
    verified_at               timestamptz,
    -- When the TXT token was last seen at _jeturing-verify.<registrable domain>: proof of ownership.
    txt_verified_at           timestamptz,
    cloudflare_dns_record_id  varchar(64),
    cloudflare_configured     boolean NOT NULL DEFAULT false,
    tunnel_ingress_configured boolean NOT NULL DEFAULT false,
    -- The seed defaulted this to 'active'; we only say active once Cloudflare says so.
    ssl_status                varchar(32) NOT NULL DEFAULT 'pending',
    is_active                 boolean NOT NULL DEFAULT false,
    is_primary                boolean NOT NULL DEFAULT false,
    created_at                timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now(),
    created_by                varchar(100),
    last_checked_at           timestamptz,
    last_error                text,
    last_check                jsonb,
    -- Tunnel config_version that first contained this domain's rules.
    ingress_version           bigint,
    -- Removal in progress: the row keeps its subdomain reserved until Cloudflare and the tunnel no
    -- longer reference it.
    deleting_at               timestamptz,
    -- Unverified registrations stop blocking the hostname for others after this instant.
    expires_at                timestamptz,
    CONSTRAINT custom_domains_subdomain_label CHECK (sajet_subdomain ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$')
);

-- A hostname belongs to one live registration; a row being deleted no longer blocks it.
CREATE UNIQUE INDEX unique_external_domain ON custom_domains (external_domain) WHERE deleting_at IS NULL;
-- Subdomains stay reserved while deleting (Cloudflare may still point them at the tunnel).
CREATE UNIQUE INDEX unique_sajet_subdomain ON custom_domains (sajet_subdomain, sajet_zone);
CREATE INDEX idx_custom_domains_full_domain ON custom_domains (sajet_full_domain);
-- Lookups by hostname include rows being deleted (the partial unique index above cannot serve them).
CREATE INDEX idx_custom_domains_external ON custom_domains (external_domain);
CREATE INDEX idx_custom_domains_customer ON custom_domains (customer_id, id);
CREATE INDEX idx_custom_domains_tenant ON custom_domains (tenant_deployment_id);
CREATE INDEX idx_custom_domains_status ON custom_domains (verification_status, is_active);
-- One primary domain per tenant deployment.
CREATE UNIQUE INDEX unique_primary_per_tenant ON custom_domains (tenant_deployment_id)
    WHERE is_primary AND deleting_at IS NULL;

-- A customer who wants a hostname that another customer registered but never proved with TXT gets
-- a claim token; publishing it at _jeturing-verify.<registrable domain> wins the hostname.
CREATE TABLE domain_claims (
    customer_id     bigint NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    external_domain varchar(253) COLLATE "C" NOT NULL,
    token           varchar(64) NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, external_domain)
);

CREATE TABLE agents (
    id               bigserial PRIMARY KEY,
    tunnel_id        bigint NOT NULL REFERENCES tunnels (id) ON DELETE CASCADE,
    name             text NOT NULL UNIQUE,
    token_hash       bytea NOT NULL UNIQUE,
    last_seen_at     timestamptz,
    applied_version  bigint,
    applied_sha256   text,
    status           jsonb,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    revoked_at       timestamptz
);
CREATE INDEX idx_agents_tunnel ON agents (tunnel_id);

CREATE TABLE api_tokens (
    id           bigserial PRIMARY KEY,
    token_hash   bytea NOT NULL UNIQUE,
    role         text NOT NULL CHECK (role IN ('admin', 'customer')),
    customer_id  bigint REFERENCES customers (id) ON DELETE CASCADE,
    name         text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz,
    CONSTRAINT api_tokens_customer_role CHECK ((role = 'customer') = (customer_id IS NOT NULL))
);

CREATE TABLE audit_log (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    actor     text NOT NULL,
    action    text NOT NULL,
    entity    text NOT NULL,
    entity_id bigint,
    detail    jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX idx_audit_log_entity ON audit_log (entity, entity_id);

-- +goose Down
DROP TABLE audit_log;
DROP TABLE api_tokens;
DROP TABLE agents;
DROP TABLE domain_claims;
DROP TABLE custom_domains;
DROP TYPE domain_verification_status;
