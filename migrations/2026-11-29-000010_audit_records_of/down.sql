DROP INDEX audit_log_records_of_idx;
ALTER TABLE audit_log DROP COLUMN caller_partnership, DROP COLUMN records_of;
