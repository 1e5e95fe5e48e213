-- Uploads read the postcodes of one postcode district at a time (the normalised postcode
-- without its last three characters, `FY1` for `FY11AA`) rather than every postcode an agency
-- serves (atlas_store::batches::AreaReader).
CREATE INDEX postcodes_district_idx ON postcodes (left(postcode, -3));
