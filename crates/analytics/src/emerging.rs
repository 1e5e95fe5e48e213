//! Emerging hotspots, after ArcGIS's Emerging Hot Spot Analysis: a space-time cube of counts
//! (cells × time steps), space-time Gi* (each bin's neighbourhood is its k-ring in its own step
//! and the `time_lag` steps before), a Mann–Kendall trend test on each cell's series of z-scores,
//! and the 17 categories (new, consecutive, intensifying, persistent, diminishing, sporadic,
//! oscillating and historical hot and cold spots, and no pattern). docs/analytics.md states the
//! rules.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{Datelike as _, Days, Months, NaiveDate};
use h3o::{CellIndex, Resolution};

use crate::gistar::{GiStarError, StudyArea, benjamini_hochberg, two_sided_p};
use crate::grid::Filter;
use crate::randomisation::{LocalSum, Randomisation, Ring};
use atlas_domain::CaseRecord;

/// The fewest time steps an analysis accepts (as ArcGIS requires): the trend test has little
/// power below it.
pub const MIN_STEPS: usize = 10;

/// The most bins (cells × steps) one analysis may build: the cube, its z-scores and p-values
/// are held at once.
pub const MAX_BINS: usize = 2_000_000;

/// The most cells × steps² one analysis may ask for: Mann–Kendall compares every pair of a
/// cell's steps.
pub const MAX_TREND_WORK: usize = 500_000_000;

/// The most cells × steps × k-ring cells × (time lag + 1) one analysis may ask for: space-time
/// Gi* sums each bin's neighbourhood.
pub const MAX_NEIGHBOURHOOD_WORK: usize = 500_000_000;

/// An analysis refused before it starts: more work than one request may ask for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{cells} cells over {steps} time steps is {work} {measure}, more work than one request may \
     ask for (at most {limit} {measure}): {advice}"
)]
pub struct OverBudget {
    /// Cells of the study area.
    pub cells: usize,
    /// Time steps.
    pub steps: usize,
    /// What is counted, such as `cells × steps²`.
    pub measure: &'static str,
    /// The work asked for, in that measure.
    pub work: usize,
    /// The most allowed.
    pub limit: usize,
    /// What to change.
    pub advice: &'static str,
}

/// Checks an analysis of `cells` cells over `steps` time steps, with k-rings of size `k` and
/// `time_lag`, against [`MAX_BINS`], [`MAX_TREND_WORK`] and [`MAX_NEIGHBOURHOOD_WORK`].
///
/// # Errors
/// [`OverBudget`] naming the first limit passed and what to change.
pub fn check_budget(cells: usize, steps: usize, k: u32, time_lag: usize) -> Result<(), OverBudget> {
    let ring = 1 + 3 * (k as usize) * (k as usize + 1);
    let bins = cells.saturating_mul(steps);
    let checks = [
        (
            "cells × steps",
            bins,
            MAX_BINS,
            "ask for a coarser resolution, a longer step or a shorter period",
        ),
        (
            "cells × steps²",
            bins.saturating_mul(steps),
            MAX_TREND_WORK,
            "ask for a coarser resolution, a longer step or a shorter period",
        ),
        (
            "cells × steps × k-ring cells × (time_lag + 1)",
            bins.saturating_mul(ring)
                .saturating_mul(time_lag.saturating_add(1)),
            MAX_NEIGHBOURHOOD_WORK,
            "ask for a smaller k or time_lag, a coarser resolution, a longer step or a shorter period",
        ),
    ];
    checks
        .into_iter()
        .find(|(_, work, limit, _)| work > limit)
        .map_or(Ok(()), |(measure, work, limit, advice)| {
            Err(OverBudget {
                cells,
                steps,
                measure,
                work,
                limit,
                advice,
            })
        })
}

/// The length of one time step of the cube.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Monday to Sunday.
    Week,
    /// A calendar month.
    Month,
    /// A calendar quarter.
    Quarter,
}

impl Step {
    /// The first day of the step holding `day`.
    #[must_use]
    pub fn start_of(self, day: NaiveDate) -> NaiveDate {
        match self {
            Self::Week => day - Days::new(u64::from(day.weekday().num_days_from_monday())),
            Self::Month => day.with_day(1).unwrap_or(day),
            Self::Quarter => {
                NaiveDate::from_ymd_opt(day.year(), (day.month0() / 3) * 3 + 1, 1).unwrap_or(day)
            }
        }
    }

    /// The first day of the step after the one starting on `start`.
    #[must_use]
    pub fn next(self, start: NaiveDate) -> NaiveDate {
        match self {
            Self::Week => start + Days::new(7),
            Self::Month => start + Months::new(1),
            Self::Quarter => start + Months::new(3),
        }
    }

