//! Gi* on synthetic counts: clusters planted at known cells are found as 99 % hotspots after
//! false-discovery control, and counts with no clusters give (almost) no discoveries, over
//! repeated seeds.

#![expect(clippy::unwrap_used, reason = "a test fails where it unwraps, loudly")]

use atlas_analytics::gistar::{
    Kernel, StudyArea, benjamini_hochberg, confidence_bins, gi_star, permutation_p, randomisation_p,
};
use h3o::{CellIndex, LatLng, Resolution};
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use std::sync::atomic::AtomicBool;

/// A Poisson draw by Knuth's method (fine for small means).
fn poisson(rng: &mut StdRng, mean: f64) -> f64 {
    let limit = (-mean).exp();
    let (mut count, mut product) = (0.0, rng.random_range(0.0..1.0));
    while product > limit {
        count += 1.0;
        product *= rng.random_range(0.0..1.0);
    }
    count
}

fn study_area() -> (StudyArea, CellIndex) {
    let centre = LatLng::new(53.76, -2.70)
        .unwrap()
        .to_cell(Resolution::Eight);
    (
        StudyArea::new(centre.grid_disk::<Vec<_>>(10)).unwrap(),
        centre,
    )
}

#[test]
fn planted_clusters_are_found_at_the_planted_places() {
    let (area, centre) = study_area();
    // Three clusters, well apart: the centre and two cells 6 rings out.
    let planted: Vec<CellIndex> = std::iter::once(centre)
        .chain(centre.grid_ring_fast(6).flatten().step_by(12).take(2))
        .collect();
    for seed in 0..20 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut values: Vec<f64> = area
            .cells()
            .iter()
            .map(|_| poisson(&mut rng, 2.0))
            .collect();
        for cluster in &planted {
            for cell in cluster.grid_disk::<Vec<_>>(1) {
                let position = area.cells().iter().position(|c| *c == cell).unwrap();
                values[position] += poisson(&mut rng, 8.0);
            }
        }
        let result = gi_star(&area, &values, 1, Kernel::Uniform).unwrap();
        let randomisation = randomisation_p(&area, &values, 1, Kernel::Uniform).unwrap();
        for (test, p) in [("normal", &result.p), ("randomisation", &randomisation)] {
            let bins = confidence_bins(&result.z, p);
            for cluster in &planted {
                let position = area.cells().iter().position(|c| c == cluster).unwrap();
                eprintln!(
                    "seed {seed} {test} p {} z {} bin {} min p {}",
                    p[position],
                    result.z[position],
                    bins[position],
                    p.iter().copied().fold(1.0, f64::min)
                );
                assert_eq!(
                    bins[position], 3,
                    "seed {seed}, {test} p: planted cluster at {cluster} not a 99 % hotspot"
                );
            }
        }
    }
}

#[test]
fn counts_without_clusters_keep_false_discoveries_at_the_nominal_rate() {
    // With no clustering every discovery is false, so the false-discovery rate is the share of
    // runs with any discovery; Benjamini-Hochberg at 5 % must keep it at or below 5 %. The
    // counts average 20 per cell; for sparse counts see the permutation test below and
    // docs/analytics.md (the normal approximation is anti-conservative there).
    let (area, _) = study_area();
    let runs = 2_000_u32;
    let mut runs_with_discoveries = 0_u32;
    for seed in 0..u64::from(runs) {
        let mut rng = StdRng::seed_from_u64(1_000 + seed);
        let values: Vec<f64> = area
            .cells()
            .iter()
            .map(|_| poisson(&mut rng, 20.0))
            .collect();
        let result = gi_star(&area, &values, 1, Kernel::Uniform).unwrap();
        runs_with_discoveries += u32::from(benjamini_hochberg(&result.p, 0.05).iter().any(|d| *d));
    }
    let share = f64::from(runs_with_discoveries) / f64::from(runs);
    assert!(
        share <= 0.05,
        "{runs_with_discoveries} of {runs} clustering-free runs had discoveries"
    );
}

#[test]
fn with_sparse_counts_permutation_p_values_keep_false_discoveries_at_the_nominal_rate() {
    // Means of 0.5 and 2 per cell, as CSE counts per cell are: two-sided permutation p-values
    // (twice the nearer tail, ties in both tails) with 9,999 permutations.
    let (area, _) = study_area();
    for mean in [0.5, 2.0] {
        let runs = 40_u32;
        let mut runs_with_discoveries = 0_u32;
        for seed in 0..u64::from(runs) {
            let mut rng = StdRng::seed_from_u64(5_000 + seed);
            let values: Vec<f64> = area
                .cells()
                .iter()
                .map(|_| poisson(&mut rng, mean))
                .collect();
            let p: Vec<f64> =
                permutation_p(&area, &values, 1, 9_999, seed, &AtomicBool::new(false))
                    .unwrap()
                    .iter()
                    .map(|p| (2.0 * p).min(1.0))
                    .collect();
            runs_with_discoveries += u32::from(benjamini_hochberg(&p, 0.05).iter().any(|d| *d));
        }
        assert!(
            runs_with_discoveries <= 2,
            "mean {mean}: {runs_with_discoveries} of {runs} clustering-free runs had discoveries"
        );
    }
}

/// Poisson counts of the given mean on every cell of the area.
fn clustering_free(area: &StudyArea, mean: f64, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    area.cells()
        .iter()
        .map(|_| poisson(&mut rng, mean))
        .collect()
}

#[test]
fn with_sparse_counts_randomisation_p_values_keep_false_discoveries_at_the_nominal_rate() {
    // The decisions' default test: 1,000 clustering-free maps per mean and kernel.
    let (area, _) = study_area();
    for (kernel, k) in [
        (Kernel::Uniform, 1),
        (Kernel::Triangular, 2),
        (Kernel::Gaussian, 3),
    ] {
        for mean in [0.5, 2.0] {
            let runs = 1_000_u32;
            let runs_with_discoveries: u32 = (0..u64::from(runs))
                .map(|seed| {
                    let values = clustering_free(&area, mean, 9_000 + seed);
                    let p = randomisation_p(&area, &values, k, kernel).unwrap();
                    u32::from(benjamini_hochberg(&p, 0.05).iter().any(|d| *d))
                })
                .sum();
            assert!(
                f64::from(runs_with_discoveries) / f64::from(runs) <= 0.05,
                "{kernel:?}, k = {k}, mean {mean}: {runs_with_discoveries} of {runs} clustering-free runs had discoveries"
            );
        }
    }
}
