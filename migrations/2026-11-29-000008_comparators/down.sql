DROP TABLE partnership_comparators;
