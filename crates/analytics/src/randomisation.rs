//! The null distribution of a cell's weighted local sum under spatial randomisation — the test
//! Gi* decisions use, because the normal approximation behind Gi*'s z-score fails for the
//! sparse, skewed counts CSE data are (docs/analytics.md, "Sparse counts").
//!
//! Under the randomisation null of Gi*'s z-score every member of a neighbourhood, the cell
//! itself included, holds a draw from the values of the whole study area. Drawn with
//! replacement, a local sum `S = Σ_j w_j Y_j` is a sum of independent draws. (A permutation
//! draws without replacement, which only shrinks the variance by `(n − m)/(n − 1)` for `m`
//! members among `n` cells; with replacement is the slightly more cautious of the two.)
//!
//! * **Exact**, when the values are whole numbers and the weights whole multiples of `1/q`
//!   (the uniform and triangular kernels): the sum lives on a lattice and its distribution is
//!   built by convolution, as long as that is at most [`EXACT_WORK`] operations (sparse counts
//!   always are).
//! * **Saddle-point** otherwise (the gaussian kernel, or large counts): the Lugannani–Rice
//!   formula on the cumulant generating function `K(t) = Σ_j log M(t w_j)`, `M` the moment
//!   generating function of the values, whose relative error stays small far into the tails,
//!   where the normal's does not. On a lattice Daniels's second continuity correction applies;
//!   off it the observed sum is first moved towards the mean by half the smallest step one member
//!   can make, which keeps the test on the cautious side of the sum's atoms. With few distinct
//!   values, the first member's draw (the cell itself) is summed over exactly rather than
//!   approximated, since a single draw is where the formula is weakest.

use std::f64::consts::{PI, SQRT_2};

/// The empirical distribution of a study area's values, ready to give tail probabilities of
/// local sums under randomisation.
#[derive(Debug, Clone)]
pub struct Randomisation {
    /// The distinct values, ascending.
    values: Vec<f64>,
    /// How many cells hold each value.
    counts: Vec<f64>,
    /// Number of cells.
    cells: f64,
    /// The greatest common divisor of the differences between values when they are whole
    /// numbers (the step of the lattice a sum of them lives on), `None` otherwise.
    step: Option<f64>,
}

/// One ring of a neighbourhood: `members` cells that each weigh `weight`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ring {
    /// The kernel weight of each member.
    pub weight: f64,
    /// How many members the ring has.
    pub members: u32,
}

/// `K(t)`, `K'(t)` and `K''(t)`.
#[derive(Debug, Clone, Copy)]
struct Cumulants {
    value: f64,
    slope: f64,
    curvature: f64,
}

