DROP INDEX audit_log_action_idx;
DROP INDEX audit_log_chain_idx;
ALTER TABLE audit_log DROP COLUMN key_id, DROP COLUMN chain;
