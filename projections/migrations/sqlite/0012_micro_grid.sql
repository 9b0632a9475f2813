-- The micro-grid (微网格) a request was located in, when intake named one: the finest level of
-- the grid roll-up (`group_by=micro_grid`). NULL when intake named none, and for rows written
-- before this column existed until the `requests` projector is rebuilt
-- (`bianmin projections rebuild`).
ALTER TABLE request_summary ADD COLUMN micro_grid TEXT;
