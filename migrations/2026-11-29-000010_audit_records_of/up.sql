-- Need to know: each audit entry keeps the partnerships whose case records the answer used,
-- and the caller's own partnership, so that a partnership can list who outside it read its
-- records. Entries made before this migration have neither; their hashes do not cover them
-- (docs/access.md, "The audit trail").
ALTER TABLE audit_log
    ADD COLUMN records_of TEXT[] NOT NULL DEFAULT '{}',
    ADD COLUMN caller_partnership TEXT CHECK (caller_partnership ~ '^[A-Z][0-9]{8}$');
CREATE INDEX audit_log_records_of_idx ON audit_log USING GIN (records_of);
