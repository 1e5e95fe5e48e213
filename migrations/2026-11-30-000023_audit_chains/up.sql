-- One audit chain per partnership plus one for administration, each entry's hash keyed with a
-- secret held outside the database (atlas_store::audit; docs/access.md, "The audit trail").
-- Entries already written form the chain `global`, unkeyed, and verify as they did. Adding
-- columns with a constant default rewrites no row (and so does not meet the append-only
-- trigger); new entries always name their chain.
ALTER TABLE audit_log
    ADD COLUMN chain TEXT NOT NULL DEFAULT 'global'
        CHECK (chain IN ('global', 'administration') OR chain ~ '^[A-Z][0-9]{8}$'),
    ADD COLUMN key_id TEXT CHECK (key_id ~ '^[0-9a-f]{16}$');
ALTER TABLE audit_log ALTER COLUMN chain DROP DEFAULT;
-- Appends read their chain's head, verification walks a chain in order.
CREATE INDEX audit_log_chain_idx ON audit_log (chain, id);
-- Auditors filter by action.
CREATE INDEX audit_log_action_idx ON audit_log (action, occurred_at);

-- Where the unkeyed entries end: verification refuses an unkeyed `global` entry after it (an
-- entry added later by someone without the key). Written once, never changed.
CREATE TABLE audit_legacy_end (
    only_row  BOOLEAN PRIMARY KEY DEFAULT true CHECK (only_row),
    last_id   BIGINT
);
INSERT INTO audit_legacy_end (last_id) SELECT max(id) FROM audit_log;
CREATE FUNCTION audit_legacy_end_is_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_legacy_end is written once: % is not allowed', TG_OP;
END $$;
CREATE TRIGGER audit_legacy_end_fixed BEFORE UPDATE OR DELETE ON audit_legacy_end
    FOR EACH ROW EXECUTE FUNCTION audit_legacy_end_is_fixed();
CREATE TRIGGER audit_legacy_end_no_truncate BEFORE TRUNCATE ON audit_legacy_end
    FOR EACH STATEMENT EXECUTE FUNCTION audit_legacy_end_is_fixed();
