-- Releases: disclosure-controlled tables a partnership publishes to the partner viewers of
-- partnerships it shares with (docs/privacy.md, "Releases"). A release is prepared by one
-- partnership analyst and approved by another; its content never changes, and withdrawing it is
-- the only other change.
CREATE TABLE releases (
    id                    UUID PRIMARY KEY,
    partnership_code      TEXT NOT NULL REFERENCES partnerships (code) ON DELETE RESTRICT,
    version               INTEGER NOT NULL CHECK (version >= 1),
    period                TEXT NOT NULL CHECK (period ~ '^[0-9]{4}-Q[1-4]$'),
    resolution            SMALLINT NOT NULL CHECK (resolution BETWEEN 5 AND 7),
    threshold             INTEGER NOT NULL CHECK (threshold >= 1),
    rounding              INTEGER NOT NULL CHECK (rounding >= 1),
    content               JSONB NOT NULL,
    suppressed_primary    INTEGER NOT NULL,
    suppressed_secondary  INTEGER NOT NULL,
    prepared_by           TEXT NOT NULL,
    prepared_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    approved_by           TEXT,
    approved_at           TIMESTAMPTZ,
    withdrawn_by          TEXT,
    withdrawn_at          TIMESTAMPTZ,
    UNIQUE (partnership_code, version),
    CHECK (approved_by IS NULL OR approved_by <> prepared_by),
    CHECK ((approved_by IS NULL) = (approved_at IS NULL)),
    CHECK ((withdrawn_by IS NULL) = (withdrawn_at IS NULL))
);
-- One release in force per partnership and quarter: a quarter is released again only after the
-- earlier release is withdrawn.
CREATE UNIQUE INDEX releases_in_force_idx ON releases (partnership_code, period)
    WHERE withdrawn_at IS NULL;

-- Content is immutable; approval and withdrawal are set once each; nothing is deleted.
CREATE FUNCTION releases_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'releases are never deleted; withdraw them';
    END IF;
    IF (NEW.id, NEW.partnership_code, NEW.version, NEW.period, NEW.resolution, NEW.threshold,
        NEW.rounding, NEW.content, NEW.suppressed_primary, NEW.suppressed_secondary,
        NEW.prepared_by, NEW.prepared_at)
       IS DISTINCT FROM
       (OLD.id, OLD.partnership_code, OLD.version, OLD.period, OLD.resolution, OLD.threshold,
        OLD.rounding, OLD.content, OLD.suppressed_primary, OLD.suppressed_secondary,
        OLD.prepared_by, OLD.prepared_at) THEN
        RAISE EXCEPTION 'a release''s content never changes';
    END IF;
    IF OLD.approved_by IS NOT NULL AND NEW.approved_by IS DISTINCT FROM OLD.approved_by THEN
        RAISE EXCEPTION 'a release is approved once';
    END IF;
    IF OLD.withdrawn_by IS NOT NULL AND NEW.withdrawn_by IS DISTINCT FROM OLD.withdrawn_by THEN
        RAISE EXCEPTION 'a release is withdrawn once';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER releases_guard BEFORE UPDATE OR DELETE ON releases
    FOR EACH ROW EXECUTE FUNCTION releases_guard();
