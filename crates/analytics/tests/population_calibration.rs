//! Calibration of population-adjusted hotspots (docs/analytics.md, "Population-adjusted
//! hotspots"): children placed where children live, at the same risk everywhere, must not make
//! hot or cold spots beyond the false-discovery rate, while raw counts on the same maps do; and
//! a cluster of excess risk in a populated place must still be found.

#![expect(clippy::unwrap_used, reason = "a test fails where it unwraps, loudly")]

use std::collections::HashSet;

use atlas_analytics::gistar::{
    Kernel, StudyArea, benjamini_hochberg, confidence_bins, excess_over_expected, gi_star,
    randomisation_p,
};
use atlas_analytics::rates::expected_counts;
use h3o::{CellIndex, LatLng, Resolution};
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};

const ALPHA: f64 = 0.05;

/// A study area like a county at resolution 8: three towns of different sizes, villages, and
/// a quarter of the cells (moor, sea front, farmland) where no child lives.
struct County {
    area: StudyArea,
    population: Vec<f64>,
    /// The cells of a neighbourhood in the middle town, where a cluster is planted.
    cluster: HashSet<CellIndex>,
}

fn county() -> County {
    let centre = LatLng::new(53.8, -2.6).unwrap().to_cell(Resolution::Eight);
    let cells: Vec<CellIndex> = centre.grid_disk(12);
    let towns: Vec<(CellIndex, f64, f64)> = [(0, 900.0, 2.5), (150, 500.0, 1.8), (400, 300.0, 1.2)]
        .into_iter()
        .map(|(index, peak, spread)| (cells[index], peak, spread))
        .collect();
    let population = cells
        .iter()
        .enumerate()
        .map(|(i, cell)| {
            let town: f64 = towns
                .iter()
                .map(|(centre, peak, spread)| {
                    let d = f64::from(cell.grid_distance(*centre).unwrap());
                    peak * (-(d * d) / (2.0 * spread * spread)).exp()
                })
                .sum();
            // Every fourth cell outside the towns is empty; the rest hold a village or farms.
            if town < 1.0 && i % 4 == 0 {
                0.0
            } else {
                town + 8.0
            }
        })
        .collect();
    let cluster = cells[150].grid_disk::<Vec<_>>(1).into_iter().collect();
    County {
        area: StudyArea::new(cells).unwrap(),
        population,
        cluster,
    }
}

/// `children` placed one by one in cells drawn in proportion to `weight`.
fn place(rng: &mut StdRng, weight: &[f64], children: u32) -> Vec<f64> {
    let total: f64 = weight.iter().sum();
    let mut counts = vec![0.0; weight.len()];
    for _ in 0..children {
        let mut draw = rng.random::<f64>() * total;
        let mut chosen = weight.len() - 1;
        for (i, w) in weight.iter().enumerate() {
            if draw < *w {
                chosen = i;
                break;
            }
            draw -= w;
        }
        counts[chosen] += 1.0;
    }
    counts
}

/// The bins (−3…+3) a hotspot map gives `counts` at k = 1: against `populations` when given,
/// on the raw counts otherwise.
fn bins(area: &StudyArea, counts: &[f64], populations: Option<&[f64]>) -> Vec<i8> {
    let (z, p) = match populations {
        Some(populations) => {
            let expected = expected_counts(counts, populations).unwrap();
            let test = excess_over_expected(area, counts, &expected, 1).unwrap();
            (test.z, test.p)
        }
        None => (
            gi_star(area, counts, 1, Kernel::Uniform).unwrap().z,
            randomisation_p(area, counts, 1, Kernel::Uniform).unwrap(),
        ),
    };
    let significant = benjamini_hochberg(&p, ALPHA);
    confidence_bins(&z, &p)
        .into_iter()
        .zip(significant)
        .map(|(bin, significant)| if significant { bin } else { 0 })
        .collect()
}

/// Over `maps` maps of `children` children placed by population (risk × `excess` inside the
/// cluster): the share of maps with any hot or cold cell outside the cluster, the share of
/// cells called hot or cold outside it, and the share of maps where a cluster cell is hot.
fn run(county: &County, children: u32, excess: f64, maps: u64, adjusted: bool) -> (f64, f64, f64) {
    let weight: Vec<f64> = county
        .area
        .cells()
        .iter()
        .zip(&county.population)
        .map(|(cell, people)| {
            if county.cluster.contains(cell) {
                people * excess
            } else {
                *people
            }
        })
        .collect();
    let outside = county
        .area
        .cells()
        .iter()
        .filter(|cell| !county.cluster.contains(cell))
        .count();
    let (mut maps_with_false, mut false_cells, mut found) = (0_u32, 0_usize, 0_u32);
    for seed in 0..maps {
        let mut rng = StdRng::seed_from_u64(seed);
        let counts = place(&mut rng, &weight, children);
        let bins = bins(
            &county.area,
            &counts,
            adjusted.then_some(county.population.as_slice()),
        );
        let called = |wanted: fn(&CellIndex, &HashSet<CellIndex>) -> bool| {
            county
                .area
                .cells()
                .iter()
                .zip(&bins)
                .filter(|(cell, bin)| **bin != 0 && wanted(cell, &county.cluster))
                .count()
        };
        let false_here = called(|cell, cluster| !cluster.contains(cell));
        false_cells += false_here;
        maps_with_false += u32::from(false_here > 0);
        found += u32::from(
            county
                .area
                .cells()
                .iter()
                .zip(&bins)
                .any(|(cell, bin)| *bin > 0 && county.cluster.contains(cell)),
        );
    }
    #[expect(clippy::cast_precision_loss, reason = "small counts")]
    let maps = maps as f64;
    #[expect(clippy::cast_precision_loss, reason = "small counts")]
    let cell_share = false_cells as f64 / (outside as f64 * maps);
    (
        f64::from(maps_with_false) / maps,
        cell_share,
        f64::from(found) / maps,
    )
}

#[test]
fn children_placed_where_children_live_make_no_hotspots_once_adjusted() {
    let county = county();
    for children in [150, 600] {
        let (raw_maps, raw_cells, _) = run(&county, children, 1.0, 60, false);
        let (maps, cells, _) = run(&county, children, 1.0, 60, true);
        println!(
            "{children} children, no excess risk: raw counts give a false hot or cold spot on \
             {:.0} % of maps ({:.2} % of cells); adjusted, {:.0} % of maps ({:.3} % of cells)",
            raw_maps * 100.0,
            raw_cells * 100.0,
            maps * 100.0,
            cells * 100.0
        );
        assert!(raw_maps > 0.5, "the raw counts should show the towns");
        assert!(cells <= ALPHA, "{cells}");
        assert!(maps <= 2.0 * ALPHA, "{maps}");
    }
}

#[test]
fn a_cluster_of_excess_risk_in_a_town_is_found() {
    let county = county();
    let (_, _, recall) = run(&county, 600, 3.0, 60, true);
    let (_, _, weaker) = run(&county, 600, 2.0, 60, true);
    println!(
        "600 children, risk × 3 in one town neighbourhood: found on {:.0} % of maps; × 2: {:.0} %",
        recall * 100.0,
        weaker * 100.0
    );
    assert!(recall >= 0.8, "{recall}");
}
