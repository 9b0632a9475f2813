-- The latest supervision marks of a request, for worklists: when it was last reminded (催办),
-- warned, marked overdue and escalated (the level is escalation_level), as the events'
-- instants. Rows written before these columns existed read NULL until the `requests`
-- projector is rebuilt (`bianmin projections rebuild`).
ALTER TABLE request_summary ADD COLUMN reminded_at TEXT;
ALTER TABLE request_summary ADD COLUMN warned_at TEXT;
ALTER TABLE request_summary ADD COLUMN marked_overdue_at TEXT;
ALTER TABLE request_summary ADD COLUMN escalated_at TEXT;
