-- A board's self-assessments against the key questions of the guidance (docs/profiles.md,
-- "Self-assessment"): each one dated and kept whole — every question's rating, evidence and
-- actions — with the evidence Atlas held when it was recorded. Never edited or deleted: the next
-- assessment starts from the last and is recorded as the next version.
CREATE TABLE self_assessments (
    partnership_code  TEXT NOT NULL REFERENCES partnerships (code) ON DELETE RESTRICT,
    version           INTEGER NOT NULL CHECK (version >= 1),
    assessed_on       DATE NOT NULL,
    recorded_by       TEXT NOT NULL,
    recorded_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    answers           JSONB NOT NULL,
    atlas_evidence    JSONB NOT NULL,
    PRIMARY KEY (partnership_code, version)
);

CREATE FUNCTION self_assessments_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a self-assessment is never edited or deleted; record the next one';
END;
$$;
CREATE TRIGGER self_assessments_guard BEFORE UPDATE OR DELETE ON self_assessments
    FOR EACH ROW EXECUTE FUNCTION self_assessments_guard();
