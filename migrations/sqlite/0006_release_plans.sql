-- Release plans: the milestones a flag's access in one environment goes through, and the named
-- templates they are made from (a plan copies its template's milestones when it starts).
-- Keep in step with migrations/postgres/0006_release_plans.sql.
CREATE TABLE plan_templates (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT   NOT NULL UNIQUE,
    milestones  TEXT   NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE release_plans (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    flag_id         INTEGER NOT NULL REFERENCES flags(id) ON DELETE CASCADE,
    environment_id  INTEGER NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    template        TEXT   NOT NULL,
    milestones      TEXT   NOT NULL,
    current         INTEGER NOT NULL,
    status          TEXT   NOT NULL CHECK (status IN ('active', 'paused', 'completed', 'cancelled')),
    next_due_at     INTEGER,
    applied_version INTEGER NOT NULL,
    note            TEXT   NOT NULL DEFAULT '',
    created_kind    TEXT   NOT NULL CHECK (created_kind IN ('member', 'operator')),
    created_by      INTEGER REFERENCES members(id) ON DELETE SET NULL,
    created_label   TEXT   NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
-- One running (active or paused) plan per flag and environment.
CREATE UNIQUE INDEX release_plans_running ON release_plans(flag_id, environment_id)
    WHERE status IN ('active', 'paused');
CREATE INDEX release_plans_due ON release_plans(status, next_due_at);
