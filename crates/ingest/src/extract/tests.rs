//! Tests of the canonical extract reader: every kind of bad input docs/extract-format.md names,
//! and real British National Grid references from the ONS Postcode Directory.

#![expect(
    clippy::string_slice,
    reason = "tests slice text they built themselves"
)]

use std::collections::HashMap;

use super::*;
use h3o::Resolution;

const PSEUDONYM: &str = "9b2c0f6a4d0e1e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f";

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 28).unwrap()
}

fn postcodes() -> HashMap<String, PostcodePlace> {
    let cell = LatLng::new(53.8175, -3.0357)
        .unwrap()
        .to_cell(Resolution::Nine);
    HashMap::from([(
        "FY11AA".to_owned(),
        PostcodePlace {
            cell,
            area: Some(0),
        },
    )])
}

/// The resolution-9 cell a record's location stands for.
fn cell_of(record: &CanonicalRecord) -> CellIndex {
    match record.location {
        Location::Point(point) => point.to_cell(Resolution::Nine),
        Location::Postcode(place) => place.cell,
    }
}

fn read(format: ExtractFormat, text: &[u8]) -> Result<Vec<RowOutcome>, ExtractError> {
    let lookup = postcodes();
    let rules = Rules {
        today: today(),
        postcodes: &lookup,
        kept_from: &[],
    };
    ExtractReader::new(text, format, rules)?.collect()
}

fn csv(text: &str) -> Result<Vec<RowOutcome>, ExtractError> {
    read(ExtractFormat::Csv, text.as_bytes())
}

/// A one-row CSV with the header `subject,record_kind,occurred_on,lat,lon,<extra>`.
fn one_row(extra_header: &str, row: &str) -> RowOutcome {
    let header = format!("subject,record_kind,occurred_on{extra_header}");
    csv(&format!("{header}\n{row}\n")).unwrap().remove(0)
}

fn accepted(outcome: RowOutcome) -> CanonicalRecord {
    match outcome {
        RowOutcome::Accepted(record) => record,
        RowOutcome::Rejected(rejections) => panic!("rejected: {rejections:?}"),
    }
}

fn rejected(outcome: RowOutcome) -> Vec<(&'static str, String)> {
    match outcome {
        RowOutcome::Accepted(record) => panic!("accepted: {record:?}"),
        RowOutcome::Rejected(rejections) => rejections
            .into_iter()
            .map(|r| (r.field, r.reason))
            .collect(),
    }
}

fn good_row(location: &str) -> String {
    format!("{PSEUDONYM},incident,2024-03-05,{location}")
}

#[test]
fn a_full_row_is_accepted_with_every_field() {
    let text = format!(
        "subject,record_kind,occurred_on,lat,lon,location_role,indicators,age,age_band,sex\n\
         {PSEUDONYM},missing_episode,2024-03-05,53.8175,-3.0357,meeting,gifts_money; missing;missing,15,13-15,F\n"
    );
    let record = accepted(csv(&text).unwrap().remove(0));
    assert_eq!(record.row, 2);
    assert_eq!(hex::encode(record.subject), PSEUDONYM);
    assert_eq!(record.record_kind, RecordKind::MissingEpisode);
    assert_eq!(
        record.occurred_on,
        NaiveDate::from_ymd_opt(2024, 3, 5).unwrap()
    );
    assert_eq!(
        cell_of(&record),
        LatLng::new(53.8175, -3.0357)
            .unwrap()
            .to_cell(Resolution::Nine)
    );
    assert_eq!(record.location_role, LocationRole::Meeting);
    assert_eq!(
        record.indicators,
        vec![Indicator::Missing, Indicator::GiftsMoney]
    );
    assert_eq!(record.age_band, Some(AgeBand::ThirteenToFifteen));
    assert_eq!(record.sex, Some(Sex::Female));
}

#[test]
fn optional_fields_have_defaults() {
    let record = accepted(one_row(",lat,lon", &good_row("53.8175,-3.0357")));
    assert_eq!(record.location_role, LocationRole::Incident);
    assert!(record.indicators.is_empty());
    assert_eq!((record.age_band, record.sex), (None, None));
}

