//! Our side of the Gi* benchmark against PySAL esda (run by `bench/gistar.sh`).
//!
//! Usage: `gistar_bench INPUT.csv ESDA [K]`. INPUT.csv has a header line then `cell,value` rows
//! (H3 cells as hex strings); ESDA holds esda's `z,p_sim` lines in the same order (written by
//! `bench/gistar_esda.py`).
//!
//! Times, each the median of several runs on a fresh `StudyArea`: `StudyArea::new` + `gi_star`
//! (analytic), and `StudyArea::new` + `gi_star` + `permutation_p` with 99 permutations (z and
//! pseudo p-values, as esda's `G_Local(..., permutations=99)` gives; ours includes building the
//! neighbourhoods, esda's excludes building its weights), plus `permutation_p` alone once the
//! area's neighbourhoods are built. Prints a JSON line with the timings, the largest
//! |z − esda's z| and how far the pseudo p-values (from different random draws) are from esda's.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use atlas_analytics::gistar::{Kernel, StudyArea, gi_star, permutation_p};
use h3o::CellIndex;

const RUNS: usize = 7;

fn median(mut times: Vec<Duration>) -> f64 {
    times.sort();
    times[times.len() / 2].as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (input, esda) = match &args[..] {
        [_, input, esda, ..] => (input, esda),
        _ => panic!("usage: gistar_bench INPUT.csv ESDA [K]"),
    };
    let k: u32 = args.get(3).map_or(1, |k| k.parse().expect("k"));
    let text = std::fs::read_to_string(input).expect("read the input");
    let (cells, values): (Vec<CellIndex>, Vec<f64>) = text
        .lines()
        .skip(1)
        .map(|line| {
            let (cell, value) = line.split_once(',').expect("cell,value");
            (
                cell.parse::<CellIndex>().expect("an H3 cell"),
                value.parse::<f64>().expect("a number"),
            )
        })
        .unzip();
    let (esda_z, esda_p): (Vec<f64>, Vec<f64>) = std::fs::read_to_string(esda)
        .expect("read esda's results")
        .lines()
        .map(|line| {
            let (z, p) = line.split_once(',').expect("z,p_sim");
            (
                z.parse::<f64>().expect("a z-score"),
                p.parse::<f64>().expect("a p-value"),
            )
        })
        .unzip();
    assert_eq!(esda_z.len(), cells.len(), "one esda result per cell");

    let mut analytic = Vec::new();
    let mut result = None;
    for _ in 0..RUNS {
        let start = Instant::now();
        let area = StudyArea::new(cells.iter().copied()).expect("a study area");
        let scores = gi_star(&area, &values, k, Kernel::Uniform).expect("Gi*");
        analytic.push(start.elapsed());
        result = Some((area, scores));
    }
    let (area, scores) = result.expect("at least one run");
    let max_abs_dz = scores
        .z
        .iter()
        .zip(&esda_z)
        .map(|(ours, theirs)| (ours - theirs).abs())
        .fold(0.0, f64::max);

    let (mut permutations, mut permutation_only) = (Vec::new(), Vec::new());
    let mut p_sim = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let area = StudyArea::new(cells.iter().copied()).expect("a study area");
        let z = gi_star(&area, &values, k, Kernel::Uniform).expect("Gi*");
        p_sim = permutation_p(&area, &values, k, 99, 12_345, &AtomicBool::new(false))
            .expect("pseudo p-values");
        permutations.push(start.elapsed());
        assert_eq!(z.z.len(), p_sim.len());
        let start = Instant::now();
        let again = permutation_p(&area, &values, k, 99, 12_345, &AtomicBool::new(false))
            .expect("pseudo p-values");
        permutation_only.push(start.elapsed());
        assert_eq!(again, p_sim, "seeded");
    }
    let p_differences: Vec<f64> = p_sim
        .iter()
        .zip(&esda_p)
        .map(|(ours, theirs)| (ours - theirs).abs())
        .collect();
    #[expect(clippy::cast_precision_loss, reason = "far below 2^52 cells")]
    let mean_abs_dp = p_differences.iter().sum::<f64>() / p_differences.len() as f64;
    let max_abs_dp = p_differences.iter().copied().fold(0.0, f64::max);
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    println!(
        "{{\"cells\": {}, \"k\": {k}, \"runs\": {RUNS}, \"threads\": {threads}, \
         \"analytic_s\": {}, \"analytic_first_s\": {}, \"permutations_99_s\": {}, \
         \"permutation_p_only_s\": {}, \"max_abs_dz\": {max_abs_dz:e}, \"mean_abs_dp_sim\": {mean_abs_dp}, \
         \"max_abs_dp_sim\": {max_abs_dp}}}",
        area.cells().len(),
        median(analytic.clone()),
        analytic[0].as_secs_f64(),
        median(permutations),
        median(permutation_only),
    );
}
