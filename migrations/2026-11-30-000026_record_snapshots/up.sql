-- A compact copy of a partnership's current case records (crates/store/src/snapshots.rs): written
-- by a server after it loaded them row by row, and read whole by the next process (or restart)
-- that needs them at the same data version, in a fifth of the time. `layout` fingerprints the
-- encoding and the vocabularies it numbers, so a snapshot another version of Atlas wrote is
-- never misread (each layout has its own row, so two versions side by side in a rolling deploy
-- do not overwrite each other's).
--
-- No deleted record may outlive its deletion here. The application raises data_version in the
-- transaction of every change to a partnership's records (a batch, a withdrawal, retention, an
-- erasure) and the first trigger below deletes the partnership's snapshots with it; the others
-- catch what changes the records without the application (a correction by hand, a TRUNCATE): any
-- UPDATE or DELETE of case_records deletes the snapshots of the partnerships it touched, and a
-- TRUNCATE every snapshot.
CREATE TABLE record_snapshots (
    partnership_code TEXT NOT NULL REFERENCES partnerships (code),
    layout           BIGINT NOT NULL,
    data_version     BIGINT NOT NULL,
    agencies         UUID[] NOT NULL,
    records          BYTEA NOT NULL,
    written_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (partnership_code, layout)
);
-- Stored out of line uncompressed: the records are dense binary, and compressing tens of
-- megabytes would cost more than it saves.
ALTER TABLE record_snapshots ALTER COLUMN records SET STORAGE EXTERNAL;

CREATE FUNCTION atlas_drop_record_snapshot() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM record_snapshots WHERE partnership_code = NEW.code;
    RETURN NULL;
END
$$;

CREATE TRIGGER record_snapshot_stale
    AFTER UPDATE OF data_version ON partnerships
    FOR EACH ROW WHEN (OLD.data_version IS DISTINCT FROM NEW.data_version)
    EXECUTE FUNCTION atlas_drop_record_snapshot();

CREATE FUNCTION atlas_drop_changed_record_snapshots() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM record_snapshots
    WHERE partnership_code IN (SELECT DISTINCT partnership_code FROM changed);
    RETURN NULL;
END
$$;

CREATE TRIGGER record_snapshots_after_delete
    AFTER DELETE ON case_records REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION atlas_drop_changed_record_snapshots();

CREATE TRIGGER record_snapshots_after_update
    AFTER UPDATE ON case_records REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION atlas_drop_changed_record_snapshots();

CREATE FUNCTION atlas_drop_every_record_snapshot() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM record_snapshots;
    RETURN NULL;
END
$$;

CREATE TRIGGER record_snapshots_after_truncate
    AFTER TRUNCATE ON case_records
    FOR EACH STATEMENT EXECUTE FUNCTION atlas_drop_every_record_snapshot();
