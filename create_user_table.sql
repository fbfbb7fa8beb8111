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

-- One row per user, resource and permission (SYSTEM.md section 6). A
-- resource is 'lake/<STREAM>' (a folder of the data lake), 'warehouse/<table>',
-- 'products' (API 1) or 'admin'; a permission is read, write or execute
-- (products: view, add, update, delete).
CREATE TABLE IF NOT EXISTS user_permissions (
    id            BIGSERIAL PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    resource      TEXT NOT NULL,
    permission    TEXT NOT NULL,
    granted_by    BIGINT REFERENCES users (id) ON DELETE SET NULL,
    granted_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Earlier versions of this file kept the resource in two columns
-- (resource_kind, resource_path); fold them into one.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_schema = current_schema() AND table_name = 'user_permissions'
                 AND column_name = 'resource_kind') THEN
        ALTER TABLE user_permissions ADD COLUMN IF NOT EXISTS resource TEXT;
        UPDATE user_permissions SET resource = resource_kind || '/' || resource_path;
        ALTER TABLE user_permissions ALTER COLUMN resource SET NOT NULL;
        ALTER TABLE user_permissions DROP COLUMN resource_kind, DROP COLUMN resource_path;
    END IF;
END $$;

ALTER TABLE user_permissions DROP CONSTRAINT IF EXISTS user_permissions_unique;
ALTER TABLE user_permissions DROP CONSTRAINT IF EXISTS user_permissions_resource_check;
ALTER TABLE user_permissions DROP CONSTRAINT IF EXISTS user_permissions_permission_check;
ALTER TABLE user_permissions ADD CONSTRAINT user_permissions_resource_check
    CHECK (resource ~ '^(products|admin|lake/[A-Za-z0-9_]{1,128}|warehouse/[a-z0-9_]{1,63})$');
ALTER TABLE user_permissions ADD CONSTRAINT user_permissions_permission_check
    CHECK (permission IN ('read', 'write', 'execute', 'view', 'add', 'update', 'delete'));
ALTER TABLE user_permissions ADD CONSTRAINT user_permissions_unique
    UNIQUE (user_id, resource, permission);
DROP INDEX IF EXISTS user_permissions_resource_idx;
CREATE INDEX IF NOT EXISTS user_permissions_resource_idx ON user_permissions (resource);

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

-- Audit trail of every API call, refused ones included; request bodies are
-- stored with secrets (passwords, tokens) redacted.
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
-- Added with the API server: how long the request took, and a unique id per
-- entry so that entries replayed from the server's spool are never doubled.
ALTER TABLE access_log ADD COLUMN IF NOT EXISTS duration_ms DOUBLE PRECISION;
ALTER TABLE access_log ADD COLUMN IF NOT EXISTS entry_id TEXT;
CREATE UNIQUE INDEX IF NOT EXISTS access_log_entry_idx ON access_log (entry_id);
CREATE INDEX IF NOT EXISTS access_log_resource_idx ON access_log (resource, accessed_at);
CREATE INDEX IF NOT EXISTS access_log_user_idx ON access_log (user_id, accessed_at);
