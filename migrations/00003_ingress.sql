-- +goose Up

-- Tunnel config version in which the domain's rules were removed (its deletion bumped the
-- tunnel). The row is kept while an agent of the tunnel may still run a config between
-- ingress_version and this version.
ALTER TABLE custom_domains ADD COLUMN ingress_removal_version bigint;

-- +goose Down
ALTER TABLE custom_domains DROP COLUMN ingress_removal_version;
