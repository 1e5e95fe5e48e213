DROP INDEX audit_log_subject_idx;
DROP TABLE published_summaries;
DROP FUNCTION published_summaries_guard();
ALTER TABLE case_records DROP COLUMN record_key;
