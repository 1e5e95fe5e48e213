DROP TRIGGER postcodes_raise_version ON postcodes;
DROP TRIGGER small_area_populations_raise_version ON small_area_populations;
DROP FUNCTION raise_population_sources_version();
DROP TABLE population_sources_version;
