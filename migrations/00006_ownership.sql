-- +goose Up

-- Whether the last DNS check agreed ('ok'), found something wrong ('failed') or could not get an
-- answer ('error': timeouts, SERVFAIL). Kept apart from verification_status, which says whether
-- the domain was ever verified: a failed re-check must never un-verify a domain (that made it
-- expire and let another customer take it over).
ALTER TABLE custom_domains ADD COLUMN last_check_status varchar(16)
    CHECK (last_check_status IN ('ok', 'failed', 'error'));
UPDATE custom_domains SET last_check_status = CASE verification_status WHEN 'verified' THEN 'ok' ELSE 'failed' END
    WHERE last_checked_at IS NOT NULL;
UPDATE custom_domains SET verification_status = 'verified' WHERE verified_at IS NOT NULL;
-- Expiry is for registrations that never proved anything.
UPDATE custom_domains SET expires_at = NULL WHERE verified_at IS NOT NULL OR txt_verified_at IS NOT NULL;

-- This registration must prove ownership with the TXT record whatever the plan says: another
-- customer held the hostname before, so a CNAME they left behind proves nothing.
ALTER TABLE custom_domains ADD COLUMN txt_required boolean NOT NULL DEFAULT false;

-- Every registration that was removed (deleted by its owner, expired, or claimed by another
-- customer): its platform subdomain is never handed to a different customer (a CNAME left at the
-- customer's DNS would verify a stranger's registration: dangling-CNAME takeover), and its
-- hostname, registered again by someone else, needs the TXT proof. History outlives customers.
CREATE TABLE released_domains (
    id              bigserial PRIMARY KEY,
    domain_id       bigint NOT NULL,
    customer_id     bigint NOT NULL,
    external_domain varchar(253) COLLATE "C" NOT NULL,
    sajet_subdomain varchar(63) COLLATE "C" NOT NULL,
    sajet_zone      varchar(253) COLLATE "C" NOT NULL,
    reason          text NOT NULL,
    released_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_released_domains_subdomain ON released_domains (sajet_subdomain, sajet_zone);
CREATE INDEX idx_released_domains_external ON released_domains (external_domain);

-- +goose Down
DROP TABLE released_domains;
ALTER TABLE custom_domains DROP COLUMN txt_required;
ALTER TABLE custom_domains DROP COLUMN last_check_status;
