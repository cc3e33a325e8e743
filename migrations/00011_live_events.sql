-- Live updates for the web UI (GET /api/events): every change of a domain row is announced on
-- sajet_domain as "<customer_id>:<domain_id>", every change of an agent row on sajet_agent_state as
-- "<tunnel_id>". Each replica listens once and tells the browsers that may see the row, which then
-- re-read it; the payload carries ids only. PostgreSQL folds identical notifications of one
-- transaction, so a bulk change costs one per row.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION notify_domain_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('sajet_domain', OLD.customer_id::text || ':' || OLD.id::text);
    ELSE
        PERFORM pg_notify('sajet_domain', NEW.customer_id::text || ':' || NEW.id::text);
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER custom_domains_event AFTER INSERT OR UPDATE OR DELETE ON custom_domains
    FOR EACH ROW EXECUTE FUNCTION notify_domain_event();

-- +goose StatementBegin
CREATE FUNCTION notify_agent_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('sajet_agent_state', OLD.tunnel_id::text);
    ELSE
        PERFORM pg_notify('sajet_agent_state', NEW.tunnel_id::text);
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER agents_event AFTER INSERT OR UPDATE OR DELETE ON agents
    FOR EACH ROW EXECUTE FUNCTION notify_agent_event();

-- +goose Down
DROP TRIGGER agents_event ON agents;
DROP FUNCTION notify_agent_event();
DROP TRIGGER custom_domains_event ON custom_domains;
DROP FUNCTION notify_domain_event();
