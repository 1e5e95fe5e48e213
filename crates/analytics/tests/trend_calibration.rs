//! Calibration of emerging hotspots' trends: on cubes without any trend (every cell's count a
//! Poisson draw around a constant mean, a busier cluster included), the share of cells whose
//! Mann–Kendall test calls a trend at `alpha` must not exceed `alpha` (docs/analytics.md,
//! "Trends").

#![expect(clippy::unwrap_used, reason = "a test fails where it unwraps, loudly")]

use std::collections::HashSet;
use std::sync::atomic::AtomicBool;

use atlas_analytics::emerging::emerging_hot_spots;
use atlas_analytics::gistar::StudyArea;
use h3o::{CellIndex, LatLng, Resolution};
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};

/// A Poisson draw with mean `mean` (Knuth's method: small means only).
fn poisson(rng: &mut StdRng, mean: f64) -> f64 {
    let limit = (-mean).exp();
    let mut product: f64 = rng.random();
    let mut count = 0.0;
    while product > limit {
        product *= rng.random::<f64>();
        count += 1.0;
    }
    count
}

/// The share of cells with a trend at `alpha`, over `cubes` trend-free cubes of `steps` steps;
/// `adjusted`: set against the children living in each cell (the cluster's cells are a town
/// with six times the population, hence the busier counts).
fn false_trend_share(time_lag: usize, steps: usize, cubes: u64, alpha: f64, adjusted: bool) -> f64 {
    let centre = LatLng::new(53.8, -3.04).unwrap().to_cell(Resolution::Eight);
    let area = StudyArea::new(centre.grid_disk::<Vec<_>>(4)).unwrap();
    let cluster: HashSet<CellIndex> = centre.grid_disk::<Vec<_>>(1).into_iter().collect();
    let (mut trends, mut tests) = (0_u32, 0_u32);
    for seed in 0..cubes {
        let mut rng = StdRng::seed_from_u64(seed);
        let series: Vec<Vec<f64>> = area
            .cells()
            .iter()
            .map(|cell| {
                let mean = if cluster.contains(cell) { 6.0 } else { 1.0 };
                (0..steps).map(|_| poisson(&mut rng, mean)).collect()
            })
            .collect();
        let populations: Vec<f64> = area
            .cells()
            .iter()
            .map(|cell| if cluster.contains(cell) { 600.0 } else { 100.0 })
            .collect();
        let cells = emerging_hot_spots(
            &area,
            &series,
            adjusted.then_some(populations.as_slice()),
            1,
            time_lag,
            alpha,
            &AtomicBool::new(false),
        )
        .unwrap();
        trends += u32::try_from(cells.iter().filter(|cell| cell.trend_p < alpha).count()).unwrap();
        tests += u32::try_from(cells.len()).unwrap();
    }
    f64::from(trends) / f64::from(tests)
}

#[test]
fn trend_free_cubes_show_trends_no_more_often_than_alpha() {
    for adjusted in [false, true] {
        for time_lag in [0, 1, 2] {
            let share = false_trend_share(time_lag, 24, 150, 0.05, adjusted);
            println!(
                "time lag {time_lag}{}: {:.1} % of cells with a false trend",
                if adjusted {
                    ", adjusted for population"
                } else {
                    ""
                },
                share * 100.0
            );
            assert!(
                share <= 0.055,
                "time lag {time_lag}: {:.1} % of cells show a trend where there is none (nominal 5 %)",
                share * 100.0
            );
        }
    }
}

#[test]
fn a_steadily_rising_cluster_shows_its_trend_at_every_time_lag() {
    let centre = LatLng::new(53.8, -3.04).unwrap().to_cell(Resolution::Eight);
    let area = StudyArea::new(centre.grid_disk::<Vec<_>>(4)).unwrap();
    let cluster: HashSet<CellIndex> = centre.grid_disk::<Vec<_>>(1).into_iter().collect();
    let steps = 24;
    for time_lag in [0, 1, 2] {
        let mut found = 0;
        for seed in 0..50 {
            let mut rng = StdRng::seed_from_u64(1_000 + seed);
            let series: Vec<Vec<f64>> = area
                .cells()
                .iter()
                .map(|cell| {
                    (0..steps)
                        .map(|t| {
                            let rising = 1.0 + 0.5 * f64::from(u32::try_from(t).unwrap());
                            poisson(&mut rng, if cluster.contains(cell) { rising } else { 1.0 })
                        })
                        .collect()
                })
                .collect();
            let cells = emerging_hot_spots(
                &area,
                &series,
                None,
                1,
                time_lag,
                0.05,
                &AtomicBool::new(false),
            )
            .unwrap();
            let centre_cell = cells.iter().find(|cell| cell.cell == centre).unwrap();
            if centre_cell.trend_p < 0.05 && centre_cell.trend_z > 0.0 {
                found += 1;
            }
        }
        println!("time lag {time_lag}: rising trend found in {found} of 50 cubes");
        assert!(
            found >= 45,
            "time lag {time_lag}: found in only {found} of 50 cubes"
        );
    }
}
