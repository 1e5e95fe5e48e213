DROP TABLE postcodes;
