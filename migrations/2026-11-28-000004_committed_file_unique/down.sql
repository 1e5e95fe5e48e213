DROP INDEX batches_committed_file_idx;
ALTER TABLE batches ADD CONSTRAINT batches_agency_id_file_sha256_key UNIQUE (agency_id, file_sha256);