    /// The whole steps an analysis asked from `from` to `to` covers on `today`: `from` snaps
    /// to its step's first day and `to` to its step's last, so no step is part-counted (a
    /// part-counted first or last step would look like a rise or a fall); steps not ended by
    /// `today` are left out. Returns the steps' starts, the last day of the last one (`from`'s
    /// step start less a day when none is left), and the start of the first step left out, if
    /// any.
    #[must_use]
    pub fn whole(
        self,
        from: NaiveDate,
        to: NaiveDate,
        today: NaiveDate,
    ) -> (Vec<NaiveDate>, NaiveDate, Option<NaiveDate>) {
        let open = self.start_of(today);
        let asked_end = self.next(self.start_of(to));
        let end = asked_end.min(open);
        let left_out = (asked_end > open).then_some(open);
        let mut starts = Vec::new();
        let mut start = self.start_of(from);
        while start < end {
            starts.push(start);
            start = self.next(start);
        }
        let last = end.pred_opt().unwrap_or(end);
        (starts, last, left_out)
    }

    /// The starts of the steps covering `from` to `to`, inclusive.
    #[must_use]
    pub fn starts(self, from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
        let mut starts = Vec::new();
        let mut start = self.start_of(from);
        while start <= to {
            starts.push(start);
            start = self.next(start);
        }
        starts
    }
}

/// Counts per cell (at `resolution`) and time step: records, or distinct subjects when
/// `by_subjects`. `starts` are the steps' first days, ascending; records outside them are left
/// out. Cells are keyed by their index; each series has one value per step.
#[must_use]
pub fn cube<'a>(
    records: impl IntoIterator<Item = &'a CaseRecord>,
    resolution: Resolution,
    filter: &Filter,
    starts: &[NaiveDate],
    step: Step,
    by_subjects: bool,
) -> HashMap<CellIndex, Vec<u32>> {
    let Some((&first, &last)) = starts.first().zip(starts.last()) else {
        return HashMap::new();
    };
    let end = step.next(last);
    let mut counts: HashMap<CellIndex, Vec<u32>> = HashMap::new();
    let mut seen: HashSet<(CellIndex, usize, u64)> = HashSet::new();
    for record in records {
        if record.occurred_on < first || record.occurred_on >= end || !filter.matches(record) {
            continue;
        }
        let Some(cell) = record.cell.parent(resolution) else {
            continue;
        };
        let position = starts.partition_point(|start| *start <= record.occurred_on) - 1;
        if by_subjects && !seen.insert((cell, position, record.subject)) {
            continue;
        }
        counts.entry(cell).or_insert_with(|| vec![0; starts.len()])[position] += 1;
    }
    counts
}

/// A Mann–Kendall trend test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    /// The statistic S: concordant minus discordant pairs.
    pub s: f64,
    /// The normal score, with the continuity correction and the tie-corrected variance.
    pub z: f64,
    /// Its two-sided p-value.
    pub p: f64,
}

/// The Mann–Kendall test of a series (as pymannkendall's `original_test`): S = Σ sign(xⱼ − xᵢ)
/// over i < j; Var(S) = (n(n−1)(2n+5) − Σ t(t−1)(2t+5)) / 18 over groups of t tied values;
/// z = (S − sign S) / √Var(S). A series without variation has z = 0 and p = 1.
#[must_use]
pub fn mann_kendall(series: &[f64]) -> Trend {
    let n = series.len();
    let mut s = 0.0_f64;
    for (i, earlier) in series.iter().enumerate() {
        for later in &series[i + 1..] {
            s += match later.total_cmp(earlier) {
                std::cmp::Ordering::Greater => 1.0,
                std::cmp::Ordering::Less => -1.0,
                std::cmp::Ordering::Equal => 0.0,
            };
        }
    }
    let mut sorted = series.to_vec();
    sorted.sort_by(f64::total_cmp);
    let ties: f64 = sorted
        .chunk_by(|a, b| a == b)
        .map(|group| {
            #[expect(clippy::cast_precision_loss, reason = "short series")]
            let t = group.len() as f64;
            t * (t - 1.0) * (2.0 * t + 5.0)
        })
        .sum();
    #[expect(clippy::cast_precision_loss, reason = "short series")]
    let count = n as f64;
    let variance = (count * (count - 1.0) * (2.0 * count + 5.0) - ties) / 18.0;
    let z = if variance <= 0.0 || s == 0.0 {
        0.0
    } else {
        (s - s.signum()) / variance.sqrt()
    };
    Trend {
        s,
        z,
        p: two_sided_p(z),
    }
}