#[test]
fn headers_are_case_insensitive_in_any_order_and_a_bom_is_tolerated() {
    let text = format!(
        "\u{feff}LON, Lat ,Occurred_On,RECORD_KIND,Subject\n-3.0357,53.8175,2024-03-05,Referral,{PSEUDONYM}\n"
    );
    let record = accepted(csv(&text).unwrap().remove(0));
    assert_eq!(record.record_kind, RecordKind::Referral);
}

#[test]
fn every_location_kind_becomes_a_resolution_9_cell() {
    let by_lat_lon = cell_of(&accepted(one_row(",lat,lon", &good_row("53.8175,-3.0357"))));
    // The same point in British National Grid metres (Blackpool town centre, from PROJ).
    let by_grid = cell_of(&accepted(one_row(
        ",easting,northing",
        &good_row("331910.4,436188.9"),
    )));
    assert_eq!(by_grid, by_lat_lon);
    let by_postcode = accepted(one_row(",postcode", &good_row("fy1 1aa")));
    assert_eq!(cell_of(&by_postcode), by_lat_lon);
    assert!(matches!(
        by_postcode.location,
        Location::Postcode(PostcodePlace { area: Some(0), .. })
    ));
    let fine = LatLng::new(53.8175, -3.0357)
        .unwrap()
        .to_cell(Resolution::Twelve);
    let by_h3 = accepted(one_row(",h3", &good_row(&fine.to_string())));
    assert_eq!(by_h3.location, Location::Point(LatLng::from(fine)));
    assert_eq!(cell_of(&by_h3), by_lat_lon);
}

#[test]
fn bad_rows_are_rejected_with_field_and_reason() {
    let cases: &[(&str, String, &str, &str)] = &[
        (
            ",lat,lon,postcode",
            good_row("53.8,-3.0,FY1 1AA"),
            "lat",
            "two kinds of location",
        ),
        (
            ",lat,lon",
            format!("{PSEUDONYM},incident,2024-02-30,53.8,-3.0"),
            "occurred_on",
            "not a real date",
        ),
        (
            ",lat,lon",
            format!("{PSEUDONYM},incident,05/03/2024,53.8,-3.0"),
            "occurred_on",
            "YYYY-MM-DD",
        ),
        (
            ",lat,lon",
            format!("{PSEUDONYM},incident,2026-11-29,53.8,-3.0"),
            "occurred_on",
            "in the future",
        ),
        (
            ",lat,lon",
            format!("{PSEUDONYM},incident,1989-12-31,53.8,-3.0"),
            "occurred_on",
            "before 1990-01-01",
        ),
        (
            ",lat,lon",
            good_row("48.85,2.35"),
            "lat",
            "outside Great Britain",
        ),
        (",lat,lon", good_row("53.8,"), "lon", "missing"),
        (
            ",lat,lon",
            good_row("north,-3.0"),
            "lat",
            "expected a number",
        ),
        (
            ",easting,northing",
            good_row("900000,100000"),
            "easting",
            "outside the British National Grid",
        ),
        (",h3", good_row("not-a-cell"), "h3", "not an H3 cell index"),
        (
            ",h3",
            good_row("871f1d489ffffff"),
            "h3",
            "resolution 7 is coarser than 9",
        ),
        (
            ",postcode",
            good_row("ZZ9 9ZZ"),
            "postcode",
            "not in the imported postcode directory",
        ),
        (
            ",lat,lon",
            format!("{PSEUDONYM},burglary,2024-03-05,53.8,-3.0"),
            "record_kind",
            "not a known record kind",
        ),
        (
            ",lat,lon,indicators",
            good_row("53.8,-3.0,missing;knife"),
            "indicators",
            "not a known indicator",
        ),
        (
            ",lat,lon,age",
            good_row("53.8,-3.0,26"),
            "age",
            "from 0 to 25",
        ),
        (
            ",lat,lon,age,age_band",
            good_row("53.8,-3.0,11,16-17"),
            "age_band",
            "does not match the age",
        ),
        (
            ",lat,lon,sex",
            good_row("53.8,-3.0,female"),
            "sex",
            "not a known sex",
        ),
        (
            ",lat,lon",
            format!("{},incident,2024-03-05,53.8,-3.0", &PSEUDONYM[1..]),
            "subject",
            "64 hexadecimal characters, this has 63",
        ),
        (
            ",lat,lon",
            format!("{}g,incident,2024-03-05,53.8,-3.0", &PSEUDONYM[1..]),
            "subject",
            "(0-9, a-f)",
        ),
        (
            ",lat,lon",
            ",incident,2024-03-05,53.8,-3.0".to_owned(),
            "subject",
            "missing",
        ),
        (
            ",lat,lon",
            good_row("53.8,-3.0,extra"),
            "row",
            "expected 5 fields, found 6",
        ),
        (
            ",lat,lon",
            format!("{PSEUDONYM},incident,2024-03-05"),
            "row",
            "expected 5 fields, found 3",
        ),
        (",postcode", good_row(""), "lat", "no location"),
    ];
    for (extra, row, field, reason) in cases {
        let problems = rejected(one_row(extra, row));
        assert!(
            problems
                .iter()
                .any(|(f, r)| f == field && r.contains(reason)),
            "{row}: wanted {field}: {reason}, got {problems:?}"
        );
    }
}

