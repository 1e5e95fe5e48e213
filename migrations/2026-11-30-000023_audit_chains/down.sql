DROP TABLE audit_legacy_end;
DROP FUNCTION audit_legacy_end_is_fixed();
DROP INDEX audit_log_action_idx;
DROP INDEX audit_log_chain_idx;
ALTER TABLE audit_log DROP COLUMN key_id, DROP COLUMN chain;
