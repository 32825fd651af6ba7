-- Gatehouse schema, SQLite dialect. Times are Unix epoch milliseconds; JSON documents are TEXT.
-- Keep in step with migrations/postgres/0001_domain.sql (same tables, columns and meaning).

CREATE TABLE environments (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    key                TEXT    NOT NULL UNIQUE,
    name               TEXT    NOT NULL,
    sort_order         INTEGER NOT NULL,
    is_production      INTEGER NOT NULL DEFAULT 0,
    flag_state_version INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    environment_id INTEGER NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    kind           TEXT    NOT NULL CHECK (kind IN ('publishable', 'secret')),
    -- publishable keys are public and kept as they are; secret keys only as a SHA-256 hex digest
    public_value   TEXT    UNIQUE,
    secret_hash    TEXT    UNIQUE,
    prefix         TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    revoked_at     INTEGER
);
CREATE INDEX api_keys_environment ON api_keys(environment_id);

CREATE TABLE release_stages (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    color      TEXT    NOT NULL,
    sort_order INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE stage_default_rules (
    stage_id       INTEGER NOT NULL REFERENCES release_stages(id) ON DELETE CASCADE,
    environment_id INTEGER NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    access_rules   TEXT    NOT NULL,
    PRIMARY KEY (stage_id, environment_id)
);

CREATE TABLE members (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE invitations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash  TEXT    NOT NULL UNIQUE,
    email       TEXT    NOT NULL,
    role        TEXT    NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
    created_by  INTEGER REFERENCES members(id) ON DELETE SET NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    accepted_at INTEGER,
    revoked_at  INTEGER
);

CREATE TABLE segments (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    key         TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    conditions  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE flags (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    key         TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    stage_id    INTEGER NOT NULL REFERENCES release_stages(id),
    owner_id    INTEGER REFERENCES members(id) ON DELETE SET NULL,
    archived    INTEGER NOT NULL DEFAULT 0,
    permanent   INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    updated_by  INTEGER REFERENCES members(id) ON DELETE SET NULL
);
CREATE INDEX flags_stage ON flags(stage_id);

-- Every change of a flag's access rules in an environment is a new row; the highest version is current.
CREATE TABLE flag_targeting_versions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    flag_id        INTEGER NOT NULL REFERENCES flags(id) ON DELETE CASCADE,
    environment_id INTEGER NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    version        INTEGER NOT NULL,
    access_rules   TEXT    NOT NULL,
    note           TEXT    NOT NULL DEFAULT '',
    created_at     INTEGER NOT NULL,
    created_by     INTEGER REFERENCES members(id) ON DELETE SET NULL,
    UNIQUE (flag_id, environment_id, version)
);

-- Remote-config values are shared by all environments; their targeting is per environment.
CREATE TABLE config_variants (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    flag_id    INTEGER NOT NULL REFERENCES flags(id) ON DELETE CASCADE,
    key        TEXT    NOT NULL,
    payload    TEXT    NOT NULL,
    sort_order INTEGER NOT NULL,
    UNIQUE (flag_id, key)
);

CREATE TABLE flag_config_versions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    flag_id        INTEGER NOT NULL REFERENCES flags(id) ON DELETE CASCADE,
    environment_id INTEGER NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    version        INTEGER NOT NULL,
    targeting      TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    created_by     INTEGER REFERENCES members(id) ON DELETE SET NULL,
    UNIQUE (flag_id, environment_id, version)
);

CREATE TABLE companies (
    environment_id INTEGER NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    id             TEXT    NOT NULL,
    name           TEXT,
    attributes     TEXT    NOT NULL DEFAULT '{}',
    first_seen     INTEGER NOT NULL,
    last_seen      INTEGER NOT NULL,
    PRIMARY KEY (environment_id, id)
);

CREATE TABLE users (
    environment_id INTEGER NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    id             TEXT    NOT NULL,
    name           TEXT,
    email          TEXT,
    attributes     TEXT    NOT NULL DEFAULT '{}',
    first_seen     INTEGER NOT NULL,
    last_seen      INTEGER NOT NULL,
    PRIMARY KEY (environment_id, id)
);

CREATE TABLE company_users (
    environment_id INTEGER NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    company_id     TEXT    NOT NULL,
    user_id        TEXT    NOT NULL,
    PRIMARY KEY (environment_id, company_id, user_id)
);

CREATE TABLE events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    environment_id INTEGER NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    name           TEXT    NOT NULL,
    user_id        TEXT,
    company_id     TEXT,
    attributes     TEXT    NOT NULL DEFAULT '{}',
    at             INTEGER NOT NULL
);

-- Flag checks reported by SDKs, counted per flag, environment and UTC day.
CREATE TABLE flag_exposures (
    environment_id INTEGER NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    flag_key       TEXT    NOT NULL,
    day            TEXT    NOT NULL,
    checks         INTEGER NOT NULL DEFAULT 0,
    enabled        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (environment_id, flag_key, day)
);

CREATE TABLE audit_log (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    at             INTEGER NOT NULL,
    actor_id       INTEGER REFERENCES members(id) ON DELETE SET NULL,
    actor_label    TEXT    NOT NULL,
    action         TEXT    NOT NULL,
    subject_type   TEXT    NOT NULL,
    subject_key    TEXT    NOT NULL,
    environment_id INTEGER REFERENCES environments(id) ON DELETE SET NULL,
    before_json    TEXT,
    after_json     TEXT
);
CREATE INDEX audit_log_at ON audit_log(at);

-- Session table in the layout tower-sessions-sqlx-store's SqliteStore expects.
CREATE TABLE tower_sessions (
    id          TEXT    PRIMARY KEY NOT NULL,
    data        BLOB    NOT NULL,
    expiry_date INTEGER NOT NULL
);
