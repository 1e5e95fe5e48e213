DROP TABLE profiles;
DROP FUNCTION profiles_guard();