impl Randomisation {
    /// The distribution of `values` (one per cell of the study area; need not be sorted).
    #[must_use]
    pub fn new(values: &[f64]) -> Self {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        let (mut distinct, mut counts): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
        for value in &sorted {
            if distinct.last() == Some(value) {
                *counts.last_mut().expect("a count per value") += 1.0;
            } else {
                distinct.push(*value);
                counts.push(1.0);
            }
        }
        let whole = distinct
            .iter()
            .all(|value| value.fract() == 0.0 && value.abs() < 2_f64.powi(52));
        let step = whole
            .then(|| {
                #[expect(
                    clippy::cast_possible_truncation,
                    reason = "whole numbers below 2^52, checked above"
                )]
                let lowest = distinct.first().map_or(0, |value| *value as i64);
                #[expect(
                    clippy::cast_possible_truncation,
                    reason = "whole numbers below 2^52, checked above"
                )]
                distinct
                    .iter()
                    .map(|value| (*value as i64 - lowest).unsigned_abs())
                    .fold(0_u64, gcd)
            })
            .filter(|step| *step > 0);
        #[expect(clippy::cast_precision_loss, reason = "a difference below 2^52")]
        Self {
            values: distinct,
            counts,
            #[expect(
                clippy::cast_precision_loss,
                reason = "study areas are far below 2^52 cells"
            )]
            cells: sorted.len() as f64,
            step: step.map(|step| step as f64),
        }
    }

    /// The null distribution of the local sum over a neighbourhood of `rings`, exact where
    /// that is cheap (see the module's documentation).
    #[must_use]
    pub fn local_sum(&self, rings: &[Ring]) -> LocalSum<'_> {
        // Rings of equal weight are one ring to the distribution (the uniform kernel's all are).
        let mut merged: Vec<Ring> = Vec::with_capacity(rings.len());
        for ring in rings.iter().filter(|ring| ring.members > 0) {
            match merged.iter_mut().find(|other| other.weight == ring.weight) {
                Some(other) => other.members += ring.members,
                None => merged.push(*ring),
            }
        }
        LocalSum {
            randomisation: self,
            exact: self.exact(&merged),
            rings: merged,
        }
    }

    /// The exact distribution of the local sum over `rings`, when it lives on a lattice and
    /// building it takes at most [`EXACT_WORK`] operations.
    fn exact(&self, rings: &[Ring]) -> Option<Exact> {
        let (step, multiples) = self.lattice(rings)?;
        let value_step = self.step?;
        let lowest_value = *self.values.first()?;
        // One draw's distribution in value steps above the lowest value.
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "whole numbers of steps below 2^52"
        )]
        let draw: Vec<(usize, f64)> = self
            .values
            .iter()
            .zip(&self.counts)
            .map(|(value, count)| {
                (
                    ((value - lowest_value) / value_step).round() as usize,
                    count / self.cells,
                )
            })
            .collect();
        let highest = draw.last().map_or(0, |(steps, _)| *steps);
        let members: usize = rings.iter().map(|ring| ring.members as usize).sum();
        let support: usize = rings
            .iter()
            .zip(&multiples)
            .map(|(ring, multiple)| ring.members as usize * *multiple as usize * highest)
            .sum();
        #[expect(clippy::cast_precision_loss, reason = "an estimate of work")]
        let work = members as f64 * (support + 1) as f64 * draw.len() as f64;
        if work > EXACT_WORK {
            return None;
        }
        let mut probabilities = vec![1.0];
        for (ring, multiple) in rings.iter().zip(&multiples) {
            for _ in 0..ring.members {
                let mut next = vec![0.0; probabilities.len() + *multiple as usize * highest];
                for (sum, probability) in probabilities.iter().enumerate() {
                    for (steps, share) in &draw {
                        next[sum + *multiple as usize * steps] += probability * share;
                    }
                }
                probabilities = next;
            }
        }
        let mut at_least = probabilities.clone();
        for i in (0..at_least.len().saturating_sub(1)).rev() {
            at_least[i] += at_least[i + 1];
        }
        let mut at_most = probabilities;
        for i in 1..at_most.len() {
            at_most[i] += at_most[i - 1];
        }
        Some(Exact {
            step,
            lowest: rings
                .iter()
                .map(|ring| f64::from(ring.members) * ring.weight * lowest_value)
                .sum(),
            at_least,
            at_most,
        })
    }

    /// `P(σ S ≥ σ s)`: the upper tail for `σ = 1`, the lower for `σ = −1`.
    fn upper_tail(&self, rings: &[Ring], observed: f64, sign: f64) -> f64 {
        let lattice = self.lattice(rings).map(|(step, _)| step);
        // Half the smallest step one member can make: the continuity correction.
        let smallest_weight = rings
            .iter()
            .filter(|ring| ring.members > 0)
            .map(|ring| ring.weight.abs())
            .fold(f64::INFINITY, f64::min);
        let half_step =
            lattice.unwrap_or_else(|| self.step.map_or(0.0, |step| step * smallest_weight)) / 2.0;
        // Work with σS, whose cumulants at t are S's at σt.
        let at = |t: f64| {
            let c = self.cumulants(rings, sign * t);
            Cumulants {
                value: c.value,
                slope: sign * c.slope,
                curvature: c.curvature,
            }
        };
        if rings.iter().all(|ring| ring.members == 0) {
            // The empty sum is 0.
            return if sign * observed <= 1e-9 { 1.0 } else { 0.0 };
        }
        let target = sign * observed - half_step;
        let mean = at(0.0).slope;
        // The smallest σS can be: every member at the other extreme value.
        let bottom = if sign > 0.0 {
            self.values[0]
        } else {
            -self.values[self.values.len() - 1]
        };
        let infimum: f64 = rings
            .iter()
            .map(|ring| f64::from(ring.members) * ring.weight * bottom)
            .sum();
        if target <= infimum + 1e-9 * (1.0 + infimum.abs()) {
            return 1.0;
        }
        // The largest σS can be: every member at the extreme value.
        let (extreme, extreme_share) = if sign > 0.0 {
            (
                self.values[self.values.len() - 1],
                self.counts[self.counts.len() - 1],
            )
        } else {
            (-self.values[0], self.counts[0])
        };
        let members: f64 = rings.iter().map(|ring| f64::from(ring.members)).sum();
        let supremum: f64 = rings
            .iter()
            .map(|ring| f64::from(ring.members) * ring.weight * extreme)
            .sum();
        let tolerance = 1e-9 * (1.0 + supremum.abs());
        if sign * observed > supremum + tolerance {
            return 0.0;
        }
        // Every member at the extreme value: exact, and a floor for any sum below it.
        let all_extreme = (extreme_share / self.cells).powf(members);
        if sign * observed >= supremum - tolerance || target >= supremum - tolerance {
            return all_extreme;
        }
        // Below the mean the saddle point is negative and the formula holds as it is.
        let t = Self::solve(&at, target, at(0.0));
        let c = at(t);
        let spread = c.curvature.max(0.0).sqrt();
        let r = t.signum() * (2.0 * (t * target - c.value)).max(0.0).sqrt();
        if t.abs() < 1e-8 || r.abs() < 1e-8 {
            // At the mean the formula is 0/0; the normal tail is right to first order here.
            return normal_upper((target - mean) / at(0.0).curvature.sqrt());
        }
        let u = match lattice {
            Some(step) => 2.0 / step * (t * step / 2.0).sinh() * spread,
            None => t * spread,
        };
        (normal_upper(r) + normal_density(r) * (1.0 / u - 1.0 / r)).clamp(all_extreme, 1.0)
    }

    /// The lattice a local sum over `rings` lives on, when the values are whole numbers and the
    /// weights whole multiples of `1/q` for some `q` up to 12 (the uniform and triangular
    /// kernels): its step, and each ring's weight in multiples of that step's share of one value
    /// step.
    fn lattice(&self, rings: &[Ring]) -> Option<(f64, Vec<u64>)> {
        let step = self.step?;
        (1_u32..=12).find_map(|q| {
            let scaled: Vec<u64> = rings
                .iter()
                .map(|ring| {
                    let multiple = ring.weight * f64::from(q);
                    #[expect(
                        clippy::cast_possible_truncation,
                        clippy::cast_sign_loss,
                        reason = "a small whole number, checked"
                    )]
                    ((multiple - multiple.round()).abs() < 1e-9 && multiple.round() >= 1.0)
                        .then(|| multiple.round() as u64)
                })
                .collect::<Option<_>>()?;
            let divisor = scaled.iter().copied().fold(0, gcd).max(1);
            #[expect(clippy::cast_precision_loss, reason = "a small whole number")]
            Some((
                divisor as f64 / f64::from(q) * step,
                scaled
                    .into_iter()
                    .map(|multiple| multiple / divisor)
                    .collect(),
            ))
        })
    }

    /// The saddle point: the `t` with `K'(t) = target`, for a target strictly between the
    /// infimum and the supremum (safeguarded Newton on a bracket).
    fn solve(at: &impl Fn(f64) -> Cumulants, target: f64, start: Cumulants) -> f64 {
        // Newton from the normal approximation's guess, kept inside what is known of the
        // bracket: K' is increasing, and the root lies on the target's side of t = 0.
        let (mut low, mut high) = if target > start.slope {
            (0.0, f64::INFINITY)
        } else {
            (f64::NEG_INFINITY, 0.0)
        };
        let mut t = (target - start.slope) / start.curvature.max(f64::MIN_POSITIVE);
        for _ in 0..200 {
            let c = at(t);
            if (c.slope - target).abs() <= 1e-12 * (1.0 + target.abs()) {
                break;
            }
            if c.slope < target {
                low = t;
            } else {
                high = t;
            }
            let newton = t - (c.slope - target) / c.curvature;
            t = if newton > low && newton < high && newton.is_finite() {
                newton
            } else if high.is_infinite() {
                2.0 * low + 1.0
            } else if low.is_infinite() {
                2.0 * high - 1.0
            } else {
                f64::midpoint(low, high)
            };
            if (high - low).is_finite() && high - low <= 1e-15 * (1.0 + high.abs()) {
                break;
            }
        }
        t
    }

    /// `K(t)`, `K'(t)` and `K''(t)` of the local sum over `rings`.
    fn cumulants(&self, rings: &[Ring], t: f64) -> Cumulants {
        let mut total = Cumulants {
            value: 0.0,
            slope: 0.0,
            curvature: 0.0,
        };
        for ring in rings.iter().filter(|ring| ring.members > 0) {
            let one = self.one_draw(t * ring.weight);
            let members = f64::from(ring.members);
            total.value += members * one.value;
            total.slope += members * ring.weight * one.slope;
            total.curvature += members * ring.weight * ring.weight * one.curvature;
        }
        total
    }

    /// `log M(u)` and its first two derivatives for one draw, computed stably.
    fn one_draw(&self, u: f64) -> Cumulants {
        // Each value weighs count · e^{u (value − extreme)}, the extreme being the value where
        // u · value is largest, walking away from it. Neighbouring values usually differ by
        // one lattice step, so one exponential serves most of them.
        let (mut sum, mut first, mut second) = (0.0, 0.0, 0.0);
        let mut add = |value: f64, count: f64, scale: f64| {
            let weight = count * scale;
            sum += weight;
            first += weight * value;
            second += weight * value * value;
        };
        let step_factor = self.step.map(|step| (-(u.abs()) * step).exp());
        let ordered: Box<dyn Iterator<Item = (&f64, &f64)>> = if u >= 0.0 {
            Box::new(self.values.iter().zip(&self.counts).rev())
        } else {
            Box::new(self.values.iter().zip(&self.counts))
        };
        let (mut previous, mut scale, mut shift) = (f64::NAN, 1.0, 0.0);
        for (value, count) in ordered {
            if previous.is_nan() {
                shift = u * value;
            } else {
                let gap = (value - previous).abs();
                scale *= match (step_factor, self.step) {
                    (Some(factor), Some(step)) if gap == step => factor,
                    _ => (-(u.abs()) * gap).exp(),
                };
            }
            add(*value, *count, scale);
            previous = *value;
        }
        let mean = first / sum;
        Cumulants {
            value: shift + (sum / self.cells).ln(),
            slope: mean,
            curvature: (second / sum - mean * mean).max(0.0),
        }
    }
}

