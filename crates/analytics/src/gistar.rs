//! Getis-Ord Gi* hotspot statistics on an H3 study area.
//!
//! The study area is every cell of a partnership's coverage at one resolution, zeros included.
//! Each cell's neighbourhood is its k-ring (k = 1 to 3) within the study area, itself included,
//! with binary weights. The statistic and its analytical moments follow PySAL esda's
//! `G_Local(y, w, transform="B", star=True)`; the committed fixtures in `tests/fixtures` (made
//! by `scripts/gistar_fixtures.py`) check z-scores and p-values against esda within 1e-9.

use std::collections::HashMap;

use h3o::CellIndex;

/// Why a statistic cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GiStarError {
    /// The study area is empty.
    #[error("the study area has no cells")]
    EmptyStudyArea,
    /// Cells of different resolutions were mixed.
    #[error("the study area mixes H3 resolutions")]
    MixedResolutions,
    /// There is not one value per cell.
    #[error("{values} values for {cells} cells")]
    ValueCount {
        /// Cells in the study area.
        cells: usize,
        /// Values given.
        values: usize,
    },
    /// A permutation test needs at least one permutation.
    #[error("permutations must be at least 1")]
    Permutations,
    /// The neighbourhood size is outside 1 to 3.
    #[error("k = {0} is not supported: choose 1, 2 or 3")]
    RingSize(u32),
}

/// The cells analysed together, in a fixed order.
#[derive(Debug, Clone)]
pub struct StudyArea {
    cells: Vec<CellIndex>,
    index: HashMap<CellIndex, usize>,
}

impl StudyArea {
    /// A study area of distinct cells of one resolution, in the order given (repeats dropped).
    ///
    /// # Errors
    /// [`GiStarError`] for no cells or mixed resolutions.
    pub fn new(cells: impl IntoIterator<Item = CellIndex>) -> Result<Self, GiStarError> {
        let mut ordered = Vec::new();
        let mut index = HashMap::new();
        for cell in cells {
            if let std::collections::hash_map::Entry::Vacant(slot) = index.entry(cell) {
                slot.insert(ordered.len());
                ordered.push(cell);
            }
        }
        let first = ordered.first().ok_or(GiStarError::EmptyStudyArea)?;
        if ordered
            .iter()
            .any(|cell| cell.resolution() != first.resolution())
        {
            return Err(GiStarError::MixedResolutions);
        }
        Ok(Self {
            cells: ordered,
            index,
        })
    }

    /// The cells, in the study area's order.
    #[must_use]
    pub fn cells(&self) -> &[CellIndex] {
        &self.cells
    }

    /// The positions of the cells of `cell`'s k-ring (itself included) that lie in the area.
    pub(crate) fn neighbourhood(
        &self,
        cell: CellIndex,
        k: u32,
    ) -> impl Iterator<Item = usize> + '_ {
        self.neighbourhood_distances(cell, k)
            .map(|(position, _)| position)
    }

    /// [`Self::neighbourhood`] with each member's grid distance from `cell`.
    fn neighbourhood_distances(
        &self,
        cell: CellIndex,
        k: u32,
    ) -> impl Iterator<Item = (usize, u32)> + '_ {
        cell.grid_disk_distances::<Vec<_>>(k)
            .into_iter()
            .filter_map(|(neighbour, distance)| {
                self.index
                    .get(&neighbour)
                    .map(|position| (*position, distance))
            })
    }
}

/// How a neighbour's weight falls with its grid distance `d` (0 for the cell itself) within a
/// k-ring, with bandwidth `h = k + 1` (so the ring's edge keeps some weight), as CARTO's
/// GETIS_ORD_H3 offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kernel {
    /// Every member of the k-ring weighs 1 (binary weights; esda's `transform="B"`).
    #[default]
    Uniform,
    /// `1 − d / h`.
    Triangular,
    /// `exp(−½ (d / h)²)`.
    Gaussian,
}

impl Kernel {
    /// The weight of a neighbour at grid distance `d` in a `k`-ring.
    #[must_use]
    pub fn weight(self, d: u32, k: u32) -> f64 {
        let ratio = f64::from(d) / f64::from(k + 1);
        match self {
            Self::Uniform => 1.0,
            Self::Triangular => 1.0 - ratio,
            Self::Gaussian => (-0.5 * ratio * ratio).exp(),
        }
    }
}

/// Gi* for every cell of a study area, in the area's order.
#[derive(Debug, Clone, PartialEq)]
pub struct GiStar {
    /// z-scores.
    pub z: Vec<f64>,
    /// Two-sided p-values from the standard normal.
    pub p: Vec<f64>,
}

