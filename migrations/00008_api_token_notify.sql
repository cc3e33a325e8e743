-- Every change that makes an API token valid or invalid is announced on sajet_api_token with the
-- token's id, so each control-plane replica updates its in-memory set of valid tokens at once
-- (revocation no longer waits for a cache to expire). A trigger rather than a NOTIFY in the Go code:
-- it also covers `token create`, the ON DELETE CASCADE from customers and an operator's UPDATE in
-- psql. Updates of last_used_at (once a minute per token) do not fire it.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION notify_api_token_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('sajet_api_token', OLD.id::text);
    ELSE
        PERFORM pg_notify('sajet_api_token', NEW.id::text);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER api_token_change AFTER INSERT OR DELETE OR UPDATE OF token_hash, role, customer_id, revoked_at
    ON api_tokens FOR EACH ROW EXECUTE FUNCTION notify_api_token_change();

-- +goose Down
DROP TRIGGER api_token_change ON api_tokens;
DROP FUNCTION notify_api_token_change();
