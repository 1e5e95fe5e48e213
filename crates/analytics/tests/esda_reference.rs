//! Gi* against PySAL esda on committed fixtures (regenerate with scripts/gistar_fixtures.py).
//! Tolerance: 1e-9 absolute on z-scores and two-sided p-values.

#![expect(clippy::unwrap_used, reason = "a test fails where it unwraps, loudly")]

use atlas_analytics::gistar::{Kernel, StudyArea, confidence_bins, gi_star, permutation_p};
use h3o::CellIndex;
use serde_json::Value;
use std::sync::atomic::AtomicBool;

const TOLERANCE: f64 = 1e-9;

fn numbers(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

fn fixture_cells(fixture: &Value) -> Vec<CellIndex> {
    fixture["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn z_scores_and_p_values_equal_esda() {
    let fixtures = [
        include_str!("fixtures/gistar_poisson_k1.json"),
        include_str!("fixtures/gistar_planted_cluster_k1.json"),
        include_str!("fixtures/gistar_planted_cluster_k2.json"),
        include_str!("fixtures/gistar_mostly_zeros_k3.json"),
    ];
    for text in fixtures {
        let fixture: Value = serde_json::from_str(text).unwrap();
        let cells = fixture_cells(&fixture);
        let area = StudyArea::new(cells).unwrap();
        let k = u32::try_from(fixture["k"].as_u64().unwrap()).unwrap();
        let result = gi_star(&area, &numbers(&fixture["values"]), k, Kernel::Uniform).unwrap();
        let (z, p) = (numbers(&fixture["z"]), numbers(&fixture["p_two_sided"]));
        for i in 0..z.len() {
            assert!(
                (result.z[i] - z[i]).abs() <= TOLERANCE,
                "{} cell {i}: z {} vs esda {}",
                fixture["name"],
                result.z[i],
                z[i]
            );
            assert!(
                (result.p[i] - p[i]).abs() <= TOLERANCE,
                "{} cell {i}: p {} vs esda {}",
                fixture["name"],
                result.p[i],
                p[i]
            );
        }
    }
}

#[test]
fn the_planted_cluster_is_a_99_percent_hotspot_after_fdr() {
    let fixture: Value =
        serde_json::from_str(include_str!("fixtures/gistar_planted_cluster_k1.json")).unwrap();
    let cells = fixture_cells(&fixture);
    let centre: CellIndex = h3o::LatLng::new(53.8130, -3.0400)
        .unwrap()
        .to_cell(h3o::Resolution::Eight);
    let area = StudyArea::new(cells.clone()).unwrap();
    let result = gi_star(&area, &numbers(&fixture["values"]), 1, Kernel::Uniform).unwrap();
    let bins = confidence_bins(&result.z, &result.p);
    let position = cells.iter().position(|cell| *cell == centre).unwrap();
    assert_eq!(bins[position], 3, "the planted centre");
    let hot: usize = bins.iter().filter(|bin| **bin == 3).count();
    assert!(
        (1..=19).contains(&hot),
        "{hot} cells at +3: the cluster and its ring, not the whole area"
    );
}

#[test]
fn permutation_p_values_agree_with_esda_within_sampling_error() {
    // Different random draws, same test: with 999 permutations each pseudo p-value has a
    // standard error of at most about 0.016, so the two should agree closely on average. The
    // comparison is on the cells clearly above the mean (z > 1), whose nearer tail is the upper
    // one, counted the same way by both; in the lower tail esda counts only draws strictly
    // below the observed sum, Atlas counts ties in both tails (docs/analytics.md).
    for text in [
        include_str!("fixtures/gistar_poisson_k1.json"),
        include_str!("fixtures/gistar_planted_cluster_k2.json"),
    ] {
        let fixture: Value = serde_json::from_str(text).unwrap();
        let area = StudyArea::new(fixture_cells(&fixture)).unwrap();
        let k = u32::try_from(fixture["k"].as_u64().unwrap()).unwrap();
        let ours = permutation_p(
            &area,
            &numbers(&fixture["values"]),
            k,
            999,
            2026,
            &AtomicBool::new(false),
        )
        .unwrap();
        let esda = numbers(&fixture["p_sim_999"]);
        let z = numbers(&fixture["z"]);
        let differences: Vec<f64> = ours
            .iter()
            .zip(&esda)
            .zip(&z)
            .filter(|(_, z)| **z > 1.0)
            .map(|((a, b), _)| (a - b).abs())
            .collect();
        assert!(differences.len() > 20, "{}", fixture["name"]);
        let mean = differences.iter().sum::<f64>() / differences.len() as f64;
        let largest = differences.iter().copied().fold(0.0, f64::max);
        assert!(mean < 0.02, "{}: mean difference {mean}", fixture["name"]);
        assert!(
            largest < 0.08,
            "{}: largest difference {largest}",
            fixture["name"]
        );
    }
}
