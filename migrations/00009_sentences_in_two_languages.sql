-- Sentences the control plane stores for people (a domain's last error, why an agent refused its
-- rule) are stored in both languages the API speaks, {"es": …, "en": …}, so each reader gets the
-- language of their request (internal/i18n, docs/I18N.md). Rows written before read the same in
-- both languages.

-- +goose Up
ALTER TABLE custom_domains
    ALTER COLUMN last_error TYPE jsonb
        USING CASE WHEN last_error IS NULL THEN NULL ELSE jsonb_build_object('es', last_error, 'en', last_error) END,
    ALTER COLUMN ingress_rejected_reason TYPE jsonb
        USING CASE WHEN ingress_rejected_reason IS NULL THEN NULL
                   ELSE jsonb_build_object('es', ingress_rejected_reason, 'en', ingress_rejected_reason) END;

-- +goose Down
ALTER TABLE custom_domains
    ALTER COLUMN last_error TYPE text USING last_error->>'es',
    ALTER COLUMN ingress_rejected_reason TYPE text USING ingress_rejected_reason->>'es';
