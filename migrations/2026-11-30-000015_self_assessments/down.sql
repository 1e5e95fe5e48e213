DROP TABLE self_assessments;
DROP FUNCTION self_assessments_guard();
