-- The web UI's sign-in (docs/SECURITY.md, "The web UI"). A session is what a browser holds instead
-- of an API token: the cookie carries a random secret, only its SHA-256 is stored. A session acts
-- as the API token it was opened with and ends with it (revoked or deleted). A sign-in code is a
-- short-lived, single-use secret that opens one session for a token (the link `make run` prints).

-- +goose Up
CREATE TABLE ui_sessions (
    id           bigserial PRIMARY KEY,
    secret_hash  bytea NOT NULL UNIQUE,
    token_id     bigint NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX ui_sessions_expires_at ON ui_sessions (expires_at);
CREATE INDEX ui_sessions_token_id ON ui_sessions (token_id);

CREATE TABLE signin_codes (
    code_hash  bytea PRIMARY KEY,
    token_id   bigint NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE signin_codes;
DROP TABLE ui_sessions;
