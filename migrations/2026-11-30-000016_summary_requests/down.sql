DROP TABLE summary_requests;
DROP FUNCTION summary_requests_guard();
