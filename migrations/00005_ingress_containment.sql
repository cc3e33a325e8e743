-- +goose Up

-- A domain whose rules an agent refused (a NACK at validate attributed to them) is left out of
-- its tunnel's desired set so that every other domain of the tunnel converges. The reason is
-- shown on the domain's tunnel_ingress step. Cleared when the domain's routing changes or an
-- agent of the tunnel reports a new base file, and the rules are then offered again.
ALTER TABLE custom_domains
    ADD COLUMN ingress_rejected_at     timestamptz,
    ADD COLUMN ingress_rejected_reason text,
    ADD COLUMN ingress_rejected_kind   varchar(32);

-- The operator's base file as each agent last reported it: its hash and the exact hostnames it
-- routes. Registrations of those hostnames are refused, and colliding rules are left out.
ALTER TABLE agents
    ADD COLUMN base_sha256    text,
    ADD COLUMN base_hostnames text[] NOT NULL DEFAULT '{}';
CREATE INDEX idx_agents_base_hostnames ON agents USING gin (base_hostnames);

-- +goose Down
DROP INDEX idx_agents_base_hostnames;
ALTER TABLE agents DROP COLUMN base_hostnames, DROP COLUMN base_sha256;
ALTER TABLE custom_domains
    DROP COLUMN ingress_rejected_kind,
    DROP COLUMN ingress_rejected_reason,
    DROP COLUMN ingress_rejected_at;
