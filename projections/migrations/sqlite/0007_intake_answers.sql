-- The catalogue item named at intake and the answers to its typed questions
-- (`request_received.service_code` / `answers`, a JSON object as text), for exports and BI.
-- Rows written before these columns existed read NULL until the `requests` projector is
-- rebuilt (`bianmin projections rebuild`).
ALTER TABLE request_summary ADD COLUMN requested_item TEXT;
ALTER TABLE request_summary ADD COLUMN answers TEXT;