#[test]
fn a_row_with_several_problems_reports_each() {
    let problems = rejected(one_row(",lat,lon,sex", "abc,fight,2024-13-01,53.8,-3.0,Q"));
    let fields: Vec<&str> = problems.iter().map(|(field, _)| *field).collect();
    assert_eq!(fields, ["subject", "record_kind", "occurred_on", "sex"]);
}

#[test]
fn structurally_bad_extracts_are_refused_whole() {
    assert_eq!(csv("").unwrap_err(), ExtractError::Empty);
    assert_eq!(
        csv("subject,record_kind,occurred_on,lat,lon\n").unwrap_err(),
        ExtractError::NoRows
    );
    assert_eq!(
        csv("subject,occurred_on,lat,lon\nx,2024-01-01,1,1\n").unwrap_err(),
        ExtractError::MissingColumns(vec!["record_kind"])
    );
    assert_eq!(
        csv("subject,record_kind,occurred_on\nx,y,z\n").unwrap_err(),
        ExtractError::NoLocationColumns
    );
    assert_eq!(
        csv("subject,record_kind,occurred_on,lat,LAT\nx,y,z,1,1\n").unwrap_err(),
        ExtractError::DuplicateColumn("LAT".to_owned())
    );
    let unknown =
        csv("subject,record_kind,occurred_on,lat,lon,colour\nx,y,z,1,1,red\n").unwrap_err();
    assert_eq!(unknown, ExtractError::UnknownColumns(vec![6]));
    let mut bytes = format!(
        "subject,record_kind,occurred_on,lat,lon\n{}\n",
        good_row("53.8,-3.0")
    )
    .into_bytes();
    bytes.extend_from_slice(b"x,incident,2024-03-05,53.8,-3.0 \xff\n");
    assert_eq!(
        read(ExtractFormat::Csv, &bytes).unwrap_err(),
        ExtractError::NotUtf8 { row: 3 }
    );
}

#[test]
fn rejection_reasons_and_refusals_never_repeat_a_value_from_the_file() {
    // A misplaced free-text value in a coded field is rejected without being quoted.
    let problems = rejected(one_row(
        ",lat,lon,indicators",
        &good_row("53.8,-3.0,Seen with Jamie Reid"),
    ));
    assert_eq!(problems, vec![("indicators", "not a known indicator: expected one of missing, substance_misuse, older_associate, gifts_money, online_contact, hotel_taxi, school_absence, sexual_health, self_harm, known_peer_exploited".to_owned())]);
    let problems = rejected(one_row(
        ",lat,lon",
        &format!("{PSEUDONYM},{PSEUDONYM},2024-03-05,53.8,-3.0"),
    ));
    assert!(
        problems
            .iter()
            .all(|(_, reason)| !reason.contains(&PSEUDONYM[..8])),
        "{problems:?}"
    );
    // A raw export without a header row: its first row is read as the header.
    let headerless = csv("Jane,Smith,2010-03-05,incident\nx,y,z,w\n")
        .unwrap_err()
        .to_string();
    assert!(
        headerless.starts_with("unknown column(s) at position(s) 1, 2, 3, 4 of the header"),
        "{headerless}"
    );
    assert!(!headerless.contains("Jane") && !headerless.contains("Smith"));
    let email_header = csv("subject,ana@example.org\nx,y\n").unwrap_err();
    assert_eq!(
        email_header,
        ExtractError::IdentifierValue {
            row: 1,
            column: "header",
            kind: IdentifierKind::Email
        }
    );
}

