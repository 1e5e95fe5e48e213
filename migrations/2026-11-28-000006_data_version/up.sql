-- A counter per partnership, raised in the same transaction as every change to its case records
-- (a batch committed, withdrawn or superseded), so cached grids know when they are stale.
ALTER TABLE partnerships ADD COLUMN data_version BIGINT NOT NULL DEFAULT 0;
