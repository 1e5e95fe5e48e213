-- The ONS Postcode Directory reduced to what ingest needs: each postcode (upper case, no
-- spaces) and the resolution-9 H3 cell of its grid reference. National reference data, so no
-- partnership code (a Citus reference table).
CREATE TABLE postcodes (
    postcode  TEXT PRIMARY KEY CHECK (postcode ~ '^[A-Z0-9]{5,7}$'),
    cell      BIGINT NOT NULL
);
CREATE INDEX postcodes_cell_idx ON postcodes (cell);
