//! Criterion benchmarks of the pure ingest work on a million points or rows: H3 indexing alone
//! (to compare with the Python `h3` package, bench/h3_index.py), reading and validating a
//! canonical extract, and pseudonymising a raw export. Run: `cargo bench -p atlas-ingest`.

use std::collections::HashMap;
use std::fmt::Write as _;

use atlas_ingest::extract::{ExtractFormat, ExtractReader, PostcodePlace, Rules};
use atlas_ingest::pseudonym::PseudonymKey;
use atlas_ingest::pseudonymise::{Profile, pseudonymise};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use h3o::{LatLng, Resolution};

const ROWS: usize = 1_000_000;

/// The same points as bench/h3_index.py: a deterministic grid over Lancashire.
fn points() -> Vec<(f64, f64)> {
    (0..ROWS)
        .map(|i| {
            (
                53.6 + (i % 1000) as f64 * 0.0004,
                -3.0 + (i / 1000) as f64 * 0.0008,
            )
        })
        .collect()
}

fn canonical_csv() -> String {
    let mut text = String::from("subject,record_kind,occurred_on,lat,lon,indicators,age,sex\n");
    for (i, (lat, lon)) in points().into_iter().enumerate() {
        let _ = writeln!(
            text,
            "{i:064x},incident,2024-03-{:02},{lat:.5},{lon:.5},missing;gifts_money,15,F",
            1 + i % 28
        );
    }
    text
}

fn raw_export() -> String {
    let mut text = String::from(
        "forename,surname,date_of_birth,nhs_number,record_kind,occurred_on,lat,lon,notes\n",
    );
    for (i, (lat, lon)) in points().into_iter().enumerate() {
        let _ = writeln!(
            text,
            "Child{i},Surname{},2010-0{}-1{},,incident,2024-03-01,{lat:.5},{lon:.5},free text",
            i % 977,
            1 + i % 9,
            i % 10
        );
    }
    text
}

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("million");
    group
        .sample_size(10)
        .throughput(Throughput::Elements(ROWS as u64));
    let points = points();
    group.bench_function("h3_index_resolution_9", |b| {
        b.iter(|| {
            points
                .iter()
                .map(|(lat, lon)| {
                    LatLng::new(*lat, *lon).map_or(0, |ll| u64::from(ll.to_cell(Resolution::Nine)))
                })
                .fold(0_u64, u64::wrapping_add)
        });
    });
    let csv = canonical_csv();
    let today = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default();
    let postcodes: HashMap<String, PostcodePlace> = HashMap::new();
    group.bench_function("read_and_validate_canonical_csv", |b| {
        b.iter(|| {
            let rules = Rules {
                today,
                postcodes: &postcodes,
                kept_from: &[],
            };
            ExtractReader::new(csv.as_bytes(), ExtractFormat::Csv, rules).map_or(0, Iterator::count)
        });
    });
    let raw = raw_export();
    let key = PseudonymKey::from_hex(&"ab".repeat(32)).unwrap_or_else(|_| unreachable!());
    group.bench_function("pseudonymise_raw_export", |b| {
        b.iter(|| {
            pseudonymise(raw.as_bytes(), std::io::sink(), &key, &Profile::default())
                .map_or(0, |s| s.rows_written)
        });
    });
    group.finish();
}

criterion_group!(indexing, benches);
criterion_main!(indexing);
