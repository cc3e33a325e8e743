-- +goose Up

-- Cloudflare for SaaS custom hostname of the external domain (SaaS mode), as Cloudflare reports it.
ALTER TABLE custom_domains ADD COLUMN cloudflare_custom_hostname_id varchar(64);
ALTER TABLE custom_domains ADD COLUMN custom_hostname_status varchar(32);
-- Ownership and SSL validation records the customer must publish, and Cloudflare's own errors.
ALTER TABLE custom_domains ADD COLUMN custom_hostname_detail jsonb;
-- Which provisioning step last failed, for the API ("cloudflare", "custom_hostname").
ALTER TABLE custom_domains ADD COLUMN provision_error_step varchar(32);

-- Records of ours found in the zone without a domain that needs them: removed after a grace period
-- (first_seen_at), so a record whose domain is being created right now is never deleted.
CREATE TABLE cloudflare_orphans (
    record_id     varchar(64) PRIMARY KEY,
    name          varchar(320) NOT NULL,
    first_seen_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE cloudflare_orphans;
ALTER TABLE custom_domains DROP COLUMN provision_error_step;
ALTER TABLE custom_domains DROP COLUMN custom_hostname_detail;
ALTER TABLE custom_domains DROP COLUMN custom_hostname_status;
ALTER TABLE custom_domains DROP COLUMN cloudflare_custom_hostname_id;
