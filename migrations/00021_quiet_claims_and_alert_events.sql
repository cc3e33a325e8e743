-- Two refinements of the live events (00011) for the automation (00020):
--  * the sweep's claim of due checks only moves next_check_at/due_since, bookkeeping nobody
--    watches; announcing it told every open page to re-read thousands of domains each minute.
--    A transaction that sets sajet.quiet_domain_events = 'on' (SET LOCAL) changes rows silently.
--  * an alert opened, seen or resolved on a domain is announced as a change of that domain, so
--    the page showing it re-reads it at once.

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION notify_domain_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('sajet.quiet_domain_events', true) = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('sajet_domain', OLD.customer_id::text || ':' || OLD.id::text);
    ELSE
        PERFORM pg_notify('sajet_domain', NEW.customer_id::text || ':' || NEW.id::text);
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION notify_alert_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.domain_id IS NOT NULL AND NEW.customer_id IS NOT NULL THEN
        PERFORM pg_notify('sajet_domain', NEW.customer_id::text || ':' || NEW.domain_id::text);
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER alerts_event AFTER INSERT OR UPDATE OF resolved_at, message, severity ON alerts
    FOR EACH ROW EXECUTE FUNCTION notify_alert_event();

-- +goose Down
DROP TRIGGER alerts_event ON alerts;
DROP FUNCTION notify_alert_event();
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION notify_domain_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('sajet_domain', OLD.customer_id::text || ':' || OLD.id::text);
    ELSE
        PERFORM pg_notify('sajet_domain', NEW.customer_id::text || ':' || NEW.id::text);
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd
