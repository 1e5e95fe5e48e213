ALTER TABLE case_records
    DROP CONSTRAINT case_records_record_kind_known,
    DROP CONSTRAINT case_records_location_role_known,
    DROP CONSTRAINT case_records_indicators_known,
    DROP CONSTRAINT case_records_age_band_known,
    DROP CONSTRAINT case_records_sex_known;
ALTER TABLE case_records
    ADD CONSTRAINT case_records_record_kind_check CHECK (record_kind IN ('incident', 'referral',
        'missing_episode', 'assessment', 'intelligence', 'health_attendance', 'education_concern')),
    ADD CONSTRAINT case_records_location_role_check
        CHECK (location_role IN ('home', 'incident', 'meeting', 'school', 'other')),
    ADD CONSTRAINT case_records_indicators_known CHECK (
        indicators <@ ARRAY['missing', 'substance_misuse', 'older_associate', 'gifts_money',
                            'online_contact', 'hotel_taxi', 'school_absence', 'sexual_health',
                            'self_harm', 'known_peer_exploited']::TEXT[]),
    ADD CONSTRAINT case_records_age_band_check
        CHECK (age_band IN ('0-9', '10-12', '13-15', '16-17', '18-25')),
    ADD CONSTRAINT case_records_sex_check CHECK (sex IN ('F', 'M', 'X', 'U'));
ALTER TABLE agencies DROP CONSTRAINT agencies_kind_known;
ALTER TABLE agencies ADD CONSTRAINT agencies_kind_check CHECK (kind IN ('police', 'social_care',
    'health', 'education', 'yot', 'probation', 'housing', 'youth_services', 'vcs'));
DROP FUNCTION atlas_known_sex(CHAR(1));
DROP FUNCTION atlas_known_age_band(TEXT);
DROP FUNCTION atlas_known_indicators(TEXT[]);
DROP FUNCTION atlas_known_location_role(TEXT);
DROP FUNCTION atlas_known_record_kind(TEXT);
DROP FUNCTION atlas_known_agency_kind(TEXT);
