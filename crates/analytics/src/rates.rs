//! Excess risk: children counted per cell set against the children who live there, so that a
//! hot spot means "more children affected than the child population here would lead us to
//! expect", not "many children live here" (docs/analytics.md, "Population-adjusted hotspots").
//!
//! Two steps, both pure:
//!
//! * [`allocate`] spreads small-area child populations (ONS LSOAs or output areas, each known by
//!   a point) over the resolution-9 cells of a study area: every cell goes to the nearest small
//!   area's point (a Voronoi approximation of the area's extent), and each small area's children
//!   are shared among its cells in proportion to the postcodes in them when the postcode
//!   directory has any there (people live where postcodes are), evenly otherwise.
//! * [`expected_counts`] gives each cell the count its children would have at the study area's
//!   overall rate (internal standardisation). Under the null of the same risk everywhere, counts
//!   are Poisson with these means (the Poisson model of Kulldorff's spatial scan statistic);
//!   [`crate::gistar::excess_over_expected`] tests each neighbourhood's sum against it, and
//!   [`poisson_two_sided_p`] gives the exact tail.

use std::collections::HashMap;

use h3o::{CellIndex, LatLng, Resolution};
use rstar::{PointDistance, RTree, RTreeObject};

/// Why excess risk cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateError {
    /// The counts and populations do not pair up.
    #[error("{counts} counts for {populations} populations")]
    Lengths {
        /// How many counts.
        counts: usize,
        /// How many populations.
        populations: usize,
    },
    /// A population is negative or not a number.
    #[error("a population must be a non-negative number")]
    Population,
    /// No child lives in the study area, by the populations given.
    #[error("the study area has no child population")]
    NoPopulation,
}

/// The count each cell would hold if every child in the study area had the same risk: the
/// overall rate `Σ counts / Σ populations` times the cell's population (0 where no child
/// lives). The rate counts every record, also those in cells without population.
///
/// # Errors
/// [`RateError`] for lengths that differ, a negative or non-finite population, or no population
/// at all.
pub fn expected_counts(counts: &[f64], populations: &[f64]) -> Result<Vec<f64>, RateError> {
    if counts.len() != populations.len() {
        return Err(RateError::Lengths {
            counts: counts.len(),
            populations: populations.len(),
        });
    }
    if populations
        .iter()
        .any(|population| !population.is_finite() || *population < 0.0)
    {
        return Err(RateError::Population);
    }
    let people: f64 = populations.iter().sum();
    if people <= 0.0 {
        return Err(RateError::NoPopulation);
    }
    let rate = counts.iter().sum::<f64>() / people;
    Ok(populations
        .iter()
        .map(|population| rate * population)
        .collect())
}

/// The two-sided p-value of a sum `observed` of independent Poisson counts whose means add up
/// to `mean` (a Poisson count itself): twice the nearer tail, at most 1. With no expectation
/// (`mean` 0) there is nothing to exceed: 1.
#[must_use]
pub fn poisson_two_sided_p(observed: u64, mean: f64) -> f64 {
    if mean <= 0.0 {
        return 1.0;
    }
    #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    let observed = observed as f64;
    let upper = poisson_at_least(observed, mean);
    let lower = poisson_at_most(observed, mean);
    (2.0 * upper.min(lower)).min(1.0)
}

/// `log P(X = n)` for `X ~ Poisson(lambda)`.
fn log_pmf(n: f64, lambda: f64) -> f64 {
    n * lambda.ln() - lambda - libm::lgamma(n + 1.0)
}

/// `P(X ≥ n)` for `X ~ Poisson(lambda)`, summed from the side of `n` away from the mode.
fn poisson_at_least(n: f64, lambda: f64) -> f64 {
    if n <= 0.0 {
        return 1.0;
    }
    if n > lambda {
        tail_sum(n, lambda, 1.0)
    } else {
        1.0 - tail_sum(n - 1.0, lambda, -1.0)
    }
}

/// `P(X ≤ n)` for `X ~ Poisson(lambda)`.
fn poisson_at_most(n: f64, lambda: f64) -> f64 {
    if n < 0.0 {
        return 0.0;
    }
    if n < lambda {
        tail_sum(n, lambda, -1.0)
    } else {
        1.0 - tail_sum(n + 1.0, lambda, 1.0)
    }
}

