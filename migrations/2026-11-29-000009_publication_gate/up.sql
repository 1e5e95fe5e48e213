-- The publication gate (docs/privacy.md, "The publication gate").

-- Each record's key: a random byte drawn when the record is stored (a strong random source,
-- gen_random_uuid) and never shown. A published figure's noise is a fixed function of its
-- count and the sum of its records' keys. Existing records get theirs now (the default is
-- evaluated for every row).
ALTER TABLE case_records ADD COLUMN record_key SMALLINT NOT NULL
    DEFAULT get_byte(uuid_send(gen_random_uuid()), 0)
    CHECK (record_key BETWEEN 0 AND 255);

-- Frozen products: a partnership's gated figures for one closed period (a quarter `2026-Q1` or
-- a month `2026-01`), computed once and served identically to every neighbour and to the
-- national export. Late records change no frozen summary; an administrator's explicit, audited
-- revision adds a new version, which is served from then on.
CREATE TABLE published_summaries (
    partnership_code  TEXT NOT NULL REFERENCES partnerships (code) ON DELETE RESTRICT,
    period            TEXT NOT NULL CHECK (period ~ '^[0-9]{4}-(Q[1-4]|(0[1-9]|1[0-2]))$'),
    version           SMALLINT NOT NULL DEFAULT 1 CHECK (version >= 1),
    figures           JSONB NOT NULL,
    frozen_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (partnership_code, period, version)
);

CREATE FUNCTION published_summaries_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'published summaries are frozen: % is refused', TG_OP;
END;
$$;

CREATE TRIGGER published_summaries_guard BEFORE UPDATE OR DELETE ON published_summaries
    FOR EACH ROW EXECUTE FUNCTION published_summaries_guard();

-- Query auditing counts each subject's recent cross-boundary questions.
CREATE INDEX audit_log_subject_idx ON audit_log (subject, occurred_at);