/// Most operations spent building one exact distribution (members × support × distinct
/// values); beyond it the saddle-point approximation is used.
pub const EXACT_WORK: f64 = 2e7;

/// Distinct values up to which the saddle-point approximation sums the first member's draw
/// exactly.
const MIXTURE_VALUES: usize = 64;

/// The exact distribution of a local sum on its lattice.
#[derive(Debug, Clone)]
struct Exact {
    /// The lattice step.
    step: f64,
    /// The smallest possible sum (the lattice's origin).
    lowest: f64,
    /// `P(S ≥ lowest + x · step)` at index `x`.
    at_least: Vec<f64>,
    /// `P(S ≤ lowest + x · step)` at index `x`.
    at_most: Vec<f64>,
}

impl Exact {
    /// `P(S ≥ s)` and `P(S ≤ s)`.
    fn tails(&self, observed: f64) -> (f64, f64) {
        let position = (observed - self.lowest) / self.step;
        let above = (position - 1e-6).ceil();
        let below = (position + 1e-6).floor();
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a non-negative index, checked"
        )]
        let at = |table: &[f64], index: f64, before: f64, after: f64| {
            if index < 0.0 {
                before
            } else {
                table.get(index as usize).copied().unwrap_or(after)
            }
        };
        (
            at(&self.at_least, above, 1.0, 0.0),
            at(&self.at_most, below, 0.0, 1.0),
        )
    }
}

