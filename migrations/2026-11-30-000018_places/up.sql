-- Place names (docs/web.md, "The hotspot map"): towns and villages with a point, a population
-- and the upper-tier local authority holding them, imported as reference data
-- (`atlas reference import --places`). They name hot spot areas, cells and release rows ("near
-- Burnley") and label the map. An import replaces the whole table; `source` is the attribution
-- every product naming a place shows (GeoNames asks for CC BY 4.0 attribution).
CREATE TABLE places (
    id              BIGSERIAL PRIMARY KEY,
    name            TEXT NOT NULL CHECK (length(trim(name)) BETWEEN 1 AND 200),
    lat             DOUBLE PRECISION NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon             DOUBLE PRECISION NOT NULL CHECK (lon BETWEEN -180 AND 180),
    population      BIGINT NOT NULL CHECK (population >= 0),
    authority_code  TEXT NOT NULL,
    source          TEXT NOT NULL CHECK (length(trim(source)) BETWEEN 1 AND 300)
);
CREATE INDEX places_authority_idx ON places (authority_code);