/// The 17 categories of Emerging Hot Spot Analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// Significant for the final step only.
    NewHotSpot,
    /// A single run of at least two significant final steps, never significant before it,
    /// in under 90 % of steps.
    ConsecutiveHotSpot,
    /// Significant in at least 90 % of steps including the final, intensity rising.
    IntensifyingHotSpot,
    /// Significant in at least 90 % of steps including the final, no trend in intensity.
    PersistentHotSpot,
    /// Significant in at least 90 % of steps including the final, intensity falling.
    DiminishingHotSpot,
    /// Significant in the final step, on and off before, under 90 % of steps, never cold.
    SporadicHotSpot,
    /// Significant in the final step, a significant cold spot in some earlier step, under
    /// 90 % of steps.
    OscillatingHotSpot,
    /// Not significant in the final step, but in at least 90 % of steps.
    HistoricalHotSpot,
    /// The cold counterpart of [`Self::NewHotSpot`].
    NewColdSpot,
    /// The cold counterpart of [`Self::ConsecutiveHotSpot`].
    ConsecutiveColdSpot,
    /// The cold counterpart of [`Self::IntensifyingHotSpot`] (ever colder).
    IntensifyingColdSpot,
    /// The cold counterpart of [`Self::PersistentHotSpot`].
    PersistentColdSpot,
    /// The cold counterpart of [`Self::DiminishingHotSpot`] (less and less cold).
    DiminishingColdSpot,
    /// The cold counterpart of [`Self::SporadicHotSpot`].
    SporadicColdSpot,
    /// The cold counterpart of [`Self::OscillatingHotSpot`].
    OscillatingColdSpot,
    /// The cold counterpart of [`Self::HistoricalHotSpot`].
    HistoricalColdSpot,
    /// None of the above.
    NoPattern,
}

impl Category {
    /// The name used in the API, such as `intensifying_hot_spot`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NewHotSpot => "new_hot_spot",
            Self::ConsecutiveHotSpot => "consecutive_hot_spot",
            Self::IntensifyingHotSpot => "intensifying_hot_spot",
            Self::PersistentHotSpot => "persistent_hot_spot",
            Self::DiminishingHotSpot => "diminishing_hot_spot",
            Self::SporadicHotSpot => "sporadic_hot_spot",
            Self::OscillatingHotSpot => "oscillating_hot_spot",
            Self::HistoricalHotSpot => "historical_hot_spot",
            Self::NewColdSpot => "new_cold_spot",
            Self::ConsecutiveColdSpot => "consecutive_cold_spot",
            Self::IntensifyingColdSpot => "intensifying_cold_spot",
            Self::PersistentColdSpot => "persistent_cold_spot",
            Self::DiminishingColdSpot => "diminishing_cold_spot",
            Self::SporadicColdSpot => "sporadic_cold_spot",
            Self::OscillatingColdSpot => "oscillating_cold_spot",
            Self::HistoricalColdSpot => "historical_cold_spot",
            Self::NoPattern => "no_pattern",
        }
    }
}

/// Whether each step of a cell's series was a significant hot (+1), cold (−1) or neither (0).
type Significance = [i8];

/// The category of one cell from the significance of its steps (oldest first) and the trend of
/// its z-scores, with `trend_alpha` the level at which a trend counts.
#[must_use]
pub fn classify(steps: &Significance, trend: &Trend, trend_alpha: f64) -> Category {
    use Category as C;
    let hot = [
        C::NewHotSpot,
        C::ConsecutiveHotSpot,
        C::IntensifyingHotSpot,
        C::PersistentHotSpot,
        C::DiminishingHotSpot,
        C::SporadicHotSpot,
        C::OscillatingHotSpot,
        C::HistoricalHotSpot,
    ];
    let cold = [
        C::NewColdSpot,
        C::ConsecutiveColdSpot,
        C::IntensifyingColdSpot,
        C::PersistentColdSpot,
        C::DiminishingColdSpot,
        C::SporadicColdSpot,
        C::OscillatingColdSpot,
        C::HistoricalColdSpot,
    ];
    let Some(&last) = steps.last() else {
        return C::NoPattern;
    };
    // For cold spots, "intensifying" is a falling z-score: look at the trend with the sign of
    // the spot.
    let side = |sign: i8, names: &[Category; 8]| -> Option<Category> {
        let count = steps.iter().filter(|step| **step == sign).count();
        let mostly = count * 10 >= steps.len() * 9;
        let trend_up = trend.p < trend_alpha && trend.z * f64::from(sign) > 0.0;
        let trend_down = trend.p < trend_alpha && trend.z * f64::from(sign) < 0.0;
        if last != sign {
            return mostly.then_some(names[7]);
        }
        if count == 1 {
            return Some(names[0]);
        }
        if mostly {
            return Some(if trend_up {
                names[2]
            } else if trend_down {
                names[4]
            } else {
                names[3]
            });
        }
        let final_run = steps.iter().rev().take_while(|step| **step == sign).count();
        if final_run >= 2 && final_run == count {
            return Some(names[1]);
        }
        if steps.iter().any(|step| *step == -sign) {
            return Some(names[6]);
        }
        Some(names[5])
    };
    side(1, &hot)
        .or_else(|| side(-1, &cold))
        .unwrap_or(C::NoPattern)
}

