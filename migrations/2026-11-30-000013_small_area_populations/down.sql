DROP TABLE small_area_populations;
