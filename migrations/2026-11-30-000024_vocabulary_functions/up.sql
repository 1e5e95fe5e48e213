-- Vocabulary checks call one function per vocabulary (docs/data-model.md, "Changing a
-- vocabulary"): adding a name is `CREATE OR REPLACE FUNCTION` with the longer list, which
-- PostgreSQL applies to rows written from then on without scanning or locking the tables. Every
-- stored row already passed the list checks these replace, so the new checks are added
-- NOT VALID: nothing is scanned now either.
CREATE FUNCTION atlas_known_agency_kind(kind TEXT) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT kind = ANY (ARRAY['police', 'social_care', 'health', 'education', 'yot',
                                   'probation', 'housing', 'youth_services', 'vcs']) $$;
CREATE FUNCTION atlas_known_record_kind(kind TEXT) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT kind = ANY (ARRAY['incident', 'referral', 'missing_episode', 'assessment',
                                   'intelligence', 'health_attendance', 'education_concern']) $$;
CREATE FUNCTION atlas_known_location_role(role TEXT) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT role = ANY (ARRAY['home', 'incident', 'meeting', 'school', 'other']) $$;
CREATE FUNCTION atlas_known_indicators(indicators TEXT[]) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT indicators <@ ARRAY['missing', 'substance_misuse', 'older_associate',
                                     'gifts_money', 'online_contact', 'hotel_taxi',
                                     'school_absence', 'sexual_health', 'self_harm',
                                     'known_peer_exploited'] $$;
CREATE FUNCTION atlas_known_age_band(band TEXT) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT band = ANY (ARRAY['0-9', '10-12', '13-15', '16-17', '18-25']) $$;
CREATE FUNCTION atlas_known_sex(sex CHAR(1)) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT sex = ANY (ARRAY['F', 'M', 'X', 'U']::CHAR(1)[]) $$;

ALTER TABLE agencies DROP CONSTRAINT agencies_kind_check;
ALTER TABLE agencies ADD CONSTRAINT agencies_kind_known
    CHECK (atlas_known_agency_kind(kind)) NOT VALID;

ALTER TABLE case_records DROP CONSTRAINT case_records_record_kind_check;
ALTER TABLE case_records DROP CONSTRAINT case_records_location_role_check;
ALTER TABLE case_records DROP CONSTRAINT case_records_indicators_known;
ALTER TABLE case_records DROP CONSTRAINT case_records_age_band_check;
ALTER TABLE case_records DROP CONSTRAINT case_records_sex_check;
ALTER TABLE case_records
    ADD CONSTRAINT case_records_record_kind_known
        CHECK (atlas_known_record_kind(record_kind)) NOT VALID,
    ADD CONSTRAINT case_records_location_role_known
        CHECK (atlas_known_location_role(location_role)) NOT VALID,
    ADD CONSTRAINT case_records_indicators_known
        CHECK (atlas_known_indicators(indicators)) NOT VALID,
    ADD CONSTRAINT case_records_age_band_known
        CHECK (atlas_known_age_band(age_band)) NOT VALID,
    ADD CONSTRAINT case_records_sex_known
        CHECK (atlas_known_sex(sex)) NOT VALID;