/// One cell's result.
#[derive(Debug, Clone, PartialEq)]
pub struct EmergingCell {
    /// The cell.
    pub cell: CellIndex,
    /// Its category.
    pub category: Category,
    /// Mann–Kendall z of its z-score series.
    pub trend_z: f64,
    /// Mann–Kendall p.
    pub trend_p: f64,
    /// Steps in which it was a significant hot spot.
    pub hot_steps: usize,
    /// Steps in which it was a significant cold spot.
    pub cold_steps: usize,
}

/// The cells and steps of a cube whose `series` (one per cell of `area`) all have the same
/// length, for a k from 1 to 3.
fn cube_shape(
    area: &StudyArea,
    series: &[Vec<f64>],
    k: u32,
) -> Result<(usize, usize), GiStarError> {
    if !(1..=3).contains(&k) {
        return Err(GiStarError::RingSize(k));
    }
    let n = area.cells().len();
    let steps = series.first().map_or(0, Vec::len);
    if series.len() != n || series.iter().any(|values| values.len() != steps) {
        return Err(GiStarError::ValueCount {
            cells: n,
            values: series.len(),
        });
    }
    Ok((n, steps))
}

/// Space-time Gi* z-scores of every bin, cell-major: `z[i * steps + t]`, and their two-sided
/// p-values under randomisation over the whole cube ([`crate::randomisation`]; the normal's are
/// not valid for sparse counts). A bin's neighbourhood is the k-ring of its cell (within the
/// area) in its own step and the `time_lag` steps before, with binary weights; the mean and
/// deviation are those of the whole cube.
///
/// The work stops, with [`GiStarError::Stopped`], soon after `stop` is set.
///
/// # Errors
/// [`GiStarError`] for k outside 1 to 3, a series of the wrong length, or `stop` set.
pub fn space_time_gi_star(
    area: &StudyArea,
    series: &[Vec<f64>],
    k: u32,
    time_lag: usize,
    stop: &AtomicBool,
) -> Result<(Vec<f64>, Vec<f64>), GiStarError> {
    let (n, steps) = cube_shape(area, series, k)?;
    #[expect(clippy::cast_precision_loss, reason = "cubes are far below 2^52 bins")]
    let count = (n * steps) as f64;
    let mean = series.iter().flatten().sum::<f64>() / count;
    let variance = series
        .iter()
        .flatten()
        .map(|value| value * value)
        .sum::<f64>()
        / count
        - mean * mean;
    let deviation = variance.max(0.0).sqrt();
    let neighbourhoods: Vec<Vec<usize>> = area
        .cells()
        .iter()
        .map(|cell| area.neighbourhood(*cell, k).collect())
        .collect();
    let cube: Vec<f64> = series.iter().flatten().copied().collect();
    let randomisation = Randomisation::new(&cube);
    let mut distributions: HashMap<u32, LocalSum<'_>> = HashMap::new();
    let mut z = Vec::with_capacity(n * steps);
    let mut p = Vec::with_capacity(n * steps);
    for neighbours in &neighbourhoods {
        if stop.load(Ordering::Relaxed) {
            return Err(GiStarError::Stopped);
        }
        for t in 0..steps {
            let earliest = t.saturating_sub(time_lag);
            let mut local = 0.0;
            for &j in neighbours {
                local += series[j][earliest..=t].iter().sum::<f64>();
            }
            let members =
                u32::try_from(neighbours.len() * (t - earliest + 1)).expect("small neighbourhoods");
            p.push(
                distributions
                    .entry(members)
                    .or_insert_with(|| {
                        randomisation.local_sum(&[Ring {
                            weight: 1.0,
                            members,
                        }])
                    })
                    .two_sided_p(local),
            );
            let weights = f64::from(members);
            let spread = deviation * ((count * weights - weights * weights) / (count - 1.0)).sqrt();
            z.push(
                if spread.is_nan() || spread <= f64::EPSILON * (1.0 + mean.abs()) {
                    0.0
                } else {
                    (local - mean * weights) / spread
                },
            );
        }
    }
    Ok((z, p))
}

