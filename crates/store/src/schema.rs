//! Diesel's view of the tables created by `migrations/` (see docs/data-model.md).
// The table! macro generates items without doc comments.
#![expect(missing_docs)]

diesel::table! {
    partnerships (code) {
        code -> Text,
        name -> Text,
        coverage_cells -> Int4,
        data_version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        coverage_tiling -> Int2,
        coverage_version -> Int8,
    }
}

diesel::table! {
    local_authorities (code) {
        code -> Text,
        name -> Text,
        partnership_code -> Text,
        boundary -> Jsonb,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    partnership_cells (partnership_code, resolution, cell) {
        partnership_code -> Text,
        resolution -> Int2,
        cell -> Int8,
        whole -> Bool,
    }
}

diesel::table! {
    partnership_neighbours (partnership_code, neighbour_code) {
        partnership_code -> Text,
        neighbour_code -> Text,
    }
}

diesel::table! {
    agencies (id) {
        id -> Uuid,
        name -> Text,
        kind -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    agency_partnerships (partnership_code, agency_id) {
        partnership_code -> Text,
        agency_id -> Uuid,
    }
}

diesel::table! {
    batches (id) {
        id -> Uuid,
        agency_id -> Uuid,
        uploaded_by -> Text,
        file_sha256 -> Binary,
        status -> Text,
        superseded_by -> Nullable<Uuid>,
        rows_total -> Int4,
        rows_accepted -> Int4,
        rows_rejected -> Int4,
        quality -> Jsonb,
        received_at -> Timestamptz,
        committed_at -> Nullable<Timestamptz>,
        withdrawn_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    batch_partnerships (partnership_code, batch_id) {
        partnership_code -> Text,
        batch_id -> Uuid,
        rows_accepted -> Int4,
    }
}

diesel::table! {
    batch_rejections (batch_id, ordinal) {
        batch_id -> Uuid,
        row_number -> Int8,
        field -> Text,
        reason -> Text,
        ordinal -> Int4,
    }
}

diesel::table! {
    case_records (partnership_code, id) {
        partnership_code -> Text,
        id -> Int8,
        batch_id -> Uuid,
        agency_id -> Uuid,
        subject -> Binary,
        record_kind -> Text,
        occurred_on -> Date,
        cell -> Int8,
        location_role -> Text,
        indicators -> Array<Text>,
        age_band -> Nullable<Text>,
        sex -> Nullable<Bpchar>,
        record_key -> Int2,
    }
}

diesel::table! {
    published_summaries (partnership_code, period, version) {
        partnership_code -> Text,
        period -> Text,
        version -> Int2,
        figures -> Jsonb,
        frozen_at -> Timestamptz,
    }
}

diesel::table! {
    postcodes (postcode) {
        postcode -> Text,
        cell -> Int8,
        authority_code -> Nullable<Text>,
    }
}

diesel::table! {
    sharing_agreements (partnership_code, id) {
        partnership_code -> Text,
        id -> Uuid,
        recipient_code -> Text,
        scopes -> Array<Text>,
        valid_from -> Date,
        valid_to -> Nullable<Date>,
        revoked_at -> Nullable<Timestamptz>,
        created_by -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    child_populations (partnership_code, local_authority_code, year) {
        partnership_code -> Text,
        local_authority_code -> Text,
        year -> Int2,
        population_0_17 -> Int4,
        approximate -> Bool,
        source -> Text,
    }
}

diesel::table! {
    small_area_populations (code, year) {
        code -> Text,
        year -> Int2,
        cell -> Int8,
        population_0_17 -> Int4,
        approximate -> Bool,
        source -> Text,
    }
}

diesel::table! {
    population_sources_version (only_row) {
        only_row -> Bool,
        version -> Int8,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Int8,
        occurred_at -> Timestamptz,
        request_id -> Nullable<Text>,
        subject -> Text,
        roles -> Array<Text>,
        partnership_code -> Nullable<Text>,
        agency_id -> Nullable<Uuid>,
        action -> Text,
        resource -> Text,
        parameters -> Jsonb,
        outcome -> Text,
        rows_returned -> Nullable<Int8>,
        previous_hash -> Binary,
        hash -> Binary,
        records_of -> Array<Text>,
        caller_partnership -> Nullable<Text>,
        chain -> Text,
        key_id -> Nullable<Text>,
    }
}

diesel::table! {
    audit_legacy_end (only_row) {
        only_row -> Bool,
        last_id -> Nullable<Int8>,
    }
}

diesel::joinable!(local_authorities -> partnerships (partnership_code));
diesel::joinable!(partnership_cells -> partnerships (partnership_code));
diesel::joinable!(agency_partnerships -> agencies (agency_id));
diesel::joinable!(agency_partnerships -> partnerships (partnership_code));
diesel::joinable!(batches -> agencies (agency_id));
diesel::joinable!(case_records -> batches (batch_id));
diesel::joinable!(case_records -> agencies (agency_id));

diesel::table! {
    users (subject) {
        subject -> Text,
        partnership_code -> Text,
        agency_id -> Nullable<Uuid>,
        roles -> Array<Text>,
        disabled_at -> Nullable<Timestamptz>,
        updated_by -> Text,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    releases (id) {
        id -> Uuid,
        partnership_code -> Text,
        version -> Int4,
        period -> Text,
        resolution -> Int2,
        threshold -> Int4,
        rounding -> Int4,
        content -> Jsonb,
        suppressed_primary -> Int4,
        suppressed_secondary -> Int4,
        prepared_by -> Text,
        prepared_at -> Timestamptz,
        approved_by -> Nullable<Text>,
        approved_at -> Nullable<Timestamptz>,
        withdrawn_by -> Nullable<Text>,
        withdrawn_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    summary_requests (id) {
        id -> Uuid,
        requester_code -> Text,
        owner_code -> Text,
        periods -> Array<Text>,
        breakdowns -> Array<Text>,
        purpose -> Text,
        needed_by -> Date,
        requested_by -> Text,
        requested_at -> Timestamptz,
        state -> Text,
        decided_by -> Nullable<Text>,
        decided_at -> Nullable<Timestamptz>,
        decline_reason -> Nullable<Text>,
        messages -> Jsonb,
        regional_request_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    places (id) {
        id -> Int8,
        name -> Text,
        lat -> Float8,
        lon -> Float8,
        population -> Int8,
        authority_code -> Text,
        source -> Text,
    }
}

diesel::table! {
    pseudonym_key_fingerprint (only_row) {
        only_row -> Bool,
        fingerprint -> Text,
        recorded_at -> Timestamptz,
    }
}

diesel::table! {
    rate_limits (subject) {
        subject -> Text,
        theoretical_arrival -> Timestamptz,
    }
}

diesel::table! {
    record_snapshots (partnership_code) {
        partnership_code -> Text,
        data_version -> Int8,
        layout -> Int8,
        agencies -> Array<Uuid>,
        records -> Binary,
        written_at -> Timestamptz,
    }
}

diesel::table! {
    regional_groups (name, partnership_code) {
        name -> Text,
        partnership_code -> Text,
    }
}

diesel::table! {
    regional_requests (id) {
        id -> Uuid,
        requester_code -> Text,
        group_name -> Text,
        members -> Array<Text>,
        requested_by -> Text,
        requested_at -> Timestamptz,
    }
}

diesel::table! {
    self_assessments (partnership_code, version) {
        partnership_code -> Text,
        version -> Int4,
        assessed_on -> Date,
        recorded_by -> Text,
        recorded_at -> Timestamptz,
        answers -> Jsonb,
        atlas_evidence -> Jsonb,
    }
}

diesel::table! {
    profiles (partnership_code, period, version) {
        partnership_code -> Text,
        period -> Text,
        version -> Int4,
        data_version -> Int8,
        generated_by -> Text,
        scheduled -> Bool,
        generated_at -> Timestamptz,
        content -> Jsonb,
        board_content -> Jsonb,
    }
}

diesel::table! {
    partnership_comparators (partnership_code, comparator_code) {
        partnership_code -> Text,
        comparator_code -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    partnerships,
    local_authorities,
    partnership_cells,
    partnership_neighbours,
    agencies,
    agency_partnerships,
    batches,
    batch_partnerships,
    batch_rejections,
    case_records,
    postcodes,
    sharing_agreements,
    child_populations,
    small_area_populations,
    audit_log,
    users,
    releases,
    published_summaries,
    partnership_comparators,
    profiles,
    self_assessments,
    summary_requests,
    places,
    pseudonym_key_fingerprint,
    rate_limits,
    regional_groups,
    regional_requests,
);
