-- Case records partitioned by partnership (docs/scale-out.md): sixteen hash partitions of
-- `partnership_code`, so every query about one partnership reads one partition, and the same
-- shape as distributing the table by partnership on Citus. Hash partitions need no DDL when a
-- partnership is imported. The records are copied with their ids; indexes and foreign keys are
-- made after the copy (faster than maintaining them row by row).
CREATE TABLE case_records_by_partnership (
    LIKE case_records INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY
) PARTITION BY HASH (partnership_code);

DO $$
BEGIN
    FOR remainder IN 0..15 LOOP
        EXECUTE format(
            'CREATE TABLE case_records_p%s PARTITION OF case_records_by_partnership
                 FOR VALUES WITH (MODULUS 16, REMAINDER %s)',
            lpad(remainder::text, 2, '0'), remainder);
    END LOOP;
END $$;

INSERT INTO case_records_by_partnership OVERRIDING SYSTEM VALUE SELECT * FROM case_records;
-- The ids continue where the old sequence stood (past ids used by refused or withdrawn
-- batches too), so no id is handed out twice.
SELECT setval(pg_get_serial_sequence('case_records_by_partnership', 'id'),
              greatest(s.last_value, (SELECT coalesce(max(id), 0) FROM case_records), 1), true)
FROM case_records_id_seq s;

DROP TABLE case_records;
ALTER TABLE case_records_by_partnership RENAME TO case_records;
ALTER SEQUENCE case_records_by_partnership_id_seq RENAME TO case_records_id_seq;

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

-- The background statistics never cover a partitioned table itself: give the planner its
-- figures now.
ANALYZE case_records;
