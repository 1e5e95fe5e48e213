-- The same file from the same agency is one batch only while that batch is committed: after a
-- withdrawal (or supersession) the agency may upload the file again.
ALTER TABLE batches DROP CONSTRAINT batches_agency_id_file_sha256_key;
CREATE UNIQUE INDEX batches_committed_file_idx ON batches (agency_id, file_sha256)
    WHERE status = 'committed';
