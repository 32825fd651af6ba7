-- Four eyes. An environment with required_approvals > 0 is protected: members change the access
-- and remote config there through change requests that other members approve (or, as admins,
-- directly with a written reason, which is audited). A request carries its change and the version
-- it was made against, like a scheduled change; editing it withdraws its approvals.
-- Keep in step with migrations/postgres/0007_change_requests.sql.
ALTER TABLE environments ADD COLUMN required_approvals INTEGER NOT NULL DEFAULT 0;

CREATE TABLE change_requests (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    flag_id        INTEGER NOT NULL REFERENCES flags(id) ON DELETE CASCADE,
    environment_id INTEGER NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    planned        TEXT   NOT NULL,
    note           TEXT   NOT NULL DEFAULT '',
    status         TEXT   NOT NULL
                   CHECK (status IN ('draft', 'review', 'approved', 'scheduled', 'applied', 'rejected', 'cancelled')),
    outcome        TEXT   NOT NULL DEFAULT '',
    created_by     INTEGER REFERENCES members(id) ON DELETE SET NULL,
    created_label  TEXT   NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX change_requests_flag ON change_requests(flag_id, status);

CREATE TABLE change_request_approvals (
    request_id   INTEGER NOT NULL REFERENCES change_requests(id) ON DELETE CASCADE,
    member_id    INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    member_label TEXT   NOT NULL,
    at           INTEGER NOT NULL,
    PRIMARY KEY (request_id, member_id)
);

-- An approved request applied at a later time is a scheduled change that carries its review.
ALTER TABLE scheduled_changes ADD COLUMN request_id INTEGER REFERENCES change_requests(id) ON DELETE SET NULL;
