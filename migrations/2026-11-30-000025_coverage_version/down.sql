ALTER TABLE partnerships DROP COLUMN coverage_version;
