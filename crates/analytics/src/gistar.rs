//! Getis-Ord Gi* hotspot statistics on an H3 study area.
//!
//! The study area is every cell of a partnership's coverage at one resolution, zeros included.
//! Each cell's neighbourhood is its k-ring (k = 1 to 3) within the study area, itself included,
//! with binary weights. The statistic and its analytical moments follow PySAL esda's
//! `G_Local(y, w, transform="B", star=True)`; the committed fixtures in `tests/fixtures` (made
//! by `scripts/gistar_fixtures.py`) check z-scores and p-values against esda within 1e-9.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::num::NonZero;
use std::ops::Range;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use h3o::CellIndex;

use crate::hashing::KeyHasher;

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
    /// The analysis was stopped before it finished, because its caller has gone.
    #[error("the analysis was stopped: its caller has gone")]
    Stopped,
}

/// Below this many cells for each thread, splitting the work is not worth a thread.
const MIN_CELLS_PER_THREAD: usize = 8_192;

/// Splits `0..n` into contiguous ranges, one for each available core when `n` is large enough,
/// runs `work` on each (in scoped threads) and returns the results in order. Callers make each
/// cell's result depend only on its position, so nothing depends on the number of threads.
fn in_chunks<R: Send>(n: usize, work: impl Fn(Range<usize>) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, NonZero::get)
        .min(n / MIN_CELLS_PER_THREAD)
        .max(1);
    if threads == 1 {
        return vec![work(0..n)];
    }
    let size = n.div_ceil(threads);
    let work = &work;
    std::thread::scope(|scope| {
        let others: Vec<_> = (1..threads)
            .map(|chunk| scope.spawn(move || work(chunk * size..((chunk + 1) * size).min(n))))
            .collect();
        let mut results = vec![work(0..size)];
        results.extend(others.into_iter().map(|handle| {
            handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        }));
        results
    })
}

/// Every cell's neighbourhood at one k, flat: cell `i`'s members are at
/// `offsets[i]..offsets[i + 1]` of `positions` (in the area's order) and `distances` (grid
/// distances from `i`).
#[derive(Debug, Clone)]
struct Neighbourhoods {
    offsets: Vec<usize>,
    positions: Vec<u32>,
    distances: Vec<u8>,
}

impl Neighbourhoods {
    /// The members of cell `i`'s neighbourhood, itself included.
    fn of(&self, i: usize) -> Range<usize> {
        self.offsets[i]..self.offsets[i + 1]
    }
}

/// The cells analysed together, in a fixed order.
#[derive(Debug, Clone)]
pub struct StudyArea {
    cells: Vec<CellIndex>,
    index: HashMap<CellIndex, usize, BuildHasherDefault<KeyHasher>>,
    /// The neighbourhoods for k = 1, 2 and 3, each built on first use: walking k-rings and
    /// looking their cells up is most of the cost of Gi*, and a permutation test on the same
    /// area needs the same neighbourhoods again.
    neighbourhoods: [OnceLock<Neighbourhoods>; 3],
}