/// Computes Gi* (Ord and Getis 1995, the star form: each cell in its own neighbourhood) with
/// k-ring weights shaped by `kernel`:
///
/// `z_i = (Σ_j w_ij x_j − x̄ W_i) / (s √((n S_i − W_i²) / (n − 1)))`, where `W_i = Σ_j w_ij`,
/// `S_i = Σ_j w_ij²`, `x̄` the mean and `s` the population standard deviation of all values.
/// With the uniform kernel this is esda's `G_Local(transform="B", star=True)`. When the values
/// do not vary (all equal, or all zero) or a neighbourhood covers the whole area, there is no
/// evidence of clustering: z = 0, p = 1.
///
/// # Errors
/// [`GiStarError`] for a value count that does not match the area or k outside 1 to 3.
pub fn gi_star(
    area: &StudyArea,
    values: &[f64],
    k: u32,
    kernel: Kernel,
) -> Result<GiStar, GiStarError> {
    if !(1..=3).contains(&k) {
        return Err(GiStarError::RingSize(k));
    }
    let n = area.cells.len();
    if values.len() != n {
        return Err(GiStarError::ValueCount {
            cells: n,
            values: values.len(),
        });
    }
    #[allow(
        clippy::cast_precision_loss,
        reason = "study areas are far below 2^52 cells"
    )]
    let count = n as f64;
    let mean = values.iter().sum::<f64>() / count;
    let variance = values.iter().map(|value| value * value).sum::<f64>() / count - mean * mean;
    let deviation = variance.max(0.0).sqrt();
    let mut z = Vec::with_capacity(n);
    for &cell in &area.cells {
        let (mut weights, mut squares, mut local) = (0.0, 0.0, 0.0);
        for (neighbour, distance) in area.neighbourhood_distances(cell, k) {
            let weight = kernel.weight(distance, k);
            weights += weight;
            squares += weight * weight;
            local += weight * values[neighbour];
        }
        let spread = deviation * ((count * squares - weights * weights) / (count - 1.0)).sqrt();
        // A zero or NaN spread (no variation, or one neighbourhood covering everything) means
        // no evidence either way.
        let score = if spread.is_nan() || spread <= f64::EPSILON * (1.0 + mean.abs()) {
            0.0
        } else {
            (local - mean * weights) / spread
        };
        z.push(score);
    }
    let p = z.iter().map(|score| two_sided_p(*score)).collect();
    Ok(GiStar { z, p })
}

/// Pseudo p-values by conditional randomisation, as PySAL esda's `p_sim`: for each cell, its
/// own value stays and the other members of its neighbourhood are drawn at random, without
/// replacement, from the remaining cells, `permutations` times; the p-value is the share of
/// draws at least as extreme as the observed local sum, folded to the nearer tail,
/// `(extreme + 1) / (permutations + 1)`. Seeded, so the same question gives the same answer.
///
/// # Errors
/// As [`gi_star`], and for zero permutations.
pub fn permutation_p(
    area: &StudyArea,
    values: &[f64],
    k: u32,
    permutations: u32,
    seed: u64,
) -> Result<Vec<f64>, GiStarError> {
    use rand::{SeedableRng as _, seq::index::sample};
    if !(1..=3).contains(&k) {
        return Err(GiStarError::RingSize(k));
    }
    if permutations == 0 {
        return Err(GiStarError::Permutations);
    }
    let n = area.cells.len();
    if values.len() != n {
        return Err(GiStarError::ValueCount {
            cells: n,
            values: values.len(),
        });
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut p = Vec::with_capacity(n);
    for (i, &cell) in area.cells.iter().enumerate() {
        let members: Vec<usize> = area.neighbourhood(cell, k).collect();
        let observed: f64 = members.iter().map(|j| values[*j]).sum();
        let others = members.len() - 1;
        let mut larger = 0_u32;
        for _ in 0..permutations {
            // Draw from the n - 1 other cells: positions at or after i shift by one.
            let simulated: f64 = values[i]
                + sample(&mut rng, n - 1, others)
                    .into_iter()
                    .map(|j| values[if j >= i { j + 1 } else { j }])
                    .sum::<f64>();
            larger += u32::from(simulated >= observed);
        }
        let extreme = larger.min(permutations - larger);
        p.push(f64::from(extreme + 1) / f64::from(permutations + 1));
    }
    Ok(p)
}

/// The two-sided p-value of a standard normal z-score.
#[must_use]
pub fn two_sided_p(z: f64) -> f64 {
    libm::erfc(z.abs() / std::f64::consts::SQRT_2)
}

/// Benjamini–Hochberg: which p-values are discoveries at false-discovery rate `alpha`.
#[must_use]
pub fn benjamini_hochberg(p: &[f64], alpha: f64) -> Vec<bool> {
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|a, b| p[*a].total_cmp(&p[*b]));
    #[allow(clippy::cast_precision_loss, reason = "far below 2^52 tests")]
    let m = p.len() as f64;
    let cutoff = order
        .iter()
        .enumerate()
        .filter(|(rank, index)| p[**index] <= (*rank as f64 + 1.0) / m * alpha)
        .map(|(_, index)| p[*index])
        .next_back()
        .unwrap_or(f64::NEG_INFINITY);
    p.iter().map(|value| *value <= cutoff).collect()
}

