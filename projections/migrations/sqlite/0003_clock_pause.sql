-- The running pause of a request's completion clock (`clock_paused` .. `clock_resumed`): while
-- set, the request's deadline is not running, so it is neither due nor overdue
-- (docs/metrics.md). Rows written before this column existed read NULL until the `requests`
-- projector is rebuilt (`bianmin projections rebuild`). Timestamps are RFC 3339 text.
ALTER TABLE request_summary ADD COLUMN paused_since TEXT;