/// Space-time bins set against the children living there (docs/analytics.md,
/// "Population-adjusted hotspots"): a bin's count over its neighbourhood (the k-ring of its
/// cell in its own step and the `time_lag` steps before) against the count the neighbourhood's
/// children would have at the cube's overall rate (all counts over all children times the
/// steps), an exact Poisson test. z is `(S − μ) / √μ`, cell-major as [`space_time_gi_star`]'s;
/// a neighbourhood where no child lives has z = 0, p = 1.
///
/// The work stops, with [`GiStarError::Stopped`], soon after `stop` is set.
///
/// # Errors
/// [`GiStarError`] for k outside 1 to 3, a series or population count of the wrong length, or
/// `stop` set.
pub fn space_time_excess(
    area: &StudyArea,
    series: &[Vec<f64>],
    populations: &[f64],
    k: u32,
    time_lag: usize,
    stop: &AtomicBool,
) -> Result<(Vec<f64>, Vec<f64>), GiStarError> {
    let (n, steps) = cube_shape(area, series, k)?;
    if populations.len() != n {
        return Err(GiStarError::ValueCount {
            cells: n,
            values: populations.len(),
        });
    }
    let people: f64 = populations.iter().sum();
    #[expect(clippy::cast_precision_loss, reason = "a few hundred steps at most")]
    let rate = if people > 0.0 && steps > 0 {
        series.iter().flatten().sum::<f64>() / (people * steps as f64)
    } else {
        0.0
    };
    let mut z = Vec::with_capacity(n * steps);
    let mut p = Vec::with_capacity(n * steps);
    for cell in area.cells() {
        if stop.load(Ordering::Relaxed) {
            return Err(GiStarError::Stopped);
        }
        let neighbours: Vec<usize> = area.neighbourhood(*cell, k).collect();
        let children: f64 = neighbours.iter().map(|j| populations[*j]).sum();
        for t in 0..steps {
            let earliest = t.saturating_sub(time_lag);
            let observed: f64 = neighbours
                .iter()
                .map(|j| series[*j][earliest..=t].iter().sum::<f64>())
                .sum();
            #[expect(clippy::cast_precision_loss, reason = "a few steps")]
            let mean = rate * children * (t - earliest + 1) as f64;
            if mean <= 0.0 {
                z.push(0.0);
                p.push(1.0);
                continue;
            }
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "a non-negative count far below 2^52"
            )]
            let whole = observed.max(0.0) as u64;
            z.push((observed - mean) / mean.sqrt());
            p.push(crate::rates::poisson_two_sided_p(whole, mean));
        }
    }
    Ok((z, p))
}

/// The fewest time windows that do not overlap a trend is tested over: with fewer, Mann–Kendall
/// cannot reach p < 0.05 however steady the trend (4 windows: at best p = 0.09).
pub const MIN_TREND_WINDOWS: usize = 5;

/// How many windows that do not overlap `steps` steps hold at `time_lag`: the steps from
/// `time_lag` on (whose window is whole), one every `time_lag + 1`.
#[must_use]
pub const fn trend_windows(steps: usize, time_lag: usize) -> usize {
    if steps > time_lag {
        (steps - time_lag - 1) / (time_lag + 1) + 1
    } else {
        0
    }
}

