-- The point a request was sent with (WGS-84 degrees; GCJ-02 points are converted on intake),
-- for the dashboard map and the export. NULL when none was sent, and for rows written before
-- these columns existed until the `requests` projector is rebuilt (`bianmin projections rebuild`).
ALTER TABLE request_summary ADD COLUMN lat DOUBLE PRECISION;
ALTER TABLE request_summary ADD COLUMN lon DOUBLE PRECISION;
