DROP TRIGGER batches_keep_records ON batches;
DROP FUNCTION atlas_keep_batches_with_records();
ALTER TABLE case_records
    ADD CONSTRAINT case_records_partnership_code_fkey FOREIGN KEY (partnership_code)
        REFERENCES partnerships (code) ON DELETE RESTRICT,
    ADD CONSTRAINT case_records_batch_id_fkey FOREIGN KEY (batch_id)
        REFERENCES batches (id) ON DELETE CASCADE,
    ADD CONSTRAINT case_records_agency_id_fkey FOREIGN KEY (agency_id)
        REFERENCES agencies (id) ON DELETE RESTRICT;
