//! The share of clustering-free maps with any (false) discovery after Benjamini–Hochberg at
//! 5 %, for analytic Gi* p-values (on the counts, and on Anscombe's √(x + 3/8) of them), for
//! randomisation p-values (exact or saddle-point, the default test) and for
//! two-sided permutation p-values, at several mean counts per cell (docs/analytics.md, "Sparse counts").
//!
//! Run: `cargo run --release -p atlas-analytics --example false_discoveries`

use atlas_analytics::gistar::{
    Kernel, StudyArea, benjamini_hochberg, gi_star, permutation_p, randomisation_p,
};
use h3o::{LatLng, Resolution};
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

fn main() {
    let centre = LatLng::new(53.76, -2.70)
        .expect("a valid point")
        .to_cell(Resolution::Eight);
    let area = StudyArea::new(centre.grid_disk::<Vec<_>>(10)).expect("a study area");
    let maps = |runs: u64, mean: f64, decide: &dyn Fn(&[f64], u64) -> Vec<f64>| -> f64 {
        let mut with_discoveries = 0_u32;
        for seed in 0..runs {
            let mut rng = StdRng::seed_from_u64(1_000 + seed);
            let values: Vec<f64> = area
                .cells()
                .iter()
                .map(|_| poisson(&mut rng, mean))
                .collect();
            let p = decide(&values, seed);
            with_discoveries += u32::from(benjamini_hochberg(&p, 0.05).iter().any(|d| *d));
        }
        #[expect(clippy::cast_precision_loss, reason = "a few thousand runs")]
        let share = f64::from(with_discoveries) / runs as f64 * 100.0;
        share
    };
    println!("{} cells, k = 1, BH at 5 %", area.cells().len());
    println!(
        "mean per cell | analytic p (2,000 maps) | analytic p, Anscombe | randomisation p (2,000) | permutation p, 9,999 (300 maps)"
    );
    for mean in [0.5, 2.0, 20.0] {
        let analytic = maps(2_000, mean, &|values, _| {
            gi_star(&area, values, 1, Kernel::Uniform).expect("Gi*").p
        });
        let anscombe = maps(2_000, mean, &|values, _| {
            let transformed: Vec<f64> = values.iter().map(|x| (x + 0.375).sqrt()).collect();
            gi_star(&area, &transformed, 1, Kernel::Uniform)
                .expect("Gi*")
                .p
        });
        let randomisation = maps(2_000, mean, &|values, _| {
            randomisation_p(&area, values, 1, Kernel::Uniform).expect("randomisation")
        });
        let permuted = maps(300, mean, &|values, seed| {
            permutation_p(&area, values, 1, 9_999, seed, &AtomicBool::new(false))
                .expect("permutations")
                .iter()
                .map(|p| (2.0 * p).min(1.0))
                .collect()
        });
        println!(
            "{mean:>13} | {analytic:>21.1} % | {anscombe:>18.1} % | {randomisation:>20.1} % | {permuted:>29.1} %"
        );
    }
}
