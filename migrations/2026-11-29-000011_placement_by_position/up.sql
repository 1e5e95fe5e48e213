-- Placement by position (issue #14). A partnership's resolution-9 coverage now holds every cell
-- its boundary touches, so a cell on a border can belong to two partnerships; records are
-- placed by their own position, not by their cell. `whole` marks the cells lying wholly inside
-- the boundary, where no geometry is needed to place a record.
ALTER TABLE partnership_cells ADD COLUMN whole BOOLEAN NOT NULL DEFAULT false;

-- Which tiling made a partnership's coverage: 1, cells whose centres lie inside (before this
-- migration); 2, every cell touched, wholly-inside cells marked. Migrating re-tiles every
-- partnership below the current tiling from its stored boundary (atlas_store::reference).
ALTER TABLE partnerships ADD COLUMN coverage_tiling SMALLINT NOT NULL DEFAULT 1
    CHECK (coverage_tiling > 0);

-- The postcode's upper-tier local authority from the ONS Postcode Directory, which decides its
-- partnership whichever side of a generalised boundary its grid reference falls. Null when the
-- imported directory had no `utla` column; such postcodes are placed by their cell's centre.
ALTER TABLE postcodes ADD COLUMN authority_code TEXT CHECK (authority_code ~ '^[A-Z][0-9]{8}$');
CREATE INDEX postcodes_authority_idx ON postcodes (authority_code);
