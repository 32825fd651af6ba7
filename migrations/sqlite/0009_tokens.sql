-- Access tokens for the management API (/api/v1), the MCP server and the command line against a
-- server. Personal tokens belong to a member and act with the member's role as it is at each
-- request; service tokens are created by admins with a name and a role of their own. Only the
-- SHA-256 digest of a token is stored; its first characters (`prefix`) name it in lists.
-- Keep in step with migrations/postgres/0009_tokens.sql.
CREATE TABLE access_tokens (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT    NOT NULL CHECK (kind IN ('personal', 'service')),
    name        TEXT    NOT NULL,
    prefix      TEXT    NOT NULL UNIQUE,
    digest      TEXT    NOT NULL UNIQUE,
    member_id   INTEGER REFERENCES members(id) ON DELETE CASCADE,
    role        TEXT    CHECK (role IN ('admin', 'editor', 'viewer')),
    created_by  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    revoked_at  INTEGER,
    CHECK ((kind = 'personal' AND member_id IS NOT NULL) OR (kind = 'service' AND role IS NOT NULL))
);
CREATE INDEX access_tokens_member ON access_tokens(member_id);

-- Responses to creations sent with an `Idempotency-Key`, replayed for a repeat of the key by the
-- same token within a day.
CREATE TABLE idempotent_requests (
    token_id    INTEGER NOT NULL REFERENCES access_tokens(id) ON DELETE CASCADE,
    key         TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    status      INTEGER NOT NULL,
    body        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (token_id, key)
);
