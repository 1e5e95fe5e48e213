-- case_records' three foreign keys were checked for every row: 8 of the 12.7 s that a million
-- rows took to load (docs/performance.md, "Ingest beside COPY"). Records are only ever written
-- by an upload, in the transaction of their batch (crates/store/src/batches.rs), and that
-- transaction now checks what the keys did once per batch: the batch row carries the records'
-- agency (a foreign key of batches), and each partnership the records were placed in gets one
-- batch_partnerships row (a foreign key to partnerships) after a check that the agency serves
-- it. What the batch key's ON DELETE guarded is kept by a trigger: a batch that still has
-- records cannot be deleted (batches are withdrawn, never deleted); partnerships and agencies
-- with batches were already kept by batch_partnerships' and batches' own keys.
ALTER TABLE case_records
    DROP CONSTRAINT case_records_partnership_code_fkey,
    DROP CONSTRAINT case_records_batch_id_fkey,
    DROP CONSTRAINT case_records_agency_id_fkey;

CREATE FUNCTION atlas_keep_batches_with_records() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM case_records WHERE batch_id = OLD.id) THEN
        RAISE EXCEPTION 'batch % still has case records: withdraw it instead of deleting it', OLD.id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN OLD;
END
$$;

CREATE TRIGGER batches_keep_records
    BEFORE DELETE ON batches
    FOR EACH ROW EXECUTE FUNCTION atlas_keep_batches_with_records();
