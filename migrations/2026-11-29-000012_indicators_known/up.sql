-- A record's indicators are names of the vocabulary (atlas_domain::Indicator), as every other
-- vocabulary column is checked; the store's tests compare this list with the domain's.
ALTER TABLE case_records ADD CONSTRAINT case_records_indicators_known CHECK (
    indicators <@ ARRAY['missing', 'substance_misuse', 'older_associate', 'gifts_money',
                        'online_contact', 'hotel_taxi', 'school_absence', 'sexual_health',
                        'self_harm', 'known_peer_exploited']::TEXT[]
);
