-- The fingerprint of the server pseudonym key this database's records were pseudonymised with
-- (docs/privacy.md, "The server pseudonym key"): recorded by the first server process that
-- meets the database, so that a process configured with another key refuses to serve rather
-- than store other pseudonyms for the same children (which would double every distinct count).
-- The fingerprint is an HMAC of a fixed text under the key: it does not reveal the key.
CREATE TABLE pseudonym_key_fingerprint (
    only_row     BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    fingerprint  TEXT NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{32}$'),
    recorded_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE FUNCTION pseudonym_key_fingerprint_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the pseudonym key fingerprint is never changed: records keyed with another key cannot be matched';
END;
$$;
CREATE TRIGGER pseudonym_key_fingerprint_guard BEFORE UPDATE ON pseudonym_key_fingerprint
    FOR EACH ROW EXECUTE FUNCTION pseudonym_key_fingerprint_guard();