/// The Poisson probabilities from `n` onwards in `direction` (+1 up, −1 down to 0), where they
/// only fall, until they no longer matter.
fn tail_sum(n: f64, lambda: f64, direction: f64) -> f64 {
    // Beyond 40 standard deviations from the start the terms are below 1e-300 of the first.
    let most = 40.0 * lambda.sqrt() + 100.0;
    let mut term = log_pmf(n, lambda).exp();
    let (mut sum, mut j) = (0.0, n);
    while term > 0.0 && term > 1e-17 * sum && (j - n).abs() < most {
        sum += term;
        if direction > 0.0 {
            j += 1.0;
            term *= lambda / j;
        } else {
            if j <= 0.0 {
                break;
            }
            term *= j / lambda;
            j -= 1.0;
        }
    }
    sum.min(1.0)
}

/// A small area's children, placed at one point (an LSOA's or output area's reference point).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SmallArea {
    /// Where the area is.
    pub location: LatLng,
    /// Children aged 0 to 17.
    pub children: f64,
}

/// A small area in the search tree: its point on a plane where a degree of longitude is shrunk
/// by the cosine of the study area's latitude, so that distances compare as on the ground.
struct Placed {
    point: [f64; 2],
    area: usize,
}

impl RTreeObject for Placed {
    type Envelope = rstar::AABB<[f64; 2]>;

    fn envelope(&self) -> Self::Envelope {
        rstar::AABB::from_point(self.point)
    }
}

impl PointDistance for Placed {
    fn distance_2(&self, point: &[f64; 2]) -> f64 {
        let (dx, dy) = (self.point[0] - point[0], self.point[1] - point[1]);
        dx * dx + dy * dy
    }
}

