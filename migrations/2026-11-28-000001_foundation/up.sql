-- Safeguard Atlas foundation schema. See docs/data-model.md.
--
-- Reference tables (partnerships, local_authorities, agencies) are small and read everywhere:
-- in a Citus cluster they become reference tables replicated to every node. Every data table
-- carries `partnership_code` and has it first in its primary key, so it can be distributed by
-- that column without redesign.

CREATE TABLE partnerships (
    code        TEXT PRIMARY KEY CHECK (code ~ '^[A-Z][0-9]{8}$'),
    name        TEXT NOT NULL CHECK (length(trim(name)) > 0),
    -- Number of resolution-9 cells in partnership_cells, kept by the importer in the same
    -- transaction, so listings need not count a million rows.
    coverage_cells  INTEGER NOT NULL DEFAULT 0 CHECK (coverage_cells >= 0),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Upper-tier local authorities (children's services authorities). A partnership covers one or
-- more of them; the importer creates one partnership per authority with the same code.
CREATE TABLE local_authorities (
    code              TEXT PRIMARY KEY CHECK (code ~ '^[A-Z][0-9]{8}$'),
    name              TEXT NOT NULL CHECK (length(trim(name)) > 0),
    partnership_code  TEXT NOT NULL REFERENCES partnerships (code) ON DELETE RESTRICT,
    -- RFC 7946 geometry (Polygon or MultiPolygon, WGS84), as imported.
    boundary          JSONB NOT NULL CHECK (boundary ->> 'type' IN ('Polygon', 'MultiPolygon')),
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX local_authorities_partnership_idx ON local_authorities (partnership_code);

-- The H3 cells covering each partnership at resolutions 5 to 9. Resolution 9 holds the cells
-- whose centres lie inside the boundary (disjoint between partnerships); coarser resolutions hold
-- their parents, so a coarse cell on a border can belong to two partnerships.
CREATE TABLE partnership_cells (
    partnership_code  TEXT NOT NULL REFERENCES partnerships (code) ON DELETE CASCADE,
    resolution        SMALLINT NOT NULL CHECK (resolution BETWEEN 5 AND 9),
    cell              BIGINT NOT NULL,
    PRIMARY KEY (partnership_code, resolution, cell)
);
-- Assigning a record to a partnership looks a resolution-9 cell up.
CREATE INDEX partnership_cells_cell_idx ON partnership_cells (resolution, cell);

CREATE TABLE partnership_neighbours (
    partnership_code  TEXT NOT NULL REFERENCES partnerships (code) ON DELETE CASCADE,
    neighbour_code    TEXT NOT NULL REFERENCES partnerships (code) ON DELETE CASCADE,
    PRIMARY KEY (partnership_code, neighbour_code),
    CHECK (partnership_code <> neighbour_code)
);

CREATE TABLE agencies (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL CHECK (length(trim(name)) > 0),
    kind        TEXT NOT NULL CHECK (kind IN ('police', 'social_care', 'health', 'education',
                    'yot', 'probation', 'housing', 'youth_services', 'vcs')),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (name, kind)
);

-- The partnerships an agency serves (a police force or health trust often serves several).
CREATE TABLE agency_partnerships (
    partnership_code  TEXT NOT NULL REFERENCES partnerships (code) ON DELETE RESTRICT,
    agency_id         UUID NOT NULL REFERENCES agencies (id) ON DELETE CASCADE,
    PRIMARY KEY (partnership_code, agency_id)
);
CREATE INDEX agency_partnerships_agency_idx ON agency_partnerships (agency_id);

-- One uploaded extract. Its accepted rows and this row commit in one transaction.
CREATE TABLE batches (
    id               UUID PRIMARY KEY,
    agency_id        UUID NOT NULL REFERENCES agencies (id) ON DELETE RESTRICT,
    uploaded_by      TEXT NOT NULL,
    file_sha256      BYTEA NOT NULL CHECK (octet_length(file_sha256) = 32),
    status           TEXT NOT NULL CHECK (status IN ('committed', 'withdrawn', 'superseded')),
    superseded_by    UUID REFERENCES batches (id),
    rows_total       INTEGER NOT NULL CHECK (rows_total >= 0),
    rows_accepted    INTEGER NOT NULL CHECK (rows_accepted >= 0),
    rows_rejected    INTEGER NOT NULL CHECK (rows_rejected >= 0),
    quality          JSONB NOT NULL DEFAULT '{}'::jsonb,
    received_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    committed_at     TIMESTAMPTZ,
    withdrawn_at     TIMESTAMPTZ,
    CHECK (rows_accepted + rows_rejected = rows_total),
    -- The same file from the same agency is one batch.
    UNIQUE (agency_id, file_sha256)
);

-- Which partnerships a batch contributed rows to: the distributed face of `batches`.
CREATE TABLE batch_partnerships (
    partnership_code  TEXT NOT NULL REFERENCES partnerships (code) ON DELETE RESTRICT,
    batch_id          UUID NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    rows_accepted     INTEGER NOT NULL CHECK (rows_accepted >= 0),
    PRIMARY KEY (partnership_code, batch_id)
);

-- One pseudonymised event about one child. Never an identifier, never an exact location.
CREATE TABLE case_records (
    partnership_code  TEXT NOT NULL REFERENCES partnerships (code) ON DELETE RESTRICT,
    id                BIGINT GENERATED ALWAYS AS IDENTITY,
    batch_id          UUID NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    agency_id         UUID NOT NULL REFERENCES agencies (id) ON DELETE RESTRICT,
    -- HMAC-SHA256 of the agency-side pseudonym under the server's own key.
    subject           BYTEA NOT NULL CHECK (octet_length(subject) = 32),
    record_kind       TEXT NOT NULL CHECK (record_kind IN ('incident', 'referral', 'missing_episode',
                          'assessment', 'intelligence', 'health_attendance', 'education_concern')),
    occurred_on       DATE NOT NULL,
    -- H3 cell at resolution 9 (the finest stored), as its 64-bit index.
    cell              BIGINT NOT NULL,
    location_role     TEXT NOT NULL DEFAULT 'incident'
                          CHECK (location_role IN ('home', 'incident', 'meeting', 'school', 'other')),
    indicators        TEXT[] NOT NULL DEFAULT '{}',
    age_band          TEXT CHECK (age_band IN ('0-9', '10-12', '13-15', '16-17', '18-25')),
    sex               CHAR(1) CHECK (sex IN ('F', 'M', 'X', 'U')),
    PRIMARY KEY (partnership_code, id)
);
CREATE INDEX case_records_batch_idx ON case_records (batch_id);
CREATE INDEX case_records_partnership_date_idx ON case_records (partnership_code, occurred_on);

-- Agreements that let one partnership's viewers read another's disclosure-controlled summaries.
CREATE TABLE sharing_agreements (
    partnership_code    TEXT NOT NULL REFERENCES partnerships (code) ON DELETE RESTRICT,
    id                  UUID NOT NULL,
    -- `partnership_code` shares with `recipient_code`.
    recipient_code      TEXT NOT NULL REFERENCES partnerships (code) ON DELETE RESTRICT,
    scopes              TEXT[] NOT NULL CHECK (cardinality(scopes) > 0),
    valid_from          DATE NOT NULL,
    valid_to            DATE,
    revoked_at          TIMESTAMPTZ,
    created_by          TEXT NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (partnership_code, id),
    CHECK (partnership_code <> recipient_code),
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
);
CREATE INDEX sharing_agreements_recipient_idx ON sharing_agreements (recipient_code);

-- Children aged 0-17 per local authority and year (ONS mid-year estimates or an approximation).
CREATE TABLE child_populations (
    partnership_code      TEXT NOT NULL REFERENCES partnerships (code) ON DELETE RESTRICT,
    local_authority_code  TEXT NOT NULL REFERENCES local_authorities (code) ON DELETE RESTRICT,
    year                  SMALLINT NOT NULL CHECK (year BETWEEN 1990 AND 2100),
    population_0_17       INTEGER NOT NULL CHECK (population_0_17 >= 0),
    approximate           BOOLEAN NOT NULL DEFAULT false,
    source                TEXT NOT NULL,
    PRIMARY KEY (partnership_code, local_authority_code, year)
);

-- Append-only, hash-chained record of every access to case or reference data.
CREATE TABLE audit_log (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    request_id        TEXT,
    subject           TEXT NOT NULL,
    roles             TEXT[] NOT NULL DEFAULT '{}',
    -- The partnership whose data was touched; NULL for actions on national reference data.
    partnership_code  TEXT CHECK (partnership_code ~ '^[A-Z][0-9]{8}$'),
    agency_id         UUID,
    action            TEXT NOT NULL,
    resource          TEXT NOT NULL,
    parameters        JSONB NOT NULL DEFAULT '{}'::jsonb,
    outcome           TEXT NOT NULL CHECK (outcome IN ('allowed', 'denied', 'failed')),
    rows_returned     BIGINT CHECK (rows_returned >= 0),
    -- SHA-256 over the previous entry's hash and this entry's content.
    previous_hash     BYTEA NOT NULL CHECK (octet_length(previous_hash) = 32),
    hash              BYTEA NOT NULL UNIQUE CHECK (octet_length(hash) = 32)
);
CREATE INDEX audit_log_occurred_idx ON audit_log (occurred_at);
CREATE INDEX audit_log_partnership_idx ON audit_log (partnership_code, occurred_at);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