#[test]
fn identifiers_in_rows_of_the_wrong_shape_still_refuse_the_extract() {
    let text = format!(
        "subject,record_kind,occurred_on,lat,lon\n{}\nana@example.org,incident\n",
        good_row("53.8,-3.0")
    );
    assert!(matches!(
        csv(&text).unwrap_err(),
        ExtractError::IdentifierValue {
            row: 3,
            kind: IdentifierKind::Email,
            ..
        }
    ));
    let line =
        format!("{{\"subject\":\"{PSEUDONYM}\",\"record_kind\":\"01253 477477\",\"sex\":true}}\n");
    assert!(matches!(
        read(ExtractFormat::Ndjson, line.as_bytes()).unwrap_err(),
        ExtractError::IdentifierValue {
            kind: IdentifierKind::Phone,
            ..
        }
    ));
}

#[test]
fn an_unclosed_quote_refuses_the_extract_instead_of_swallowing_rows() {
    let mut text = String::from("subject,record_kind,occurred_on,lat,lon\n");
    text.push_str(&format!("{},incident,2024-03-05,53.8,\"-3.0\n", PSEUDONYM));
    for _ in 0..50 {
        text.push_str(&format!("{}\n", good_row("53.8,-3.0")));
    }
    assert_eq!(
        csv(&text).unwrap_err(),
        ExtractError::MultilineField { row: 2 }
    );
}

#[test]
fn ndjson_lines_missing_fields_are_rejected_rows_not_a_refused_file() {
    let text = format!(
        "{{\"subject\":\"{PSEUDONYM}\",\"record_kind\":\"incident\",\"occurred_on\":\"2024-03-05\",\"lat\":53.8,\"lon\":-3.0}}\n\
         {{\"subject\":\"{PSEUDONYM}\",\"record_kind\":\"incident\"}}\n"
    );
    let outcomes = read(ExtractFormat::Ndjson, text.as_bytes()).unwrap();
    assert!(matches!(outcomes[0], RowOutcome::Accepted(_)));
    let fields: Vec<&str> = rejected(outcomes[1].clone())
        .into_iter()
        .map(|(field, _)| field)
        .collect();
    assert_eq!(fields, ["occurred_on", "lat"]);
}

#[test]
fn extracts_carrying_identifiers_are_refused_without_echoing_them() {
    let by_name = csv(&format!(
        "subject,record_kind,occurred_on,lat,lon,Surname\n{},Smith\n",
        good_row("53.8,-3.0")
    ))
    .unwrap_err();
    assert_eq!(
        by_name.to_string(),
        "column `Surname` looks like it holds a name: remove direct identifiers before uploading (atlas pseudonymise does); nothing was stored"
    );
    let nhs = csv(&format!(
        "subject,record_kind,occurred_on,postcode\n{PSEUDONYM},incident,2024-03-05,943 476 5919\n"
    ))
    .unwrap_err();
    assert_eq!(
        nhs,
        ExtractError::IdentifierValue {
            row: 2,
            column: "postcode",
            kind: IdentifierKind::NhsNumber
        }
    );
    assert!(!nhs.to_string().contains("5919"));
    let email = csv(&format!(
        "subject,record_kind,occurred_on,lat,lon,indicators\n{},ana@example.org\n",
        good_row("53.8,-3.0")
    ))
    .unwrap_err();
    assert!(
        matches!(
            email,
            ExtractError::IdentifierValue {
                kind: IdentifierKind::Email,
                ..
            }
        ),
        "{email}"
    );
    assert!(!email.to_string().contains("ana@"));
}

