-- Webhooks: endpoints admins register, and one delivery per (endpoint, outbox event). The outbox
-- (change_events) is the source of truth: a worker fans its events out to the endpoints that
-- want them (`after_event` is how far it has settled), then sends each due delivery, retrying
-- with backoff; a claim is a lease (`leased_until`), so a crashed worker's claim runs out.
-- Keep in step with migrations/postgres/0011_webhooks.sql.
CREATE TABLE webhook_endpoints (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL,
    url         TEXT    NOT NULL,
    -- The signing secret (`whsec_` + base64), kept as it is: every delivery is signed with it.
    secret      TEXT    NOT NULL,
    -- JSON array of event types (`flag.archived`) or families (`flag.*`); empty: every event.
    events      TEXT    NOT NULL,
    format      TEXT    NOT NULL CHECK (format IN ('standard', 'slack')),
    paused_at   INTEGER,
    after_event INTEGER NOT NULL,
    created_by  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_id     INTEGER NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    event_id        INTEGER NOT NULL REFERENCES change_events(id) ON DELETE CASCADE,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    leased_until    INTEGER NOT NULL DEFAULT 0,
    last_attempt_at INTEGER,
    last_status     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at);
