-- One counter raised by every statement that changes the tables a study area's child
-- populations are worked out from (small_area_populations, postcodes), in the same transaction,
-- so that the populations the analyses keep in memory know when they are stale. A statement
-- trigger fires for COPY and TRUNCATE too.
CREATE TABLE population_sources_version (
    only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    version BIGINT NOT NULL
);
INSERT INTO population_sources_version (only_row, version) VALUES (TRUE, 0);

CREATE FUNCTION raise_population_sources_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE population_sources_version SET version = version + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER small_area_populations_raise_version
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON small_area_populations
    FOR EACH STATEMENT EXECUTE FUNCTION raise_population_sources_version();
CREATE TRIGGER postcodes_raise_version
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON postcodes
    FOR EACH STATEMENT EXECUTE FUNCTION raise_population_sources_version();