impl StudyArea {
    /// A study area of distinct cells of one resolution, in the order given (repeats dropped).
    ///
    /// # Errors
    /// [`GiStarError`] for no cells or mixed resolutions.
    pub fn new(cells: impl IntoIterator<Item = CellIndex>) -> Result<Self, GiStarError> {
        let cells = cells.into_iter();
        let (expected, _) = cells.size_hint();
        let mut ordered = Vec::with_capacity(expected);
        let mut index = HashMap::with_capacity_and_hasher(expected, BuildHasherDefault::default());
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
            neighbourhoods: Default::default(),
        })
    }

    /// The cells, in the study area's order.
    #[must_use]
    pub fn cells(&self) -> &[CellIndex] {
        &self.cells
    }

    /// An upper bound of the bytes the study area can take once every neighbourhood (k = 1 to
    /// 3) is built: its cells, their index and, for each k, an offset per cell and a position
    /// and distance per member of each full k-ring. What a cache of study areas budgets.
    #[must_use]
    pub fn max_heap_bytes(&self) -> usize {
        let cells = self.cells.len();
        // A hash table entry (cell, position) with its control byte, at the table's 7/8 load.
        let index = (size_of::<(CellIndex, usize)>() + 1) * 8 / 7;
        let neighbourhoods: usize = (1..=3_usize)
            .map(|k| {
                let members = 1 + 3 * k * (k + 1);
                (cells + 1) * size_of::<usize>()
                    + cells * members * (size_of::<u32>() + size_of::<u8>())
            })
            .sum();
        cells * (size_of::<CellIndex>() + index) + neighbourhoods
    }

    /// The positions of the cells of `cell`'s k-ring (itself included) that lie in the area.
    pub(crate) fn neighbourhood(&self, cell: CellIndex, k: u32) -> impl Iterator<Item = usize> {
        let positions: Vec<usize> = match (self.index.get(&cell), self.neighbourhoods(k)) {
            (Some(&i), Some(neighbourhoods)) => neighbourhoods.positions[neighbourhoods.of(i)]
                .iter()
                .map(|position| *position as usize)
                .collect(),
            _ => {
                let mut members = Vec::new();
                self.walk(cell, k, &mut members);
                members.into_iter().map(|(position, _)| position).collect()
            }
        };
        positions.into_iter()
    }

    /// Every cell's neighbourhood for k from 1 to 3 (built on first use), `None` for another k.
    fn neighbourhoods(&self, k: u32) -> Option<&Neighbourhoods> {
        let slot = self
            .neighbourhoods
            .get(usize::try_from(k.checked_sub(1)?).ok()?)?;
        Some(slot.get_or_init(|| self.build(k)))
    }

    /// Walks every cell's k-ring, across the available cores.
    fn build(&self, k: u32) -> Neighbourhoods {
        let chunks = in_chunks(self.cells.len(), |range| {
            let mut members = Vec::new();
            let mut ends = Vec::with_capacity(range.len());
            let (mut positions, mut distances) = (Vec::new(), Vec::new());
            for &cell in &self.cells[range] {
                self.walk(cell, k, &mut members);
                for &(position, distance) in &members {
                    positions.push(
                        u32::try_from(position).expect("study areas are far below 2^32 cells"),
                    );
                    distances.push(u8::try_from(distance).expect("k is at most 3"));
                }
                ends.push(positions.len());
            }
            (ends, positions, distances)
        });
        let total = chunks.iter().map(|(_, positions, _)| positions.len()).sum();
        let mut neighbourhoods = Neighbourhoods {
            offsets: Vec::with_capacity(self.cells.len() + 1),
            positions: Vec::with_capacity(total),
            distances: Vec::with_capacity(total),
        };
        neighbourhoods.offsets.push(0);
        for (ends, positions, distances) in chunks {
            let base = neighbourhoods.positions.len();
            neighbourhoods
                .offsets
                .extend(ends.into_iter().map(|end| base + end));
            neighbourhoods.positions.extend(positions);
            neighbourhoods.distances.extend(distances);
        }
        neighbourhoods
    }

    /// Replaces `members` with the positions of `cell`'s k-ring in the area and their grid
    /// distances from `cell`, in h3o's `grid_disk_distances` order, reusing the buffer.
    fn walk(&self, cell: CellIndex, k: u32, members: &mut Vec<(usize, u32)>) {
        members.clear();
        for item in cell.grid_disk_distances_fast(k) {
            let Some((neighbour, distance)) = item else {
                // Pentagon distortion: what the fast walk gave so far cannot be trusted.
                members.clear();
                members.extend(cell.grid_disk_distances_safe(k).filter_map(
                    |(neighbour, distance)| {
                        self.index
                            .get(&neighbour)
                            .map(|position| (*position, distance))
                    },
                ));
                return;
            };
            if let Some(position) = self.index.get(&neighbour) {
                members.push((*position, distance));
            }
        }
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
    #[expect(
        clippy::cast_precision_loss,
        reason = "study areas are far below 2^52 cells"
    )]
    let count = n as f64;
    let mean = values.iter().sum::<f64>() / count;
    let variance = values.iter().map(|value| value * value).sum::<f64>() / count - mean * mean;
    let deviation = variance.max(0.0).sqrt();
    let neighbourhoods = area.neighbourhoods(k).ok_or(GiStarError::RingSize(k))?;
    let kernel_weights: Vec<f64> = (0..=k).map(|d| kernel.weight(d, k)).collect();
    let (z, p): (Vec<f64>, Vec<f64>) = in_chunks(n, |range| {
        range
            .map(|i| {
                let members = neighbourhoods.of(i);
                let (mut weights, mut squares, mut local) = (0.0, 0.0, 0.0);
                for (&neighbour, &distance) in neighbourhoods.positions[members.clone()]
                    .iter()
                    .zip(&neighbourhoods.distances[members])
                {
                    let weight = kernel_weights[usize::from(distance)];
                    weights += weight;
                    squares += weight * weight;
                    local += weight * values[neighbour as usize];
                }
                let spread =
                    deviation * ((count * squares - weights * weights) / (count - 1.0)).sqrt();
                // A zero or NaN spread (no variation, or one neighbourhood covering everything)
                // means no evidence either way.
                let score = if spread.is_nan() || spread <= f64::EPSILON * (1.0 + mean.abs()) {
                    0.0
                } else {
                    (local - mean * weights) / spread
                };
                (score, two_sided_p(score))
            })
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .unzip();
    Ok(GiStar { z, p })
}

/// Pseudo p-values by conditional randomisation, as PySAL esda's `p_sim`: for each cell, its
/// own value stays and the other members of its neighbourhood are drawn at random, without
/// replacement, from the remaining cells, `permutations` times; the p-value is the share of
/// draws at least as extreme as the observed local sum in the nearer tail,
/// `(extreme + 1) / (permutations + 1)` — one-sided, like esda's; double it (capped at 1) for a
/// two-sided test. Unlike esda, a draw equal to the observed sum counts in both tails, so ties
/// (common with sparse counts) never make a cell look extreme. Seeded, so the same question
/// gives the same answer (whatever the number of threads).
///
/// As esda's `crand` does, one table of draws serves every cell: `permutations` rows of
/// `m` distinct positions from `0..n − 1`, `m` the largest neighbourhood less its centre. Cell
/// `i` with `c` other members takes the first `c` positions of each row, a position `j ≥ i`
/// standing for cell `j + 1`, so that `i` itself is never drawn. Each cell's p-value is still
/// a valid permutation test; the cells' draws are not independent of one another, as in esda.
///
/// The work stops, with [`GiStarError::Stopped`], soon after `stop` is set (the caller has gone).
///
/// # Errors
/// As [`gi_star`], for zero permutations, and when `stop` is set.
pub fn permutation_p(
    area: &StudyArea,
    values: &[f64],
    k: u32,
    permutations: u32,
    seed: u64,
    stop: &AtomicBool,
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
    let neighbourhoods = area.neighbourhoods(k).ok_or(GiStarError::RingSize(k))?;
    // Each cell's observed local sum and the number of other cells in its neighbourhood (the
    // cell itself is always a member).
    let observed: Vec<(f64, usize)> = (0..n)
        .map(|i| {
            let members = &neighbourhoods.positions[neighbourhoods.of(i)];
            let local = members.iter().map(|j| values[*j as usize]).sum();
            (local, members.len() - 1)
        })
        .collect();
    let rows = permutations as usize;
    let width = observed
        .iter()
        .map(|(_, others)| *others)
        .max()
        .unwrap_or(0);
    // draws[row * width + m]: the table of draws, row by row.
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let draws: Vec<usize> = if width == 0 {
        Vec::new()
    } else {
        (0..rows)
            .flat_map(|_| sample(&mut rng, n - 1, width))
            .collect()
    };
    // Slots of the table in increasing order of the position drawn: sweeping the cells in
    // order, slot s stops standing for cell draws[s] + 1 and starts standing for draws[s] once
    // the sweep passes draws[s].
    let mut by_position: Vec<usize> = (0..draws.len()).collect();
    by_position.sort_unstable_by_key(|slot| draws[*slot]);
    let p = in_chunks(n, |range| {
        let start = range.start;
        // For the cell i being swept: the value each slot stands for, and sums[c * rows + row],
        // the sum of the first c values of the row (c from 0 to width).
        let mut slot_values: Vec<f64> = draws
            .iter()
            .map(|&j| values[if j < start { j } else { j + 1 }])
            .collect();
        let mut sums = vec![0.0; (width + 1) * rows];
        let refresh = |row: usize, slot_values: &[f64], sums: &mut [f64]| {
            let mut sum = 0.0;
            for (m, value) in slot_values[row * width..(row + 1) * width]
                .iter()
                .enumerate()
            {
                sum += value;
                sums[(m + 1) * rows + row] = sum;
            }
        };
        for row in 0..rows {
            refresh(row, &slot_values, &mut sums);
        }
        let mut next = by_position.partition_point(|slot| draws[*slot] < start);
        let mut p = Vec::with_capacity(range.len());
        for i in range {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            while let Some(&slot) = by_position.get(next).filter(|slot| draws[**slot] < i) {
                slot_values[slot] = values[draws[slot]];
                refresh(slot / width, &slot_values, &mut sums);
                next += 1;
            }
            let (local, others) = observed[i];
            let own = values[i];
            // Ties count in both tails: with sparse counts many draws equal the observed sum,
            // and counting them only in the upper tail (as esda does) would make every
            // all-zero neighbourhood look like a significant cold spot.
            let (larger, smaller) = sums[others * rows..(others + 1) * rows].iter().fold(
                (0_u32, 0_u32),
                |(larger, smaller), sum| {
                    let simulated = own + sum;
                    (
                        larger + u32::from(simulated >= local),
                        smaller + u32::from(simulated <= local),
                    )
                },
            );
            let extreme = larger.min(smaller);
            p.push(f64::from(extreme + 1) / f64::from(permutations + 1));
        }
        p
    })
    .concat();
    if stop.load(Ordering::Relaxed) {
        return Err(GiStarError::Stopped);
    }
    Ok(p)
}

/// Two-sided p-values of every cell's Gi* local sum under the randomisation null of the
/// z-score (every member of the neighbourhood, the cell included, a draw from the area's
/// values), computed exactly or by saddle-point ([`crate::randomisation`]) rather than by the
/// normal approximation. Valid for sparse counts, where the normal p-values of [`gi_star`] find
/// false hotspots, and not limited in how small a p-value it can give, as permutations are
/// (docs/analytics.md, "Sparse counts").
///
/// # Errors
/// As [`gi_star`].
pub fn randomisation_p(
    area: &StudyArea,
    values: &[f64],
    k: u32,
    kernel: Kernel,
) -> Result<Vec<f64>, GiStarError> {
    use crate::randomisation::{LocalSum, Randomisation, Ring};
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
    let neighbourhoods = area.neighbourhoods(k).ok_or(GiStarError::RingSize(k))?;
    let randomisation = Randomisation::new(values);
    let kernel_weights: Vec<f64> = (0..=k).map(|d| kernel.weight(d, k)).collect();
    Ok(in_chunks(n, |range| {
        // Cells with the same ring sizes share a distribution, and with the same local sum an
        // answer: with sparse counts most cells do.
        let mut distributions: HashMap<[u16; 4], LocalSum<'_>> = HashMap::new();
        let mut answers: HashMap<([u16; 4], u64), f64> = HashMap::new();
        range
            .map(|i| {
                let members = neighbourhoods.of(i);
                let (mut sizes, mut local) = ([0_u16; 4], 0.0);
                for (&neighbour, &distance) in neighbourhoods.positions[members.clone()]
                    .iter()
                    .zip(&neighbourhoods.distances[members])
                {
                    sizes[usize::from(distance)] += 1;
                    local += kernel_weights[usize::from(distance)] * values[neighbour as usize];
                }
                *answers.entry((sizes, local.to_bits())).or_insert_with(|| {
                    distributions
                        .entry(sizes)
                        .or_insert_with(|| {
                            let rings: Vec<Ring> = sizes
                                .iter()
                                .zip(&kernel_weights)
                                .map(|(size, weight)| Ring {
                                    weight: *weight,
                                    members: u32::from(*size),
                                })
                                .collect();
                            randomisation.local_sum(&rings)
                        })
                        .two_sided_p(local)
                })
            })
            .collect::<Vec<_>>()
    })
    .concat())
}

/// Gi*'s local sum set against the children living there rather than against the study area's
/// mean: for each cell, the count of its k-ring neighbourhood `S = Σ_j count_j` against its
/// expectation `μ = Σ_j expected_j` under the same risk everywhere, where counts are Poisson
/// ([`crate::rates::expected_counts`]), so that `S` is Poisson with mean `μ`. The z-score is
/// `(S − μ) / √μ` and the p-value the exact two-sided Poisson tail of `S`
/// ([`crate::rates::poisson_two_sided_p`]). Unweighted (the uniform kernel): a weighted sum of
/// Poisson counts has no exact tail this simple. A neighbourhood where no child lives has no
/// expectation to exceed: z = 0, p = 1. Counts are whole numbers (fractions are rounded down).
///
/// Unlike the randomisation test on standardised rates, this asks of each cell what its own
/// population makes likely: a busy town and an empty moor are not draws from one distribution
/// (docs/analytics.md, "Population-adjusted hotspots").
///
/// # Errors
/// As [`gi_star`], also when `expected` does not match the area.
pub fn excess_over_expected(
    area: &StudyArea,
    counts: &[f64],
    expected: &[f64],
    k: u32,
) -> Result<GiStar, GiStarError> {
    if !(1..=3).contains(&k) {
        return Err(GiStarError::RingSize(k));
    }
    let n = area.cells.len();
    for given in [counts.len(), expected.len()] {
        if given != n {
            return Err(GiStarError::ValueCount {
                cells: n,
                values: given,
            });
        }
    }
    let neighbourhoods = area.neighbourhoods(k).ok_or(GiStarError::RingSize(k))?;
    let (z, p): (Vec<f64>, Vec<f64>) = in_chunks(n, |range| {
        range
            .map(|i| {
                let (mut observed, mut mean) = (0.0, 0.0);
                for &neighbour in &neighbourhoods.positions[neighbourhoods.of(i)] {
                    observed += counts[neighbour as usize];
                    mean += expected[neighbour as usize];
                }
                if mean <= 0.0 {
                    return (0.0, 1.0);
                }
                #[expect(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    reason = "a non-negative count far below 2^52"
                )]
                let whole = observed.max(0.0) as u64;
                (
                    (observed - mean) / mean.sqrt(),
                    crate::rates::poisson_two_sided_p(whole, mean),
                )
            })
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .unzip();
    Ok(GiStar { z, p })
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
    #[expect(clippy::cast_precision_loss, reason = "far below 2^52 tests")]
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
    fn the_size_bound_holds_once_every_neighbourhood_is_built() {
        let centre = h3o::LatLng::new(54.0, -1.5)
            .unwrap()
            .to_cell(h3o::Resolution::Nine);
        let area = StudyArea::new(centre.grid_disk::<Vec<_>>(60)).unwrap();
        for k in 1..=3 {
            assert!(area.neighbourhoods(k).is_some());
        }
        let built: usize = area
            .neighbourhoods
            .iter()
            .filter_map(OnceLock::get)
            .map(|built| {
                built.offsets.capacity() * size_of::<usize>()
                    + built.positions.capacity() * size_of::<u32>()
                    + built.distances.capacity()
            })
            .sum();
        let actual = area.cells.capacity() * size_of::<CellIndex>()
            + area.index.capacity() * (size_of::<(CellIndex, usize)>() + 1)
            + built;
        assert!(
            area.max_heap_bytes() >= actual,
            "{} < {actual}",
            area.max_heap_bytes()
        );
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
        let first = permutation_p(&area, &values, 1, 99, 7, &AtomicBool::new(false)).unwrap();
        assert_eq!(
            first,
            permutation_p(&area, &values, 1, 99, 7, &AtomicBool::new(false)).unwrap(),
            "same seed, same answer"
        );
        let centre_position = area.cells().iter().position(|c| *c == centre).unwrap();
        assert!(
            (first[centre_position] - 0.01).abs() < 1e-12,
            "no draw beats the planted centre"
        );
        assert!(
            first.iter().all(|p| (0.01..=1.0).contains(p)),
            "pseudo p-values from 1 / (permutations + 1) to 1"
        );
        assert_eq!(
            permutation_p(&area, &values, 1, 0, 7, &AtomicBool::new(false)).unwrap_err(),
            GiStarError::Permutations
        );
        // Once its caller has gone, the test stops instead of running on.
        assert_eq!(
            permutation_p(&area, &values, 1, 99, 7, &AtomicBool::new(true)).unwrap_err(),
            GiStarError::Stopped
        );
    }

    #[test]
    fn neighbourhoods_around_a_pentagon_are_the_k_rings_within_the_area() {
        let pentagon = h3o::Resolution::Eight.pentagons().next().unwrap();
        let disk: Vec<CellIndex> = pentagon.grid_disk(5);
        // A ragged area (every third cell dropped) so that some k-ring members are missing; the
        // dropped cells are asked about too (not in the area: walked, not cached).
        let cells: Vec<CellIndex> = disk
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 != 1)
            .map(|(_, cell)| *cell)
            .collect();
        let area = StudyArea::new(cells.clone()).unwrap();
        for k in 1..=3 {
            for &cell in &disk {
                let mut ours: Vec<CellIndex> = area
                    .neighbourhood(cell, k)
                    .map(|position| cells[position])
                    .collect();
                let mut expected: Vec<CellIndex> = cell
                    .grid_disk::<Vec<_>>(k)
                    .into_iter()
                    .filter(|member| cells.contains(member))
                    .collect();
                ours.sort_unstable();
                expected.sort_unstable();
                assert_eq!(ours, expected, "{cell} k = {k}");
            }
        }
        let values: Vec<f64> = (0..cells.len())
            .map(|i| f64::from(u8::try_from(i % 5).unwrap()))
            .collect();
        assert!(
            gi_star(&area, &values, 2, Kernel::Gaussian)
                .unwrap()
                .z
                .iter()
                .all(|z| z.is_finite())
        );
    }

    #[test]
    fn the_permutation_sweep_equals_drawing_for_each_cell_from_one_table() {
        use rand::{SeedableRng as _, seq::index::sample};
        // Large enough to be split across threads where there are several cores.
        let centre = h3o::LatLng::new(53.8, -3.04)
            .unwrap()
            .to_cell(h3o::Resolution::Eight);
        let area = StudyArea::new(centre.grid_disk::<Vec<_>>(75)).unwrap();
        let n = area.cells().len();
        assert!(n >= 2 * MIN_CELLS_PER_THREAD);
        // Small counts, so that draws often tie with the observed sum.
        let values: Vec<f64> = (0..n)
            .map(|i| f64::from(u32::try_from(i * 7919 % 11).unwrap() % 4))
            .collect();
        let (permutations, seed) = (99, 11);
        let ours = permutation_p(
            &area,
            &values,
            1,
            permutations,
            seed,
            &AtomicBool::new(false),
        )
        .unwrap();

        let members: Vec<Vec<usize>> = area
            .cells()
            .iter()
            .map(|cell| area.neighbourhood(*cell, 1).collect())
            .collect();
        let width = members.iter().map(Vec::len).max().unwrap() - 1;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let table: Vec<Vec<usize>> = (0..permutations)
            .map(|_| sample(&mut rng, n - 1, width).into_vec())
            .collect();
        for (i, members) in members.iter().enumerate() {
            let observed: f64 = members.iter().map(|j| values[*j]).sum();
            let simulated: Vec<f64> = table
                .iter()
                .map(|row| {
                    values[i]
                        + row[..members.len() - 1]
                            .iter()
                            .map(|&j| values[if j >= i { j + 1 } else { j }])
                            .sum::<f64>()
                })
                .collect();
            let count = |keep: &dyn Fn(f64) -> bool| {
                u32::try_from(simulated.iter().filter(|sum| keep(**sum)).count()).unwrap()
            };
            let larger = count(&|sum| sum >= observed);
            let smaller = count(&|sum| sum <= observed);
            let expected = f64::from(larger.min(smaller) + 1) / f64::from(permutations + 1);
            assert_eq!(ours[i], expected, "cell {i}");
        }
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