#[test]
fn ndjson_reads_the_same_fields_line_by_line() {
    let text = format!(
        "{{\"subject\":\"{PSEUDONYM}\",\"record_kind\":\"incident\",\"occurred_on\":\"2024-03-05\",\"lat\":53.8175,\"lon\":-3.0357,\"indicators\":[\"missing\",\"self_harm\"],\"age\":16}}\n\
         \n\
         {{\"SUBJECT\":\"{PSEUDONYM}\",\"record_kind\":\"referral\",\"occurred_on\":\"2024-03-06\",\"postcode\":\"FY1 1AA\",\"sex\":null}}\n\
         [1,2]\n\
         {{\"subject\":\"{PSEUDONYM}\",\"record_kind\":\"referral\",\"occurred_on\":\"2024-03-06\",\"postcode\":{{\"a\":1}}}}\n\
         {{not json\n"
    );
    let outcomes = read(ExtractFormat::Ndjson, text.as_bytes()).unwrap();
    assert_eq!(outcomes.len(), 5);
    let first = accepted(outcomes[0].clone());
    assert_eq!(
        first.indicators,
        vec![Indicator::Missing, Indicator::SelfHarm]
    );
    assert_eq!(first.age_band, Some(AgeBand::SixteenToSeventeen));
    let second = accepted(outcomes[1].clone());
    assert_eq!(second.row, 3, "blank lines still count");
    assert_eq!(
        rejected(outcomes[2].clone())[0].1,
        "the line is not a JSON object"
    );
    assert_eq!(
        rejected(outcomes[3].clone())[0],
        ("postcode", "expected a string or a number".to_owned())
    );
    assert!(
        rejected(outcomes[4].clone())[0]
            .1
            .starts_with("the line is not valid JSON")
    );

    assert_eq!(
        read(ExtractFormat::Ndjson, b"\n \n").unwrap_err(),
        ExtractError::Empty
    );
    let identifying = format!("{{\"subject\":\"{PSEUDONYM}\",\"nhs_number\":\"9434765919\"}}\n");
    assert!(matches!(
        read(ExtractFormat::Ndjson, identifying.as_bytes()).unwrap_err(),
        ExtractError::IdentifierColumn { .. }
    ));
    assert_eq!(
        read(ExtractFormat::Ndjson, b"{\"subject\":\"\xff\"}\n").unwrap_err(),
        ExtractError::NotUtf8 { row: 1 }
    );
}

#[test]
fn the_tally_counts_quality_figures() {
    let text = format!(
        "subject,record_kind,occurred_on,lat,lon,indicators\n\
         {p},incident,2024-03-05,53.8,-3.0,missing\n\
         {p},incident,2024-01-09,53.8,-3.0,\n\
         {p},incident,2024-13-01,53.8,-3.0,\n\
         {p},incident,2024-02-01,48.8,2.3,\n",
        p = PSEUDONYM
    );
    let mut tally = Tally::default();
    for outcome in csv(&text).unwrap() {
        tally.count(&outcome);
    }
    assert_eq!(
        (tally.rows_total, tally.rows_accepted, tally.rows_rejected),
        (4, 2, 2)
    );
    assert!((tally.rejected_share() - 0.5).abs() < 1e-12);
    assert!(
        (tally.geocoded_share() - 0.75).abs() < 1e-12,
        "the bad date's row was located"
    );
    assert!((tally.indicator_completeness() - 0.5).abs() < 1e-12);
    assert_eq!(tally.first_date, NaiveDate::from_ymd_opt(2024, 1, 9));
    assert_eq!(tally.last_date, NaiveDate::from_ymd_opt(2024, 3, 5));
    assert_eq!(Tally::default().rejected_share(), 0.0);
}

