//! Criterion benchmarks of the analyses behind the hotspot endpoint, on the data of
//! `bench/analysis.sh`: a million records in four towns of Lancashire over two years, 250,000
//! children. `grid` counts one year at resolution 8 and 9, `cell_values` the children per cell
//! a hotspot analysis reads at 9; Gi* and its randomisation p-values run over
//! a study area of 4,681 resolution-8 cells (a k-ring of 39) with the children per cell.
//! Run: `cargo bench -p atlas-analytics --bench analysis`.

use atlas_analytics::gistar::{Kernel, StudyArea, gi_star, randomisation_p};
use atlas_analytics::grid::{Filter, cell_values, grid};
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
    let towns = |row: usize, rng: &mut rand::rngs::StdRng| {
        let (south, north, west, east) = TOWNS[row % 4];
        LatLng::new(rng.random_range(south..north), rng.random_range(west..east))
            .expect("a valid coordinate")
    };
    made(ROWS, 250_000, &mut rng, towns)
}

/// 200,000 records over 2023 and 2024 spread over North Yorkshire's box, 150,000 children: at
/// resolution 9 most cells hold a record or two (the sparse case of `bench/hotspots.sh`).
fn spread() -> Vec<CaseRecord> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(20_261_130);
    let anywhere = |_: usize, rng: &mut rand::rngs::StdRng| {
        LatLng::new(
            rng.random_range(53.62..54.56),
            rng.random_range(-2.56..-0.21),
        )
        .expect("a valid coordinate")
    };
    made(200_000, 150_000, &mut rng, anywhere)
}

/// `rows` records at the points `at` gives, of `children` children.
fn made(
    rows: usize,
    children: u64,
    rng: &mut rand::rngs::StdRng,
    at: impl Fn(usize, &mut rand::rngs::StdRng) -> LatLng,
) -> Vec<CaseRecord> {
    let kinds = [
        RecordKind::Incident,
        RecordKind::Referral,
        RecordKind::MissingEpisode,
        RecordKind::Assessment,
        RecordKind::Intelligence,
    ];
    (0..rows)
        .map(|row| {
            let point = at(row, rng);
            CaseRecord {
                cell: point.to_cell(Resolution::Nine),
                subject: rng.random_range(0..children),
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
    // At resolution 9 most cells hold a few records: the sparse case of a large study area.
    group.bench_function("grid: 1M records, one year, resolution 9", |b| {
        b.iter(|| grid(&records, Resolution::Nine, &one_year));
    });
    group.bench_function(
        "cell values (children): 1M records, one year, resolution 9",
        |b| {
            b.iter(|| cell_values(&records, Resolution::Nine, &one_year, true));
        },
    );
    let spread = spread();
    group.bench_function("grid: 200k records spread, one year, resolution 9", |b| {
        b.iter(|| grid(&spread, Resolution::Nine, &one_year));
    });
    group.bench_function(
        "cell values (children): 200k records spread, one year, resolution 9",
        |b| {
            b.iter(|| cell_values(&spread, Resolution::Nine, &one_year, true));
        },
    );
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
