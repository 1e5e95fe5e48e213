-- A counter per partnership, raised in the same transaction as every rewrite of its coverage
-- (partnership_cells: a changed boundary imported, or a re-tiling), so that the study areas the
-- analyses keep in memory know when they are stale.
ALTER TABLE partnerships ADD COLUMN coverage_version BIGINT NOT NULL DEFAULT 0;
