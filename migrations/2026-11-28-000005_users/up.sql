-- People registered with Atlas by its administrators: which partnership (and agency) a token's
-- subject belongs to and which roles it may use here. A registration constrains the claims of
-- that subject's tokens (docs/access.md); with auth.require_registration every caller needs one.
CREATE TABLE users (
    subject           TEXT PRIMARY KEY CHECK (length(subject) BETWEEN 1 AND 256),
    partnership_code  TEXT NOT NULL REFERENCES partnerships (code) ON DELETE RESTRICT,
    agency_id         UUID REFERENCES agencies (id) ON DELETE RESTRICT,
    roles             TEXT[] NOT NULL CHECK (cardinality(roles) > 0),
    disabled_at       TIMESTAMPTZ,
    updated_by        TEXT NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX users_partnership_idx ON users (partnership_code);
