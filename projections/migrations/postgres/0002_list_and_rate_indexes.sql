-- Indexes in the sort order of every list endpoint (cursor order `due_at, request_id` over the
-- open or unassigned requests, `last_position, request_id` for the change feed), and period ×
-- dimension indexes for the rate queries' filters.
CREATE INDEX request_summary_open_due_idx ON request_summary (due_at, request_id) WHERE is_open;
CREATE INDEX request_summary_owner_due_idx ON request_summary (owner, due_at, request_id) WHERE is_open;
CREATE INDEX request_summary_dept_due_idx ON request_summary (lead_department, due_at, request_id) WHERE is_open;
CREATE INDEX request_summary_community_due_idx ON request_summary (community, due_at, request_id) WHERE is_open;
CREATE INDEX request_summary_unassigned_idx ON request_summary (community, due_at, request_id) WHERE stage = 'received';
CREATE INDEX request_summary_feed_idx ON request_summary (last_position, request_id);
CREATE INDEX request_summary_street_month_idx ON request_summary (street, received_month);
CREATE INDEX request_summary_dept_month_idx ON request_summary (lead_department, received_month);
CREATE INDEX request_summary_channel_month_idx ON request_summary (channel, received_month);
DROP INDEX IF EXISTS request_summary_open_idx;
DROP INDEX IF EXISTS request_summary_owner_idx;
DROP INDEX IF EXISTS request_summary_dept_idx;
DROP INDEX IF EXISTS request_summary_position_idx;
CREATE INDEX upward_reports_feed_idx ON upward_reports (last_position, report_id);
DROP INDEX IF EXISTS upward_reports_position_idx;