/// Emerging Hot Spot Analysis of a cube: space-time Gi* ([`space_time_gi_star`]), or, given
/// the children living in each cell, the space-time excess over them ([`space_time_excess`]);
/// significance of every bin by Benjamini–Hochberg at `alpha` over the whole cube, Mann–Kendall
/// on each cell's z-scores of windows that do not overlap (a trend counts at `alpha` too), and
/// the category of each cell, in the area's order. The work stops soon after `stop` is set
/// (the caller has gone).
///
/// # Errors
/// As [`space_time_gi_star`].
pub fn emerging_hot_spots(
    area: &StudyArea,
    series: &[Vec<f64>],
    populations: Option<&[f64]>,
    k: u32,
    time_lag: usize,
    alpha: f64,
    stop: &AtomicBool,
) -> Result<Vec<EmergingCell>, GiStarError> {
    let (z, p) = match populations {
        Some(populations) => space_time_excess(area, series, populations, k, time_lag, stop)?,
        None => space_time_gi_star(area, series, k, time_lag, stop)?,
    };
    let steps = series.first().map_or(0, Vec::len);
    let significant = benjamini_hochberg(&p, alpha);
    let mut cells = Vec::with_capacity(area.cells().len());
    for (i, cell) in area.cells().iter().enumerate() {
        if stop.load(Ordering::Relaxed) {
            return Err(GiStarError::Stopped);
        }
        let bins = i * steps..(i + 1) * steps;
        let signs: Vec<i8> = bins
            .clone()
            .map(|bin| match (significant[bin], z[bin] > 0.0) {
                (false, _) => 0,
                (true, true) => 1,
                (true, false) => -1,
            })
            .collect();
        // The trend is tested over windows that do not overlap: the steps whose window holds
        // `time_lag` earlier steps like every later one (the first steps' shorter windows give
        // smaller z-scores for the same counts, which a constant cluster would show as a rising
        // trend, z +1.45 at lag 1), one every `time_lag + 1` steps. Consecutive windows share
        // steps, so their z-scores move together and Mann–Kendall, which assumes independent
        // terms, would see trends in 15 % of trend-free cells at lag 1 instead of 5 %
        // (tests/trend_calibration.rs).
        let whole_windows: Vec<f64> = z[bins]
            .iter()
            .skip(time_lag)
            .step_by(time_lag + 1)
            .copied()
            .collect();
        let trend = mann_kendall(&whole_windows);
        cells.push(EmergingCell {
            cell: *cell,
            category: classify(&signs, &trend, alpha),
            trend_z: trend.z,
            trend_p: trend.p,
            hot_steps: signs.iter().filter(|sign| **sign == 1).count(),
            cold_steps: signs.iter().filter(|sign| **sign == -1).count(),
        });
    }
    Ok(cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_TREND: Trend = Trend {
        s: 0.0,
        z: 0.0,
        p: 1.0,
    };
    const RISING: Trend = Trend {
        s: 40.0,
        z: 3.0,
        p: 0.0027,
    };
    const FALLING: Trend = Trend {
        s: -40.0,
        z: -3.0,
        p: 0.0027,
    };

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn steps_start_on_mondays_first_days_and_quarter_days() {
        assert_eq!(Step::Week.start_of(day("2024-03-07")), day("2024-03-04"));
        assert_eq!(Step::Month.start_of(day("2024-03-07")), day("2024-03-01"));
        assert_eq!(Step::Quarter.start_of(day("2024-05-31")), day("2024-04-01"));
        assert_eq!(
            Step::Quarter.starts(day("2024-02-10"), day("2024-12-31")),
            [
                day("2024-01-01"),
                day("2024-04-01"),
                day("2024-07-01"),
                day("2024-10-01")
            ]
        );
        assert_eq!(
            Step::Month
                .starts(day("2024-01-15"), day("2024-12-01"))
                .len(),
            12
        );
    }

    #[test]
    fn windows_that_do_not_overlap_are_counted_from_the_first_whole_one() {
        assert_eq!(trend_windows(24, 0), 24);
        assert_eq!(trend_windows(24, 1), 12);
        assert_eq!(trend_windows(10, 1), 5);
        assert_eq!(trend_windows(10, 2), 3);
        assert_eq!(trend_windows(12, 12), 0);
        // Mann–Kendall's best two-sided p-value over the fewest windows allowed is below 0.05,
        // and over one window fewer above it.
        let steady = |n: usize| (0..n).map(|i| i as f64).collect::<Vec<_>>();
        assert!(mann_kendall(&steady(MIN_TREND_WINDOWS)).p < 0.05);
        assert!(mann_kendall(&steady(MIN_TREND_WINDOWS - 1)).p > 0.05);
    }

    #[test]
    fn every_category_follows_its_rule() {
        use Category as C;
        let cases: [(&[i8], Trend, Category); 17] = [
            (&[0, 0, 0, 0, 0, 0, 0, 0, 0, 1], NO_TREND, C::NewHotSpot),
            (
                &[0, 0, 0, 0, 0, 0, 0, 1, 1, 1],
                NO_TREND,
                C::ConsecutiveHotSpot,
            ),
            (
                &[1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
                RISING,
                C::IntensifyingHotSpot,
            ),
            (
                &[1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
                NO_TREND,
                C::PersistentHotSpot,
            ),
            (
                &[1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
                FALLING,
                C::DiminishingHotSpot,
            ),
            (
                &[0, 1, 0, 1, 0, 0, 1, 0, 0, 1],
                NO_TREND,
                C::SporadicHotSpot,
            ),
            (
                &[-1, 0, 0, 1, 0, 0, 0, 0, 0, 1],
                NO_TREND,
                C::OscillatingHotSpot,
            ),
            (
                &[1, 1, 1, 1, 1, 1, 1, 1, 1, 0],
                NO_TREND,
                C::HistoricalHotSpot,
            ),
            (&[0, 0, 0, 0, 0, 0, 0, 0, 0, -1], NO_TREND, C::NewColdSpot),
            (
                &[0, 0, 0, 0, 0, 0, 0, 0, -1, -1],
                NO_TREND,
                C::ConsecutiveColdSpot,
            ),
            (&[-1; 10], FALLING, C::IntensifyingColdSpot),
            (&[-1; 10], NO_TREND, C::PersistentColdSpot),
            (&[-1; 10], RISING, C::DiminishingColdSpot),
            (
                &[-1, 0, -1, 0, 0, 0, 0, 0, 0, -1],
                NO_TREND,
                C::SporadicColdSpot,
            ),
            (
                &[0, 1, 0, -1, 0, 0, 0, 0, 0, -1],
                NO_TREND,
                C::OscillatingColdSpot,
            ),
            (
                &[-1, -1, -1, -1, -1, -1, -1, -1, -1, 0],
                NO_TREND,
                C::HistoricalColdSpot,
            ),
            (&[0, 1, 0, 0, 0, 0, 0, 0, 0, 0], NO_TREND, C::NoPattern),
        ];
        for (steps, trend, expected) in cases {
            assert_eq!(classify(steps, &trend, 0.05), expected, "{steps:?}");
        }
        // A trend that is not significant at the level asked for does not count.
        assert_eq!(classify(&[1; 10], &RISING, 0.001), C::PersistentHotSpot);
        // 90 % of steps: one miss in ten still counts as "most".
        assert_eq!(
            classify(&[1, 1, 0, 1, 1, 1, 1, 1, 1, 1], &NO_TREND, 0.05),
            C::PersistentHotSpot
        );
    }

    #[test]
    fn mann_kendall_of_a_rising_series_is_significant_and_of_a_flat_one_is_not() {
        let rising: Vec<f64> = (0..12).map(f64::from).collect();
        let trend = mann_kendall(&rising);
        assert_eq!(trend.s, 66.0);
        assert!(trend.z > 4.0 && trend.p < 1e-4, "{trend:?}");
        let flat = mann_kendall(&[2.0; 12]);
        assert_eq!((flat.z, flat.p), (0.0, 1.0));
    }

    #[test]
    fn a_constant_cluster_has_no_trend_whatever_the_time_lag() {
        let centre = h3o::LatLng::new(53.8, -3.04)
            .unwrap()
            .to_cell(Resolution::Eight);
        let area = StudyArea::new(centre.grid_disk::<Vec<_>>(6)).unwrap();
        let cluster: HashSet<CellIndex> = centre.grid_disk::<Vec<_>>(1).into_iter().collect();
        // The same counts every month: 10 in the cluster, 1 elsewhere.
        let series: Vec<Vec<f64>> = area
            .cells()
            .iter()
            .map(|cell| vec![if cluster.contains(cell) { 10.0 } else { 1.0 }; 12])
            .collect();
        for time_lag in [0, 1, 2] {
            let result = emerging_hot_spots(
                &area,
                &series,
                None,
                1,
                time_lag,
                0.05,
                &AtomicBool::new(false),
            )
            .unwrap();
            let centre_result = result.iter().find(|cell| cell.cell == centre).unwrap();
            assert!(
                centre_result.trend_z.abs() < 1e-12,
                "time lag {time_lag}: {centre_result:?}"
            );
            assert_eq!(
                centre_result.category,
                Category::PersistentHotSpot,
                "time lag {time_lag}"
            );
        }
    }

    #[test]
    fn a_cluster_that_appears_late_is_new_or_consecutive_and_the_rest_no_pattern() {
        let centre = h3o::LatLng::new(53.8, -3.04)
            .unwrap()
            .to_cell(Resolution::Eight);
        let area = StudyArea::new(centre.grid_disk::<Vec<_>>(6)).unwrap();
        let steps = 12;
        let cluster: HashSet<CellIndex> = centre.grid_disk::<Vec<_>>(1).into_iter().collect();
        let series: Vec<Vec<f64>> = area
            .cells()
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                (0..steps)
                    .map(|t| {
                        let background = f64::from(u32::try_from((i + t) % 3).unwrap());
                        if cluster.contains(cell) && t >= 9 {
                            background + 30.0
                        } else {
                            background
                        }
                    })
                    .collect()
            })
            .collect();
        let result =
            emerging_hot_spots(&area, &series, None, 1, 1, 0.05, &AtomicBool::new(false)).unwrap();
        let centre_result = result.iter().find(|cell| cell.cell == centre).unwrap();
        assert!(
            matches!(
                centre_result.category,
                Category::ConsecutiveHotSpot | Category::NewHotSpot
            ),
            "{centre_result:?}"
        );
        assert!(centre_result.hot_steps >= 2 && centre_result.cold_steps == 0);
        let far = result
            .iter()
            .filter(|cell| cell.cell.grid_distance(centre).unwrap_or(0) >= 4)
            .filter(|cell| cell.category != Category::NoPattern)
            .count();
        assert_eq!(far, 0, "nothing far from the cluster has a pattern");
        // Once its caller has gone, the analysis stops instead of running on.
        assert_eq!(
            emerging_hot_spots(&area, &series, None, 1, 1, 0.05, &AtomicBool::new(true)),
            Err(GiStarError::Stopped)
        );
    }

    #[test]
    fn adjusted_for_population_a_busy_place_is_no_pattern_and_a_late_excess_is_found() {
        let centre = h3o::LatLng::new(53.8, -3.04)
            .unwrap()
            .to_cell(Resolution::Eight);
        let area = StudyArea::new(centre.grid_disk::<Vec<_>>(4)).unwrap();
        let town: HashSet<CellIndex> = centre.grid_disk::<Vec<_>>(1).into_iter().collect();
        let populations: Vec<f64> = area
            .cells()
            .iter()
            .map(|cell| if town.contains(cell) { 600.0 } else { 100.0 })
            .collect();
        let steps = 14;
        // Exactly as many children as each cell's population makes likely, every step.
        let steady: Vec<Vec<f64>> = populations
            .iter()
            .map(|people| vec![people / 100.0; steps])
            .collect();
        let adjusted = emerging_hot_spots(
            &area,
            &steady,
            Some(&populations),
            1,
            1,
            0.05,
            &AtomicBool::new(false),
        )
        .unwrap();
        assert!(
            adjusted
                .iter()
                .all(|cell| cell.category == Category::NoPattern)
        );
        let raw =
            emerging_hot_spots(&area, &steady, None, 1, 1, 0.05, &AtomicBool::new(false)).unwrap();
        assert!(
            raw.iter().any(|cell| cell.category != Category::NoPattern),
            "raw counts call the town a hot spot"
        );
        // A far cell with twelve children more than its population explains in the last steps.
        let far = area
            .cells()
            .iter()
            .position(|cell| cell.grid_distance(centre).unwrap() == 4)
            .unwrap();
        let mut rising = steady.clone();
        for count in &mut rising[far][steps - 4..] {
            *count += 12.0;
        }
        let found = emerging_hot_spots(
            &area,
            &rising,
            Some(&populations),
            1,
            1,
            0.05,
            &AtomicBool::new(false),
        )
        .unwrap();
        assert!(found[far].hot_steps >= 2, "{:?}", found[far]);
    }

    #[test]
    fn an_analysis_covers_whole_ended_steps_only() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        // Mid-month ends snap outwards to whole months.
        let (starts, last, left_out) =
            Step::Month.whole(day(2024, 1, 15), day(2024, 3, 10), day(2026, 11, 29));
        assert_eq!(starts, [day(2024, 1, 1), day(2024, 2, 1), day(2024, 3, 1)]);
        assert_eq!(last, day(2024, 3, 31));
        assert_eq!(left_out, None);
        // The month of today has not ended: left out and named, not counted in part.
        let (starts, last, left_out) =
            Step::Month.whole(day(2026, 9, 1), day(2026, 11, 29), day(2026, 11, 29));
        assert_eq!(starts, [day(2026, 9, 1), day(2026, 10, 1)]);
        assert_eq!(last, day(2026, 10, 31));
        assert_eq!(left_out, Some(day(2026, 11, 1)));
        // Weeks run Monday to Sunday; a week ending today has not ended.
        let (starts, last, left_out) =
            Step::Week.whole(day(2026, 11, 11), day(2026, 11, 29), day(2026, 11, 29));
        assert_eq!(starts, [day(2026, 11, 9), day(2026, 11, 16)]);
        assert_eq!(last, day(2026, 11, 22));
        assert_eq!(left_out, Some(day(2026, 11, 23)));
        // Nothing ended yet: no steps.
        let (starts, _, left_out) =
            Step::Quarter.whole(day(2026, 10, 2), day(2026, 11, 1), day(2026, 11, 29));
        assert!(starts.is_empty());
        assert_eq!(left_out, Some(day(2026, 10, 1)));
    }

    #[test]
    fn work_over_the_budget_is_refused_naming_the_limit_and_what_to_change() {
        // A century of weeks at resolution 9 over a small town: billions of comparisons.
        let refused = check_budget(333, 5_218, 1, 1).unwrap_err();
        assert_eq!(
            (refused.measure, refused.limit),
            ("cells × steps²", MAX_TREND_WORK)
        );
        let message = refused.to_string();
        assert!(
            message.contains("500000000") && message.contains("coarser resolution"),
            "{message}"
        );
        assert_eq!(
            check_budget(2_001, 1_000, 1, 1).unwrap_err().measure,
            "cells × steps"
        );
        assert_eq!(
            check_budget(20_000, 100, 3, 12).unwrap_err().measure,
            "cells × steps × k-ring cells × (time_lag + 1)"
        );
        // Ten years of months over a county at resolution 8 is within it.
        assert_eq!(check_budget(4_000, 120, 1, 1), Ok(()));
    }
}
