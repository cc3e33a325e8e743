-- +goose Up

-- Agent sessions across control-plane replicas. session_epoch increases with every accepted
-- session of an agent, on whichever replica accepts it; a replica marks a session closed only if
-- its epoch is still the current one, so an old session ending late on replica A does not make
-- an agent connected to replica B look offline.
ALTER TABLE agents
    ADD COLUMN session_epoch   bigint NOT NULL DEFAULT 0,
    ADD COLUMN connected_at    timestamptz,
    ADD COLUMN disconnected_at timestamptz,
    ADD COLUMN remote_addr     text;

-- +goose Down
ALTER TABLE agents
    DROP COLUMN session_epoch,
    DROP COLUMN connected_at,
    DROP COLUMN disconnected_at,
    DROP COLUMN remote_addr;
