-- The change-event outbox: one row per change, written in the change's own transaction, so the
-- feed that notifications, webhooks and usage markers read never misses or invents a change.
-- Keep in step with migrations/postgres/0002_change_events.sql.
CREATE TABLE change_events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    at             INTEGER NOT NULL,
    audit_id       INTEGER NOT NULL REFERENCES audit_log(id) ON DELETE CASCADE,
    kind           TEXT    NOT NULL,
    subject_type   TEXT    NOT NULL,
    subject_key    TEXT    NOT NULL,
    environment_id INTEGER REFERENCES environments(id) ON DELETE SET NULL,
    actor_id       INTEGER,
    actor_label    TEXT    NOT NULL,
    payload        TEXT    NOT NULL
);
CREATE INDEX change_events_subject ON change_events(subject_type, subject_key, id);
