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
