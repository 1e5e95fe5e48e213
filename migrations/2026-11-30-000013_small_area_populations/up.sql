-- Children per small area (ONS LSOA or output area) at its reference point: the populations a
-- hotspot analysis expects counts from (docs/analytics.md, "Population-adjusted hotspots").
-- National reference data, like postcodes: a partnership's small areas are those whose cell
-- lies in its coverage.
CREATE TABLE small_area_populations (
    code             TEXT NOT NULL CHECK (code <> ''),
    year             SMALLINT NOT NULL CHECK (year BETWEEN 1990 AND 2100),
    cell             BIGINT NOT NULL,
    population_0_17  INTEGER NOT NULL CHECK (population_0_17 >= 0),
    approximate      BOOLEAN NOT NULL,
    source           TEXT NOT NULL,
    PRIMARY KEY (code, year)
);
CREATE INDEX small_area_populations_cell ON small_area_populations (cell);
