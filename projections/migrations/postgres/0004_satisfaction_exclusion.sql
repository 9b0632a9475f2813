-- The classification in force names a catalogue item flagged `excluded_from_satisfaction`
-- (law-enforcement matters, 执法办案): its rating stays out of the satisfaction counts
-- (docs/metrics.md). Rows written before this column existed read false until the `requests`
-- projector is rebuilt (`bianmin projections rebuild`).
ALTER TABLE request_summary ADD COLUMN satisfaction_excluded BOOLEAN NOT NULL DEFAULT FALSE;
