DROP TRIGGER record_snapshot_stale ON partnerships;
DROP FUNCTION atlas_drop_record_snapshot();
DROP TABLE record_snapshots;
