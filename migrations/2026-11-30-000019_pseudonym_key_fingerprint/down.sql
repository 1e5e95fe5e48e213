DROP TABLE pseudonym_key_fingerprint;
DROP FUNCTION pseudonym_key_fingerprint_guard();