/// The children of each of `cells` (resolution 9, the study area's fine cells): each cell goes
/// to the small area whose point is nearest its centre, and each small area's children are
/// shared among its cells in proportion to `postcodes` (how many postcodes each resolution-9
/// cell holds) where any of its cells holds one, evenly otherwise. A small area no cell is
/// nearest to (two points within one cell) gives its children to the cell holding its point
/// when that is one of `cells`. Cells are returned in the order given.
#[must_use]
pub fn allocate(
    cells: &[CellIndex],
    areas: &[SmallArea],
    postcodes: &HashMap<CellIndex, u32>,
) -> Vec<f64> {
    let mut children = vec![0.0; cells.len()];
    if areas.is_empty() {
        return children;
    }
    #[expect(
        clippy::cast_precision_loss,
        reason = "a count of small areas, far below 2^52"
    )]
    let mean_latitude =
        areas.iter().map(|area| area.location.lat()).sum::<f64>() / areas.len() as f64;
    let shrink = mean_latitude.to_radians().cos();
    let plane = |location: LatLng| [location.lng() * shrink, location.lat()];
    let tree = RTree::bulk_load(
        areas
            .iter()
            .enumerate()
            .map(|(area, small)| Placed {
                point: plane(small.location),
                area,
            })
            .collect(),
    );
    let nearest: Vec<usize> = cells
        .iter()
        .map(|cell| {
            tree.nearest_neighbor(&plane(LatLng::from(*cell)))
                .map_or(0, |placed| placed.area)
        })
        .collect();
    // Per small area: its cells' postcodes in all, and how many cells it has.
    let mut shares = vec![(0_u64, 0_u32); areas.len()];
    for (cell, area) in cells.iter().zip(&nearest) {
        shares[*area].0 += u64::from(postcodes.get(cell).copied().unwrap_or(0));
        shares[*area].1 += 1;
    }
    for (i, (cell, area)) in cells.iter().zip(&nearest).enumerate() {
        let (area_postcodes, area_cells) = shares[*area];
        let share = if area_postcodes > 0 {
            #[expect(clippy::cast_precision_loss, reason = "postcode counts far below 2^52")]
            let share =
                f64::from(postcodes.get(cell).copied().unwrap_or(0)) / area_postcodes as f64;
            share
        } else {
            1.0 / f64::from(area_cells)
        };
        children[i] += areas[*area].children * share;
    }
    let positions: HashMap<CellIndex, usize> = cells
        .iter()
        .enumerate()
        .map(|(i, cell)| (*cell, i))
        .collect();
    for (area, small) in areas.iter().enumerate() {
        if shares[area].1 == 0
            && let Some(position) = positions.get(&small.location.to_cell(Resolution::Nine))
        {
            children[*position] += small.children;
        }
    }
    children
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1e-300)
    }

    #[test]
    fn expected_counts_follow_the_population_at_the_overall_rate() {
        let expected = expected_counts(&[2.0, 4.0, 0.0, 2.0], &[100.0, 100.0, 0.0, 200.0]).unwrap();
        assert_eq!(expected, vec![2.0, 2.0, 0.0, 4.0]);
    }

    #[test]
    fn unusable_populations_are_refused() {
        assert_eq!(
            expected_counts(&[1.0], &[1.0, 2.0]),
            Err(RateError::Lengths {
                counts: 1,
                populations: 2
            })
        );
        assert_eq!(expected_counts(&[1.0], &[-1.0]), Err(RateError::Population));
        assert_eq!(
            expected_counts(&[1.0], &[f64::NAN]),
            Err(RateError::Population)
        );
        assert_eq!(
            expected_counts(&[1.0, 2.0], &[0.0, 0.0]),
            Err(RateError::NoPopulation)
        );
    }

    /// scipy.stats.poisson (scipy 1.17.1): `2 * min(sf(n - 1, mu), cdf(n, mu))`, to 1e-12.
    #[test]
    fn poisson_tails_are_exact_for_unweighted_sums() {
        let cases = [
            (0, 2.5, 0.164_169_997_247_797_6),
            (7, 2.5, 0.028_374_623_981_826_694),
            (12, 2.5, 2.519_691_820_639_98e-5),
            (1, 0.05, 0.097_541_150_998_571_98),
            (3, 0.05, 4.013_498_724_879_586e-5),
            (40, 60.0, 0.007_965_619_004_545_937),
            (60, 60.0, 1.0),
        ];
        for (observed, mean, expected) in cases {
            let p = poisson_two_sided_p(observed, mean);
            assert!(
                close(p, expected),
                "{observed} on {mean}: {p:e} against {expected:e}"
            );
        }
        assert_eq!(poisson_two_sided_p(3, 0.0), 1.0);
    }

    proptest! {
        #[test]
        fn poisson_p_values_are_probabilities_and_fall_away_from_the_mean(
            mean in 0.01_f64..200.0,
            above in 0_u32..50,
        ) {
            #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "a small mean")]
            let start = mean.ceil() as u64;
            let at = |n: u64| poisson_two_sided_p(n, mean);
            let (p, further) = (at(start + u64::from(above)), at(start + u64::from(above) + 1));
            prop_assert!((0.0..=1.0).contains(&p));
            prop_assert!(further <= p + 1e-12);
        }
    }

    fn cell(lat: f64, lng: f64) -> CellIndex {
        LatLng::new(lat, lng).unwrap().to_cell(Resolution::Nine)
    }

    #[test]
    fn allocation_keeps_every_child_and_follows_the_postcodes() {
        let centre = cell(53.81, -3.04);
        let cells: Vec<CellIndex> = centre.grid_disk::<Vec<_>>(6);
        let west = LatLng::from(*cells.last().unwrap());
        let areas = [
            SmallArea {
                location: LatLng::from(centre),
                children: 300.0,
            },
            SmallArea {
                location: west,
                children: 100.0,
            },
        ];
        let mut postcodes = HashMap::new();
        postcodes.insert(centre, 3);
        let children = allocate(&cells, &areas, &postcodes);
        assert!(close(children.iter().sum(), 400.0));
        // The centre's area has postcodes in one cell only: all 300 children live there.
        assert!(close(children[0], 300.0));
        // The other area has none: its 100 children spread evenly over its cells.
        let spread: Vec<f64> = children
            .iter()
            .copied()
            .filter(|c| *c > 0.0 && *c < 300.0)
            .collect();
        assert!(!spread.is_empty());
        assert!(spread.iter().all(|c| close(*c, spread[0])));
        assert!(close(spread.iter().sum(), 100.0));
    }

    #[test]
    fn a_small_area_nearest_no_cell_keeps_its_children_in_its_own_cell() {
        let centre = cell(53.81, -3.04);
        let location = LatLng::from(centre);
        let beside = LatLng::new(location.lat() + 1e-5, location.lng()).unwrap();
        let areas = [
            SmallArea {
                location,
                children: 10.0,
            },
            SmallArea {
                location: beside,
                children: 5.0,
            },
        ];
        let children = allocate(&[centre], &areas, &HashMap::new());
        assert!(close(children[0], 15.0));
    }
}