#[test]
fn an_endless_line_is_refused_without_being_held_and_a_long_field_is_named() {
    let lookup = postcodes();
    let rules = || Rules {
        today: today(),
        postcodes: &lookup,
        kept_from: &[],
    };
    // An endless header: refused once it passes the limit, not read to the end.
    let endless = ExtractReader::new(std::io::repeat(b'a'), ExtractFormat::Csv, rules());
    assert_eq!(
        endless.err(),
        Some(ExtractError::LineTooLong {
            row: 1,
            limit: MAX_LINE_BYTES
        })
    );
    let header = b"subject,record_kind,occurred_on,postcode\n".to_vec();
    let row = format!("{PSEUDONYM},incident,2024-01-01,FY1 1AA\n");
    let mut text = header.clone();
    text.extend(row.as_bytes());
    let endless_row = std::io::Read::chain(text.as_slice(), std::io::repeat(b'b'));
    let outcomes: Result<Vec<_>, _> = ExtractReader::new(endless_row, ExtractFormat::Csv, rules())
        .unwrap()
        .collect();
    assert_eq!(
        outcomes.unwrap_err(),
        ExtractError::LineTooLong {
            row: 3,
            limit: MAX_LINE_BYTES
        }
    );
    let ndjson = format!("{{\"subject\":\"{PSEUDONYM}\"}}\n\n");
    let endless_line = std::io::Read::chain(ndjson.as_bytes(), std::io::repeat(b'c'));
    let outcomes: Result<Vec<_>, _> =
        ExtractReader::new(endless_line, ExtractFormat::Ndjson, rules())
            .unwrap()
            .collect();
    assert_eq!(
        outcomes.unwrap_err(),
        ExtractError::LineTooLong {
            row: 3,
            limit: MAX_LINE_BYTES
        }
    );

    // A field one byte over its limit, in a line well under the line's.
    let mut text = header;
    text.extend(
        format!(
            "{PSEUDONYM},{},2024-01-01,FY1 1AA\n",
            "k".repeat(MAX_FIELD_BYTES + 1)
        )
        .as_bytes(),
    );
    assert_eq!(
        read(ExtractFormat::Csv, &text).unwrap_err(),
        ExtractError::FieldTooLong {
            row: 2,
            column: "record_kind",
            limit: MAX_FIELD_BYTES
        }
    );
    let long = format!("{{\"subject\":\"{}\"}}\n", "d".repeat(MAX_FIELD_BYTES + 1));
    assert_eq!(
        read(ExtractFormat::Ndjson, long.as_bytes()).unwrap_err(),
        ExtractError::FieldTooLong {
            row: 1,
            column: "subject",
            limit: MAX_FIELD_BYTES
        }
    );
}

#[test]
fn an_unclosed_quote_before_megabytes_of_rows_is_refused_once_past_the_limit() {
    let mut text = String::from("subject,record_kind,occurred_on,lat,lon\n");
    text.push_str(&format!("{PSEUDONYM},incident,2024-03-05,53.8,\"-3.0\n"));
    let rows = format!("{}\n", good_row("53.8,-3.0")).repeat(20_000);
    let endless = std::io::Read::chain(text.as_bytes(), rows.as_bytes());
    let lookup = postcodes();
    let rules = Rules {
        today: today(),
        postcodes: &lookup,
        kept_from: &[],
    };
    let outcomes: Result<Vec<_>, _> = ExtractReader::new(endless, ExtractFormat::Csv, rules)
        .unwrap()
        .collect();
    assert_eq!(
        outcomes.unwrap_err(),
        ExtractError::MultilineField { row: 2 }
    );
    // Quoted fields with commas and escaped quotes end their records as usual.
    let quoted = format!(
        "subject,record_kind,occurred_on,lat,lon\n{PSEUDONYM},\"incident\",\"2024-03-05\",\"53.8\",\"-3.0\"\n"
    );
    assert_eq!(csv(&quoted).unwrap().len(), 1);
}

#[test]
fn a_row_past_its_kinds_retention_period_is_refused_and_other_kinds_are_kept() {
    let lookup = postcodes();
    let first_kept = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
    let rules = Rules {
        today: today(),
        postcodes: &lookup,
        kept_from: &[(RecordKind::Incident, first_kept)],
    };
    let text = format!(
        "subject,record_kind,occurred_on,lat,lon\n\
         {PSEUDONYM},incident,2019-12-31,53.81,-3.05\n\
         {PSEUDONYM},incident,2020-01-01,53.81,-3.05\n\
         {PSEUDONYM},referral,2019-12-31,53.81,-3.05\n"
    );
    let outcomes: Vec<RowOutcome> = ExtractReader::new(text.as_bytes(), ExtractFormat::Csv, rules)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut tally = Tally::default();
    outcomes.iter().for_each(|outcome| tally.count(outcome));
    assert_eq!((tally.rows_rejected, tally.rows_past_retention), (1, 1));
    assert!(
        tally.rejected_share().abs() < f64::EPSILON,
        "a row past retention says nothing of the extract's quality"
    );
    let mut outcomes = outcomes.into_iter();
    assert_eq!(
        rejected(outcomes.next().unwrap()),
        vec![(
            "occurred_on",
            "incident records are kept from 2020-01-01 (the retention period): an older one is \
             not stored"
                .to_owned()
        )]
    );
    assert_eq!(accepted(outcomes.next().unwrap()).occurred_on, first_kept);
    assert_eq!(
        accepted(outcomes.next().unwrap()).record_kind,
        RecordKind::Referral
    );
}
