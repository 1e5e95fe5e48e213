use super::*;
use atlas_domain::Indicators;
use atlas_domain::{LocationRole, RecordKind};
use h3o::LatLng;
use proptest::prelude::*;

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

fn record(subject: u64, key: u8, kind: AgencyKind, on: &str) -> CaseRecord {
    CaseRecord {
        cell: LatLng::new(53.8, -3.0).unwrap().to_cell(Resolution::Nine),
        subject,
        record_key: key,
        agency: 0,
        agency_kind: kind,
        record_kind: RecordKind::Incident,
        occurred_on: day(on),
        location_role: LocationRole::Incident,
        indicators: Indicators::from([Indicator::Missing]),
        age_band: None,
        sex: None,
    }
}

#[test]
fn every_row_of_the_p_table_is_symmetric_so_the_noise_is_unbiased() {
    for count in 0..40 {
        for floor in [1, THRESHOLD + 1] {
            let noises: Vec<i32> = (0..=255).map(|key| noise(count, key, floor)).collect();
            assert_eq!(noises.iter().sum::<i32>(), 0, "count {count} floor {floor}");
            for value in -2..=2 {
                let up = noises.iter().filter(|n| **n == value).count();
                let down = noises.iter().filter(|n| **n == -value).count();
                assert_eq!(up, down, "count {count} floor {floor} noise {value}");
            }
            assert!(noises.iter().all(|n| n.abs() <= 2));
            assert!(
                noises.iter().all(|n| count == 0
                    || i64::from(count) + i64::from(*n) >= i64::from(floor.min(count))),
                "count {count} never goes below its floor"
            );
        }
    }
}

#[test]
fn the_p_table_variance_is_as_documented() {
    let variance = |count: u32| {
        f64::from(
            (0..=255_u8)
                .map(|key| noise(count, key, THRESHOLD + 1).pow(2))
                .sum::<i32>(),
        ) / 256.0
    };
    assert!(variance(6).abs() < f64::EPSILON);
    assert!((variance(7) - 0.5).abs() < 1e-12);
    assert!((variance(8) - 310.0 / 256.0).abs() < 1e-12);
    assert!((variance(500) - 310.0 / 256.0).abs() < 1e-12);
}

#[test]
fn small_counts_are_c_zeros_stay_and_larger_counts_stay_above_the_threshold() {
    assert_eq!(
        publish(Keyed { count: 0, key: 9 }).value(),
        Published::Value(0)
    );
    for count in 1..=THRESHOLD {
        for key in 0..=255 {
            assert_eq!(publish(Keyed { count, key }).value(), Published::Suppressed);
        }
    }
    for count in THRESHOLD + 1..60 {
        for key in 0..=255 {
            let shown = publish(Keyed { count, key }).number().unwrap();
            assert!(shown > THRESHOLD, "{count} with key {key} shown as {shown}");
            assert!(shown.abs_diff(count) <= 2);
        }
    }
}

#[test]
fn one_record_more_changes_the_answer_unpredictably() {
    // The difference of two summaries a record apart is not always 1: an attacker who
    // differences a product before and after a late record learns nothing exact.
    let mut differences = BTreeMap::new();
    for seed in 0..500_u64 {
        let records: Vec<CaseRecord> = (0..20)
            .map(|i| {
                let key = child_key(seed * 1000 + i);
                record(seed * 1000 + i, key, AgencyKind::Police, "2026-02-01")
            })
            .collect();
        let before = summarise(&records[..19], day("2026-01-01"), day("2026-03-31"));
        let after = summarise(&records, day("2026-01-01"), day("2026-03-31"));
        let difference = i64::from(after.records.number().unwrap())
            - i64::from(before.records.number().unwrap());
        *differences.entry(difference).or_insert(0) += 1;
    }
    assert!(differences.len() >= 5, "{differences:?}");
    let exact = differences.get(&1).copied().unwrap_or(0);
    assert!(
        exact < 200,
        "the true difference shows in {exact} of 500: {differences:?}"
    );
}

