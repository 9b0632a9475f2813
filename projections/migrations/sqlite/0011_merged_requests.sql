-- The original a request was merged into (并案, `linked_to_original` with relation `merged`),
-- as text; NULL for every other request. A merged duplicate counts as received (and accepted,
-- if it was) but is no separate request for the on-time, completion and satisfaction rates
-- (docs/metrics.md). Rows written before this column existed read NULL until the `requests`
-- projector is rebuilt (`bianmin projections rebuild`).
ALTER TABLE request_summary ADD COLUMN merged_into TEXT;
