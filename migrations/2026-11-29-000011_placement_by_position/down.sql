DROP INDEX postcodes_authority_idx;
ALTER TABLE postcodes DROP COLUMN authority_code;
ALTER TABLE partnerships DROP COLUMN coverage_tiling;
ALTER TABLE partnership_cells DROP COLUMN whole;
