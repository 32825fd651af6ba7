-- API keys get a name people choose ("Web app", "Billing service"); a rotated publishable key
-- keeps working until its revoked_at, which may lie in the future (a grace period).
-- Keep in step with migrations/sqlite/0012_api_key_names.sql.
ALTER TABLE api_keys ADD COLUMN name TEXT NOT NULL DEFAULT '';
