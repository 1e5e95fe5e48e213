CREATE TABLE case_records_single (
    LIKE case_records INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY
);
INSERT INTO case_records_single OVERRIDING SYSTEM VALUE SELECT * FROM case_records;
SELECT setval(pg_get_serial_sequence('case_records_single', 'id'),
              greatest(s.last_value, (SELECT coalesce(max(id), 0) FROM case_records), 1), true)
FROM case_records_id_seq s;
DROP TABLE case_records;
ALTER TABLE case_records_single RENAME TO case_records;
ALTER SEQUENCE case_records_single_id_seq RENAME TO case_records_id_seq;
ALTER TABLE case_records ADD CONSTRAINT case_records_pkey PRIMARY KEY (partnership_code, id);
CREATE INDEX case_records_batch_idx ON case_records (batch_id);
CREATE INDEX case_records_partnership_date_idx ON case_records (partnership_code, occurred_on);
ALTER TABLE case_records
    ADD CONSTRAINT case_records_partnership_code_fkey FOREIGN KEY (partnership_code)
        REFERENCES partnerships (code) ON DELETE RESTRICT,
    ADD CONSTRAINT case_records_batch_id_fkey FOREIGN KEY (batch_id)
        REFERENCES batches (id) ON DELETE CASCADE,
    ADD CONSTRAINT case_records_agency_id_fkey FOREIGN KEY (agency_id)
        REFERENCES agencies (id) ON DELETE RESTRICT;
