-- Usage: what the evaluation API decided and what SDKs reported, counted in memory by each
-- server and added here in batches (src/runtime/usage.rs, src/store/usage.rs). Every replica
-- adds its own increments, so a row holds the sum over replicas. Flags are named by key: SDKs
-- report keys, and a flag deleted and created again under its key keeps its history.
-- Keep in step with migrations/postgres/0008_usage.sql.

-- Checks per flag, environment, hour and outcome ('enabled', 'disabled', 'variant:<key>'):
-- `evaluated` by the server, `reported` by SDKs. Kept 14 days.
CREATE TABLE usage_hourly (
    environment_id INTEGER NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    flag_key       TEXT    NOT NULL,
    hour           INTEGER NOT NULL,
    outcome        TEXT    NOT NULL,
    evaluated      INTEGER NOT NULL DEFAULT 0,
    reported       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (environment_id, flag_key, hour, outcome)
);
CREATE INDEX usage_hourly_hour ON usage_hourly(hour);
CREATE INDEX usage_hourly_flag ON usage_hourly(flag_key, hour);

-- Companies and users a flag was enabled for, per environment and UTC day: HyperLogLog++
-- sketches (MessagePack), merged on every flush, with their counts at the last merge. Kept
-- 400 days.
CREATE TABLE usage_daily (
    environment_id INTEGER NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    flag_key       TEXT    NOT NULL,
    day            INTEGER NOT NULL,
    companies      BLOB    NOT NULL,
    users          BLOB    NOT NULL,
    company_count  INTEGER NOT NULL DEFAULT 0,
    user_count     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (environment_id, flag_key, day)
);
CREATE INDEX usage_daily_day ON usage_daily(day);
CREATE INDEX usage_daily_flag ON usage_daily(flag_key, day);

-- When each flag was last checked in each environment (kept as long as the environment).
CREATE TABLE usage_last_checked (
    environment_id INTEGER NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    flag_key       TEXT    NOT NULL,
    at             INTEGER NOT NULL,
    PRIMARY KEY (environment_id, flag_key)
);

-- The daily check counts SDKs reported before: their day's first hour, as reported checks.
INSERT INTO usage_hourly (environment_id, flag_key, hour, outcome, evaluated, reported)
SELECT environment_id, flag_key, CAST(strftime('%s', day) AS INTEGER) * 1000, 'enabled', 0, enabled
FROM flag_exposures WHERE enabled > 0 AND strftime('%s', day) IS NOT NULL;
INSERT INTO usage_hourly (environment_id, flag_key, hour, outcome, evaluated, reported)
SELECT environment_id, flag_key, CAST(strftime('%s', day) AS INTEGER) * 1000, 'disabled', 0, checks - enabled
FROM flag_exposures WHERE checks > enabled AND strftime('%s', day) IS NOT NULL;
DROP TABLE flag_exposures;

-- Settings of the whole installation, by name (staleness thresholds, …).
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
