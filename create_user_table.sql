-- Access control for the lakehouse APIs. Idempotent: applied on every start
-- of the stack (lakectl up) and by the API server.

CREATE TABLE IF NOT EXISTS users (
    id            BIGSERIAL PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9_.@-]{1,64}$'),
    -- A slow, salted hash in PHC string form (argon2id); plain passwords are never stored.
    password_hash TEXT NOT NULL CHECK (password_hash LIKE '$argon2%'),
    is_admin      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    disabled_at   TIMESTAMPTZ
);

-- One row per user, resource and permission. A resource is a path in the
-- data lake (e.g. 'TRANSACTIONS_USD' or 'TRANSACTIONS_USD/ingestion_date=2026-11-24')
-- or a warehouse table (e.g. 'total_par_transaction_type').
CREATE TABLE IF NOT EXISTS user_permissions (
    id            BIGSERIAL PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    resource_kind TEXT NOT NULL CHECK (resource_kind IN ('lake', 'warehouse')),
    resource_path TEXT NOT NULL CHECK (resource_path <> '' AND resource_path NOT LIKE '%..%'),
    permission    TEXT NOT NULL CHECK (permission IN ('read', 'write', 'execute')),
    granted_by    BIGINT REFERENCES users (id) ON DELETE SET NULL,
    granted_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT user_permissions_unique UNIQUE (user_id, resource_kind, resource_path, permission)
);
CREATE INDEX IF NOT EXISTS user_permissions_resource_idx
    ON user_permissions (resource_kind, resource_path);

-- Bearer tokens. Only a SHA-256 digest of the token is kept, so a database
-- leak does not leak usable tokens; revoking sets revoked_at.
CREATE TABLE IF NOT EXISTS api_tokens (
    id          BIGSERIAL PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  BYTEA NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS api_tokens_user_idx ON api_tokens (user_id);

-- Audit trail of every API call.
CREATE TABLE IF NOT EXISTS access_log (
    id          BIGSERIAL PRIMARY KEY,
    user_id     BIGINT REFERENCES users (id) ON DELETE SET NULL,
    username    TEXT,
    accessed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    method      TEXT NOT NULL,
    path        TEXT NOT NULL,
    query       TEXT,
    body        TEXT,
    status      INTEGER NOT NULL,
    resource    TEXT
);
CREATE INDEX IF NOT EXISTS access_log_resource_idx ON access_log (resource, accessed_at);
CREATE INDEX IF NOT EXISTS access_log_user_idx ON access_log (user_id, accessed_at);
