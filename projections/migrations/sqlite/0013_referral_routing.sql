-- How the latest referral's units were chosen (docs/routing.md): the routing rule that proposed
-- them (`catalogue:<item>` for the catalogue's suggestion) and whether the dispatcher
-- overrode it. NULL for requests never referred, for referrals recorded before routing rules,
-- and for rows written before these columns existed until the `requests` projector is
-- rebuilt (`bianmin projections rebuild`).
ALTER TABLE request_summary ADD COLUMN routing_rule TEXT;
ALTER TABLE request_summary ADD COLUMN routing_overridden BOOLEAN;
