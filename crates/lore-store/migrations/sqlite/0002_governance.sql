-- Governance: the per-minute window of each API key's rate limit, so that counting it is one
-- atomic statement; indexes for the retention purges.

ALTER TABLE api_keys ADD COLUMN rate_window TEXT;     -- UTC minute the counter belongs to
ALTER TABLE api_keys ADD COLUMN rate_count INTEGER NOT NULL DEFAULT 0;

CREATE INDEX idx_usage_status_created ON api_usage_logs(status_code, created_at);
CREATE INDEX idx_conv_user_updated ON conversations(user_id, updated_at);
