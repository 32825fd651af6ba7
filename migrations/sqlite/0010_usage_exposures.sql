-- Companies and users each flag was enabled for, per environment, UTC day and server process
-- (`replica`, random per process). Every process keeps the day's sketches in memory and replaces
-- its own row on each flush, so a flush never reads, merges or waits for another replica's row;
-- readers merge the rows of a day (HyperLogLog++ unions are exact for sketches). Replaces
-- usage_daily, whose rows move here as one replica. Kept 400 days.
-- Keep in step with migrations/postgres/0010_usage_exposures.sql.
CREATE TABLE usage_exposures (
    environment_id INTEGER NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    flag_key       TEXT    NOT NULL,
    day            INTEGER NOT NULL,
    replica        TEXT    NOT NULL,
    companies      BLOB    NOT NULL,
    users          BLOB    NOT NULL,
    PRIMARY KEY (environment_id, flag_key, day, replica)
);
CREATE INDEX usage_exposures_day ON usage_exposures(day);
CREATE INDEX usage_exposures_flag ON usage_exposures(flag_key, day);

INSERT INTO usage_exposures (environment_id, flag_key, day, replica, companies, users)
SELECT environment_id, flag_key, day, 'before-0010', companies, users FROM usage_daily;
DROP TABLE usage_daily;
