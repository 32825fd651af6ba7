-- Changes to a flag planned for a later time: applied once, when due, through the change
-- pipeline (as their author, in the author's role at that time). `basis` is what the change was
-- made against (the rules' or config's version, the stage, the archive state); when the flag has
-- moved on by the time the change is due, it is not applied but marked `conflict`.
-- Keep in step with migrations/postgres/0005_scheduled_changes.sql.
CREATE TABLE scheduled_changes (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    flag_id        INTEGER NOT NULL REFERENCES flags(id) ON DELETE CASCADE,
    environment_id INTEGER REFERENCES environments(id) ON DELETE CASCADE,
    planned        TEXT   NOT NULL,
    due_at         INTEGER NOT NULL,
    status         TEXT   NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'applied', 'conflict', 'failed', 'cancelled')),
    outcome        TEXT   NOT NULL DEFAULT '',
    created_by     INTEGER REFERENCES members(id) ON DELETE SET NULL,
    -- 'member' (created_by, NULL once the member is removed) or 'operator' (the command line).
    created_kind   TEXT   NOT NULL CHECK (created_kind IN ('member', 'operator')),
    created_label  TEXT   NOT NULL,
    created_at     INTEGER NOT NULL,
    settled_at     INTEGER,
    settled_label  TEXT
);
CREATE INDEX scheduled_changes_due ON scheduled_changes(status, due_at);
CREATE INDEX scheduled_changes_flag ON scheduled_changes(flag_id, status);
