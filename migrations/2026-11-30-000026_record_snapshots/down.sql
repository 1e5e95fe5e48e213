DROP TRIGGER record_snapshots_after_truncate ON case_records;
DROP TRIGGER record_snapshots_after_update ON case_records;
DROP TRIGGER record_snapshots_after_delete ON case_records;
DROP FUNCTION atlas_drop_every_record_snapshot();
DROP FUNCTION atlas_drop_changed_record_snapshots();
DROP TRIGGER record_snapshot_stale ON partnerships;
DROP FUNCTION atlas_drop_record_snapshot();
DROP TABLE record_snapshots;