/// The null distribution of the local sum over one shape of neighbourhood.
#[derive(Debug, Clone)]
pub struct LocalSum<'a> {
    randomisation: &'a Randomisation,
    rings: Vec<Ring>,
    exact: Option<Exact>,
}

impl LocalSum<'_> {
    /// Whether the distribution is exact rather than a saddle-point approximation.
    #[must_use]
    pub const fn is_exact(&self) -> bool {
        self.exact.is_some()
    }

    /// The two-sided p-value of an observed local sum: twice the probability, under
    /// randomisation, of a sum at least as far out in its nearer tail (capped at 1). With fewer
    /// than two distinct values there is nothing to test: 1.
    #[must_use]
    pub fn two_sided_p(&self, observed: f64) -> f64 {
        let randomisation = self.randomisation;
        if randomisation.values.len() < 2 || self.rings.iter().all(|ring| ring.members == 0) {
            return 1.0;
        }
        let tail = if let Some(exact) = &self.exact {
            let (upper, lower) = exact.tails(observed);
            upper.min(lower)
        } else {
            let mean = randomisation.cumulants(&self.rings, 0.0).slope;
            let sign = if observed > mean { 1.0 } else { -1.0 };
            self.approximate_tail(observed, sign)
        };
        (2.0 * tail).clamp(0.0, 1.0)
    }

    /// `P(σ S ≥ σ s)` by saddle-point, summing over the first member's draw exactly when the
    /// values are few.
    fn approximate_tail(&self, observed: f64, sign: f64) -> f64 {
        let randomisation = self.randomisation;
        let Some(first) = self.rings.iter().position(|ring| ring.members > 0) else {
            return 1.0;
        };
        if randomisation.values.len() > MIXTURE_VALUES {
            return randomisation.upper_tail(&self.rings, observed, sign);
        }
        let mut rest = self.rings.clone();
        rest[first].members -= 1;
        let weight = rest[first].weight;
        randomisation
            .values
            .iter()
            .zip(&randomisation.counts)
            .map(|(value, count)| {
                count / randomisation.cells
                    * randomisation.upper_tail(&rest, observed - weight * value, sign)
            })
            .sum::<f64>()
            .min(1.0)
    }
}

