DROP INDEX postcodes_district_idx;
