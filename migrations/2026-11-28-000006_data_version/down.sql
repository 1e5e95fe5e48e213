ALTER TABLE partnerships DROP COLUMN data_version;
