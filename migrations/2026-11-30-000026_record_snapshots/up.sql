-- A compact copy of a partnership's current case records (crates/store/src/snapshots.rs): written
-- by a server after it loaded them row by row, and read whole by the next process (or restart)
-- that needs them at the same data version, in a tenth of the time. `layout` fingerprints the
-- encoding and the vocabularies it numbers, so a snapshot another version of Atlas wrote is
-- never misread. The trigger below deletes a partnership's snapshot in the transaction of every
-- change to its records (a batch, a withdrawal, retention, an erasure all raise data_version),
-- so no deleted record outlives its deletion here.
CREATE TABLE record_snapshots (
    partnership_code TEXT PRIMARY KEY REFERENCES partnerships (code),
    data_version     BIGINT NOT NULL,
    layout           BIGINT NOT NULL,
    agencies         UUID[] NOT NULL,
    records          BYTEA NOT NULL,
    written_at       TIMESTAMPTZ NOT NULL DEFAULT now()
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