proptest! {
    #[test]
    fn a_summary_depends_on_the_record_set_only(
        records in prop::collection::vec((0_u64..40, any::<u8>(), 0_usize..4, 0_u32..90), 0..80),
        rotate in 0_usize..80,
    ) {
        let kinds = [AgencyKind::Police, AgencyKind::Health, AgencyKind::SocialCare, AgencyKind::Education];
        let records: Vec<CaseRecord> = records
            .iter()
            .map(|(subject, key, kind, offset)| {
                let mut r = record(*subject, *key, kinds[*kind], "2026-01-01");
                r.occurred_on = day("2026-01-01") + chrono::Days::new(u64::from(*offset));
                r
            })
            .collect();
        let mut shuffled = records.clone();
        if !shuffled.is_empty() {
            let by = rotate % shuffled.len();
            shuffled.rotate_left(by);
        }
        let first = summarise(&records, day("2026-01-01"), day("2026-03-31"));
        prop_assert_eq!(&first, &summarise(&shuffled, day("2026-01-01"), day("2026-03-31")));
        for figure in first.records_by_agency_kind.iter().chain([&first.records, &first.children]).chain(&first.records_by_indicator) {
            if let Some(value) = figure.number() {
                prop_assert!(value == 0 || value > THRESHOLD);
            }
        }
    }

    #[test]
    fn published_tables_suppress_small_counts_and_stay_within_two(
        cells in prop::collection::vec(prop::collection::vec((0_u32..30, any::<u8>()), 3), 1..5),
    ) {
        let table: Vec<Vec<Keyed>> = cells
            .iter()
            .map(|row| row.iter().map(|(count, key)| Keyed { count: *count, key: *key }).collect())
            .collect();
        let shown = publish_table(&table);
        for (row, shown_row) in table.iter().zip(shown.cells()) {
            for (figure, published) in row.iter().zip(shown_row) {
                match published.number() {
                    Some(0) => prop_assert_eq!(figure.count, 0),
                    Some(value) => {
                        prop_assert!(value > THRESHOLD);
                        prop_assert!(value.abs_diff(figure.count) <= 2);
                    }
                    None => prop_assert!(figure.count > 0),
                }
            }
        }
    }

    #[test]
    fn noise_averages_out_over_random_keys(count in 8_u32..10_000) {
        // Over every cell key the published values average the count exactly.
        let total: i64 = (0..=255_u8).map(|key| i64::from(publish(Keyed { count, key }).number().unwrap())).sum();
        prop_assert_eq!(total, i64::from(count) * 256);
    }
}

#[test]
fn a_contribution_keeps_every_non_zero_cell_at_one_or_more() {
    let records: Vec<CaseRecord> = (0..3)
        .map(|i| record(i, 255, AgencyKind::Police, "2026-02-01"))
        .collect();
    let values = contribution(
        &records,
        Resolution::Seven,
        day("2026-01-01"),
        day("2026-03-31"),
        false,
    );
    assert_eq!(values.len(), 1);
    assert!(values.values().all(|value| (1..=5).contains(value)));
    let outside = contribution(
        &records,
        Resolution::Seven,
        day("2026-04-01"),
        day("2026-06-30"),
        false,
    );
    assert!(outside.is_empty());
}

#[test]
fn windows_cover_whole_closed_periods_only() {
    let today = day("2026-11-29");
    // `to` snaps to the end of its quarter; a day-level window is impossible.
    let a = closed_window(
        Step::Quarter,
        Some(day("2026-01-15")),
        Some(day("2026-05-02")),
        today,
        4,
        60,
    )
    .unwrap();
    let b = closed_window(
        Step::Quarter,
        Some(day("2026-01-01")),
        Some(day("2026-05-03")),
        today,
        4,
        60,
    )
    .unwrap();
    assert_eq!(a, b);
    assert_eq!(a.starts, vec![day("2026-01-01"), day("2026-04-01")]);
    assert_eq!(a.last, day("2026-06-30"));
    assert_eq!(a.left_out, None);
    // The running quarter is left out and named.
    let c = closed_window(
        Step::Quarter,
        Some(day("2026-01-01")),
        Some(today),
        today,
        4,
        60,
    )
    .unwrap();
    assert_eq!(c.last, day("2026-09-30"));
    assert_eq!(c.left_out, Some(day("2026-10-01")));
    // Defaults: the last four closed quarters.
    let d = closed_window(Step::Quarter, None, None, today, 4, 60).unwrap();
    assert_eq!(
        d.starts,
        vec![
            day("2025-10-01"),
            day("2026-01-01"),
            day("2026-04-01"),
            day("2026-07-01")
        ]
    );
    // Months: October ended 29 days before the 29th of November, so it is not settled yet.
    let e = closed_window(Step::Month, Some(day("2026-09-20")), None, today, 12, 60).unwrap();
    assert_eq!(e.starts, vec![day("2026-09-01")]);
    assert_eq!(e.last, day("2026-09-30"));
    let f = closed_window(
        Step::Month,
        Some(day("2026-09-20")),
        Some(today),
        today,
        12,
        60,
    )
    .unwrap();
    assert_eq!(f.left_out, Some(day("2026-10-01")));
    let settled = closed_window(
        Step::Month,
        Some(day("2026-10-20")),
        None,
        day("2026-12-01"),
        12,
        60,
    )
    .unwrap();
    assert_eq!(
        settled.last,
        day("2026-10-31"),
        "settled once thirty days have passed since its end"
    );
    assert_eq!(label(Step::Quarter, day("2026-04-01")), "2026-Q2");
    assert_eq!(label(Step::Month, day("2026-04-01")), "2026-04");
    assert_eq!(e.periods(), vec![(day("2026-09-01"), day("2026-09-30"))]);
}