/// ArcGIS-style confidence bins after false-discovery control of the p-values `p`: ±3 for
/// 99 %, ±2 for 95 %, ±1 for 90 % confidence (the sign of the z-score), 0 otherwise.
#[must_use]
pub fn confidence_bins(z: &[f64], p: &[f64]) -> Vec<i8> {
    let levels = [
        (3_i8, benjamini_hochberg(p, 0.01)),
        (2, benjamini_hochberg(p, 0.05)),
        (1, benjamini_hochberg(p, 0.10)),
    ];
    z.iter()
        .enumerate()
        .map(|(i, z)| {
            let level = levels
                .iter()
                .find(|(_, significant)| significant[i])
                .map_or(0, |(level, _)| *level);
            if *z < 0.0 { -level } else { level }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn benjamini_hochberg_matches_a_hand_computation() {
        // m = 5, alpha = 0.05: thresholds 0.01, 0.02, 0.03, 0.04, 0.05; the largest rank whose p
        // is under its threshold is 3 (0.025 <= 0.03; 0.045 > 0.04), so the three smallest are
        // discoveries.
        let p = [0.045, 0.001, 0.2, 0.025, 0.012];
        assert_eq!(
            benjamini_hochberg(&p, 0.05),
            [false, true, false, true, true]
        );
        assert_eq!(benjamini_hochberg(&[], 0.05), Vec::<bool>::new());
    }

    #[test]
    fn two_sided_p_values_are_textbook() {
        assert!((two_sided_p(1.959_963_984_540_054) - 0.05).abs() < 1e-12);
        assert!((two_sided_p(-2.575_829_303_548_901) - 0.01).abs() < 1e-12);
        assert_eq!(two_sided_p(0.0), 1.0);
    }

    #[test]
    fn constant_values_show_no_clustering_and_bad_input_is_refused() {
        let centre = h3o::LatLng::new(53.8, -3.04)
            .unwrap()
            .to_cell(h3o::Resolution::Eight);
        let area = StudyArea::new(centre.grid_disk::<Vec<_>>(3)).unwrap();
        let result = gi_star(&area, &vec![4.0; area.cells().len()], 1, Kernel::Uniform).unwrap();
        assert!(result.z.iter().all(|z| *z == 0.0) && result.p.iter().all(|p| *p == 1.0));
        assert_eq!(
            gi_star(&area, &[1.0], 1, Kernel::Uniform).unwrap_err(),
            GiStarError::ValueCount {
                cells: 37,
                values: 1
            }
        );
        assert_eq!(
            gi_star(&area, &vec![0.0; 37], 4, Kernel::Uniform).unwrap_err(),
            GiStarError::RingSize(4)
        );
        assert_eq!(StudyArea::new([]).unwrap_err(), GiStarError::EmptyStudyArea);
    }

    #[test]
    fn permutation_p_values_are_seeded_and_find_a_planted_cluster() {
        let centre = h3o::LatLng::new(53.8, -3.04)
            .unwrap()
            .to_cell(h3o::Resolution::Eight);
        let area = StudyArea::new(centre.grid_disk::<Vec<_>>(6)).unwrap();
        let mut values: Vec<f64> = (0..area.cells().len())
            .map(|i| f64::from(u32::try_from(i % 3).unwrap()))
            .collect();
        for cell in centre.grid_disk::<Vec<_>>(1) {
            let position = area.cells().iter().position(|c| *c == cell).unwrap();
            values[position] += 20.0;
        }
        let first = permutation_p(&area, &values, 1, 99, 7).unwrap();
        assert_eq!(
            first,
            permutation_p(&area, &values, 1, 99, 7).unwrap(),
            "same seed, same answer"
        );
        let centre_position = area.cells().iter().position(|c| *c == centre).unwrap();
        assert!(
            (first[centre_position] - 0.01).abs() < 1e-12,
            "no draw beats the planted centre"
        );
        assert!(
            first.iter().all(|p| (0.01..=0.5).contains(p)),
            "folded pseudo p-values"
        );
        assert_eq!(
            permutation_p(&area, &values, 1, 0, 7).unwrap_err(),
            GiStarError::Permutations
        );
    }

    proptest! {
        #[test]
        fn discoveries_are_a_prefix_of_the_sorted_p_values(p in proptest::collection::vec(0.0..1.0_f64, 0..60)) {
            let found = benjamini_hochberg(&p, 0.05);
            let largest_found = p.iter().zip(&found).filter(|(_, f)| **f).map(|(p, _)| *p).fold(f64::NEG_INFINITY, f64::max);
            for (value, discovered) in p.iter().zip(&found) {
                prop_assert_eq!(*discovered, *value <= largest_found);
            }
        }
    }
}
