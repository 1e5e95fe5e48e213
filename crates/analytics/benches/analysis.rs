//! Criterion benchmarks of the analyses behind the hotspot endpoint, on the data of
//! `bench/analysis.sh`: a million records in four towns of Lancashire over two years, 250,000
//! children. `grid` counts one year at resolution 8; Gi* and its randomisation p-values run over
//! a study area of 4,681 resolution-8 cells (a k-ring of 39) with the children per cell.
//! Run: `cargo bench -p atlas-analytics --bench analysis`.

use atlas_analytics::gistar::{Kernel, StudyArea, gi_star, randomisation_p};
use atlas_analytics::grid::{Filter, grid};
use atlas_domain::{AgencyKind, LocationRole, RecordKind};
use atlas_domain::{CaseRecord, Indicators};
use chrono::NaiveDate;
use criterion::{Criterion, criterion_group, criterion_main};
use h3o::{LatLng, Resolution};
use rand::{RngExt as _, SeedableRng as _};

const ROWS: usize = 1_000_000;

/// The towns of `bench/analysis.sh`: south, north, west, east.
const TOWNS: [(f64, f64, f64, f64); 4] = [
    (53.74, 53.78, -2.72, -2.66),
    (54.03, 54.06, -2.82, -2.78),
    (53.78, 53.80, -2.26, -2.22),
    (53.64, 53.66, -2.64, -2.62),
];

fn records() -> Vec<CaseRecord> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(20_261_128);
    let kinds = [
        RecordKind::Incident,
        RecordKind::Referral,
        RecordKind::MissingEpisode,
        RecordKind::Assessment,
        RecordKind::Intelligence,
    ];
    (0..ROWS)
        .map(|row| {
            let (south, north, west, east) = TOWNS[row % 4];
            let point = LatLng::new(rng.random_range(south..north), rng.random_range(west..east))
                .expect("a valid coordinate");
            CaseRecord {
                cell: point.to_cell(Resolution::Nine),
                subject: rng.random_range(0..250_000),
                record_key: rng.random(),
                agency: u32::try_from(row % 7).expect("small"),
                agency_kind: AgencyKind::ALL[row % 4],
                record_kind: kinds[row % 5],
                occurred_on: NaiveDate::from_ymd_opt(
                    2023 + i32::try_from(row % 2).expect("small"),
                    1 + u32::try_from(row % 12).expect("small"),
                    1 + u32::try_from(row % 28).expect("small"),
                )
                .expect("a valid date"),
                location_role: LocationRole::Incident,
                indicators: Indicators::default(),
                age_band: None,
                sex: None,
            }
        })
        .collect()
}

fn analyses(c: &mut Criterion) {
    let records = records();
    let one_year = Filter {
        from: NaiveDate::from_ymd_opt(2024, 1, 1),
        to: NaiveDate::from_ymd_opt(2024, 12, 31),
        ..Filter::default()
    };
    let mut group = c.benchmark_group("hotspot analyses");
    group.sample_size(10);
    group.bench_function("grid: 1M records, one year, resolution 8", |b| {
        b.iter(|| grid(&records, Resolution::Eight, &one_year));
    });
    let centre = LatLng::new(53.85, -2.5)
        .expect("a valid coordinate")
        .to_cell(Resolution::Eight);
    let area = StudyArea::new(centre.grid_disk::<Vec<_>>(39)).expect("a study area");
    let counted = grid(&records, Resolution::Eight, &one_year);
    let values: Vec<f64> = area
        .cells()
        .iter()
        .map(|cell| {
            counted
                .binary_search_by_key(cell, |counted| counted.cell)
                .map_or(0.0, |found| f64::from(counted[found].subjects))
        })
        .collect();
    group.bench_function("Gi*: 4,681 cells, k = 1", |b| {
        b.iter(|| gi_star(&area, &values, 1, Kernel::Uniform).expect("Gi*"));
    });
    group.bench_function("randomisation p-values: 4,681 cells, k = 1", |b| {
        b.iter(|| randomisation_p(&area, &values, 1, Kernel::Uniform).expect("p-values"));
    });
    group.finish();
}

criterion_group!(benches, analyses);
criterion_main!(benches);