/// Greatest common divisor.
const fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// `1 − Φ(x)` for the standard normal.
fn normal_upper(x: f64) -> f64 {
    0.5 * libm::erfc(x / SQRT_2)
}

/// The standard normal density.
fn normal_density(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * PI).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gistar::Kernel;
    use proptest::prelude::*;

    /// The exact distribution of the sum of `draws` independent draws from `values` (whole
    /// numbers from 0), as probabilities of 0, 1, 2, ….
    fn exact_sum(values: &[f64], draws: u32) -> Vec<f64> {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "small whole numbers"
        )]
        let top = values.iter().fold(0.0, |a: f64, b| a.max(*b)) as usize;
        #[expect(clippy::cast_precision_loss, reason = "small test")]
        let share = 1.0 / values.len() as f64;
        let mut one = vec![0.0; top + 1];
        for value in values {
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "small whole numbers"
            )]
            let index = *value as usize;
            one[index] += share;
        }
        let mut sum = vec![1.0];
        for _ in 0..draws {
            let mut next = vec![0.0; sum.len() + top];
            for (a, pa) in sum.iter().enumerate() {
                for (b, pb) in one.iter().enumerate() {
                    next[a + b] += pa * pb;
                }
            }
            sum = next;
        }
        sum
    }

    /// The saddle-point approximation, even where the exact distribution is cheap.
    fn approximate<'a>(randomisation: &'a Randomisation, rings: &[Ring]) -> LocalSum<'a> {
        LocalSum {
            randomisation,
            rings: rings.to_vec(),
            exact: None,
        }
    }

    /// Sparse Poisson-like counts: mostly zeros, some ones, a few larger.
    fn sparse_values() -> Vec<f64> {
        let mut values = vec![0.0; 600];
        values.extend(vec![1.0; 300]);
        values.extend(vec![2.0; 75]);
        values.extend(vec![3.0; 20]);
        values.extend([4.0, 5.0, 5.0, 7.0, 9.0]);
        values
    }

    #[test]
    fn uniform_kernel_sums_are_exact_and_the_saddlepoint_close() {
        let values = sparse_values();
        let randomisation = Randomisation::new(&values);
        for members in [6_u32, 18, 36] {
            let exact = exact_sum(&values, members);
            let mean: f64 = exact.iter().enumerate().map(|(s, p)| s as f64 * p).sum();
            let rings = [Ring {
                weight: 1.0,
                members,
            }];
            for (s, _) in exact.iter().enumerate().filter(|(_, p)| **p > 1e-12) {
                let observed = s as f64;
                let tail: f64 = if observed > mean {
                    exact[s..].iter().sum()
                } else {
                    exact[..=s].iter().sum()
                };
                let expected = (2.0 * tail).min(1.0);
                let local_sum = randomisation.local_sum(&rings);
                assert!(local_sum.is_exact());
                let exact = local_sum.two_sided_p(observed);
                assert!(
                    (exact - expected).abs() <= 1e-9 * expected,
                    "m = {members}, s = {s}: {exact:e} against {expected:e}"
                );
                let approximate = approximate(&randomisation, &rings).two_sided_p(observed);
                assert!(
                    approximate / expected > 0.8 && approximate / expected < 1.3,
                    "m = {members}, s = {s}: saddle-point {approximate:e}, exact {expected:e}"
                );
            }
        }
    }

    /// The worst ratio of saddle-point to exact two-sided p-values over every attainable sum
    /// of two rings (exact by enumerating both rings' sums).
    /// Exact sums are checked against the enumeration on the way.
    fn worst_ratio_over_two_rings(values: &[f64], rings: [Ring; 2]) -> f64 {
        let randomisation = Randomisation::new(values);
        let (inner, outer) = (
            exact_sum(values, rings[0].members),
            exact_sum(values, rings[1].members),
        );
        let mut outcomes: Vec<(f64, f64)> = Vec::new();
        for (a, pa) in inner.iter().enumerate() {
            for (b, pb) in outer.iter().enumerate() {
                outcomes.push((
                    rings[0].weight * a as f64 + rings[1].weight * b as f64,
                    pa * pb,
                ));
            }
        }
        let mean: f64 = outcomes.iter().map(|(sum, p)| sum * p).sum();
        let mut worst = f64::INFINITY;
        for (observed, probability) in &outcomes {
            if *probability < 1e-12 {
                continue;
            }
            let tail: f64 = outcomes
                .iter()
                .filter(|(sum, _)| {
                    if *observed > mean {
                        *sum >= *observed - 1e-9
                    } else {
                        *sum <= *observed + 1e-9
                    }
                })
                .map(|(_, p)| p)
                .sum();
            let expected = (2.0 * tail).min(1.0);
            let exact = randomisation.local_sum(&rings).two_sided_p(*observed);
            if randomisation.local_sum(&rings).is_exact() {
                assert!(
                    (exact - expected).abs() <= 1e-9 * expected,
                    "{observed}: {exact} against {expected}"
                );
            }
            worst =
                worst.min(approximate(&randomisation, &rings).two_sided_p(*observed) / expected);
        }
        worst
    }

    #[test]
    fn weighted_kernel_tails_are_exact_or_never_much_below_the_exact_distribution() {
        // k = 1: the cell itself and its six neighbours.
        let values = sparse_values();
        let triangular = [
            Ring {
                weight: 1.0,
                members: 1,
            },
            Ring {
                weight: Kernel::Triangular.weight(1, 1),
                members: 6,
            },
        ];
        let gaussian = [
            Ring {
                weight: 1.0,
                members: 1,
            },
            Ring {
                weight: Kernel::Gaussian.weight(1, 1),
                members: 6,
            },
        ];
        for (name, rings) in [("triangular", triangular), ("gaussian", gaussian)] {
            let worst = worst_ratio_over_two_rings(&values, rings);
            eprintln!("{name}: worst ratio {worst}");
            assert!(
                worst > 0.8,
                "{name}: the saddle-point p-value fell to {worst} of the exact one"
            );
        }
    }

    #[test]
    fn a_study_area_without_variation_has_nothing_to_test() {
        let randomisation = Randomisation::new(&[3.0; 50]);
        let rings = [Ring {
            weight: 1.0,
            members: 7,
        }];
        assert!((randomisation.local_sum(&rings).two_sided_p(21.0) - 1.0).abs() < f64::EPSILON);
    }

    #[test]
    fn the_largest_possible_sum_has_its_exact_probability() {
        // Two of ten cells hold 1: seven draws all 1 has probability 0.2^7.
        let mut values = vec![0.0; 8];
        values.extend([1.0, 1.0]);
        let randomisation = Randomisation::new(&values);
        let rings = [Ring {
            weight: 1.0,
            members: 7,
        }];
        let p = approximate(&randomisation, &rings).two_sided_p(7.0);
        let exact = 2.0 * 0.2_f64.powi(7);
        assert!((p - exact).abs() / exact < 0.05, "{p} against {exact}");
    }

    proptest! {
        #[test]
        fn p_values_are_probabilities_and_fall_away_from_the_mean(
            values in proptest::collection::vec(0_u8..6, 20..200),
            members in 1_u32..40,
            gaussian in any::<bool>(),
        ) {
            let values: Vec<f64> = values.into_iter().map(f64::from).collect();
            let randomisation = Randomisation::new(&values);
            let rings = if gaussian {
                vec![Ring { weight: 1.0, members: 1 }, Ring { weight: (-0.125_f64).exp(), members: members.min(6) }]
            } else {
                vec![Ring { weight: 1.0, members }]
            };
            let mean = randomisation.cumulants(&rings, 0.0).slope;
            let top = randomisation.cumulants(&rings, 0.0).slope.max(1.0) * 4.0 + 10.0;
            let mut previous = 1.0;
            let mut s = mean + 0.5;
            while s <= top {
                let p = approximate(&randomisation, &rings).two_sided_p(s);
                prop_assert!((0.0..=1.0).contains(&p), "p = {p} at {s}");
                prop_assert!(p <= previous + 1e-9, "p rose from {previous} to {p} at {s}");
                previous = p;
                s += 0.5;
            }
        }
    }
}