#[test]
fn windows_refuse_what_has_not_ended_reversed_ranges_and_too_many_periods() {
    let today = day("2026-11-29");
    assert!(matches!(
        closed_window(Step::Quarter, Some(day("2026-10-01")), None, today, 4, 60),
        Err(WindowError::NothingClosed { .. })
    ));
    assert!(matches!(
        closed_window(
            Step::Quarter,
            Some(day("2026-05-01")),
            Some(day("2026-02-01")),
            today,
            4,
            60
        ),
        Err(WindowError::Reversed { .. })
    ));
    assert_eq!(
        closed_window(Step::Month, Some(day("2000-01-01")), None, today, 4, 60),
        Err(WindowError::TooMany {
            periods: 321,
            max: 60
        })
    );
    assert!(
        closed_window(
            Step::Quarter,
            Some(NaiveDate::MIN),
            Some(NaiveDate::MAX),
            today,
            4,
            60
        )
        .is_err()
    );
}

#[test]
fn a_release_table_has_a_row_per_cell_zeros_included_and_only_the_period() {
    let here = LatLng::new(53.8175, -3.0357)
        .unwrap()
        .to_cell(Resolution::Nine);
    let parent = here.parent(Resolution::Six).unwrap();
    let empty = parent.grid_disk::<Vec<_>>(1)[1];
    let mut records: Vec<CaseRecord> = (0..10)
        .map(|i| {
            let mut r = record(i, 17, AgencyKind::Police, "2026-01-10");
            r.cell = here;
            r
        })
        .collect();
    let mut april = record(99, 3, AgencyKind::Police, "2026-04-10");
    april.cell = here;
    let mut london = record(98, 3, AgencyKind::Police, "2026-01-10");
    london.cell = LatLng::new(51.5, -0.1).unwrap().to_cell(Resolution::Nine);
    records.extend([april, london]);
    let table = cells_by_agency_kind(
        &records,
        &[empty, parent],
        Resolution::Six,
        day("2026-01-01"),
        day("2026-03-31"),
    );
    let rows: Vec<Vec<Shown>> = table.cells().map(Iterator::collect).collect();
    assert!(
        rows[0].iter().all(|value| value.number() == Some(0)),
        "a cell without records is a row of zeros"
    );
    let police = AgencyKind::ALL
        .iter()
        .position(|k| *k == AgencyKind::Police)
        .unwrap();
    let shown = rows[1][police].number().unwrap();
    assert!(
        shown.abs_diff(10) <= 2,
        "April and London are left out: {shown}"
    );
    let again = cells_by_agency_kind(
        &records,
        &[empty, parent],
        Resolution::Six,
        day("2026-01-01"),
        day("2026-03-31"),
    );
    assert_eq!(table, again, "the same records give the same table");
}

#[test]
fn counts_about_requests_withhold_only_small_ones() {
    assert_eq!(suppress_small(0).number(), Some(0));
    for small in 1..=THRESHOLD {
        assert_eq!(suppress_small(small).number(), None, "{small}");
    }
    assert_eq!(suppress_small(THRESHOLD + 1).number(), Some(THRESHOLD + 1));
    assert_eq!(suppress_small(1_000).number(), Some(1_000));
}
