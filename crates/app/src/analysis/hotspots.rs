//! Getis-Ord Gi* hotspots over a partnership's whole coverage, with false-discovery control.

use std::collections::{BTreeMap, BTreeSet};

use atlas_access::RecordScope;
use atlas_analytics::gistar::{
    GiStar, GiStarError, Kernel, benjamini_hochberg, confidence_bins, excess_over_expected,
    gi_star, permutation_p, randomisation_p, two_sided_p,
};
use atlas_analytics::grid::{cell_values, subjects_nearby};
use atlas_analytics::hashing::KeyMap;
use atlas_analytics::rates::expected_counts;
use atlas_domain::{GssCode, StoredResolution};
use h3o::CellIndex;

use super::population::UNADJUSTED;
use super::{
    Analyses, AnalysisError, AnalysisMetrics, CellPopulations, Coverage, GridQuestion, Measure,
    PopulationBasis, StopOnDrop, blocking, cells, check_level, check_ring_size,
};

/// The most permutations one question may ask for.
pub const MAX_PERMUTATIONS: u32 = 9_999;
/// The most cells × permutations one question may ask for (a few seconds of work).
pub const MAX_PERMUTATION_WORK: usize = 50_000_000;
/// The seed of permutation tests: the same question always gets the same answer.
pub const PERMUTATION_SEED: u64 = 20_261_128;
/// The fewest distinct children within a cell's neighbourhood for it to be called a hot spot:
/// below that a "hot spot" is one family's or a few children's story, which a map should not
/// generalise (docs/analytics.md, "Minimum support"). The same number as the publication gate's
/// smallest shown count.
pub const MIN_CHILDREN_NEARBY: u32 = 5;

/// What a hotspot analysis sets the counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Adjustment {
    /// The children living in each cell: each neighbourhood's count against the count its
    /// children would have at the study area's overall rate (an exact Poisson test), so that a
    /// hot spot is more children affected than the child population would lead us to expect.
    #[default]
    Population,
    /// Nothing: Gi* on raw counts, where a hot spot may only be where many children live.
    None,
}

impl Adjustment {
    /// The name the API uses.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Population => "population",
            Self::None => "none",
        }
    }
}

impl std::str::FromStr for Adjustment {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "population" => Ok(Self::Population),
            "none" => Ok(Self::None),
            other => Err(format!("`{other}` is not population or none")),
        }
    }
}

/// The statistic's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HotspotSettings {
    /// The k-ring size, 1 to 3.
    pub k: u32,
    /// The weights of the neighbourhood.
    pub kernel: Kernel,
    /// What is counted in each cell.
    pub measure: Measure,
    /// Conditional permutations (0: the randomisation test).
    pub permutations: u32,
    /// The false-discovery rate.
    pub alpha: f64,
    /// What the counts are set against.
    pub adjustment: Adjustment,
}

impl Default for HotspotSettings {
    fn default() -> Self {
        Self {
            k: 1,
            kernel: Kernel::Uniform,
            measure: Measure::Subjects,
            permutations: 0,
            alpha: 0.05,
            adjustment: Adjustment::Population,
        }
    }
}

impl HotspotSettings {
    /// Checks the settings against what the statistic supports.
    ///
    /// # Errors
    /// [`AnalysisError::Question`] naming the setting.
    pub fn check(&self) -> Result<(), AnalysisError> {
        check_ring_size(self.k)?;
        if self.permutations > MAX_PERMUTATIONS {
            return Err(AnalysisError::Question(format!(
                "`permutations` must be at most {MAX_PERMUTATIONS}"
            )));
        }
        if self.permutations > 0 && self.adjustment == Adjustment::Population {
            return Err(AnalysisError::Question(
                "`permutations`: a population-adjusted analysis tests each neighbourhood against \
                 its own expected count exactly (a Poisson test), which shuffling cells cannot \
                 do; ask for permutations=0, or adjust=none for raw counts"
                    .to_owned(),
            ));
        }
        if self.adjustment == Adjustment::Population && self.kernel != Kernel::Uniform {
            return Err(AnalysisError::Question(
                "`kernel`: a population-adjusted analysis tests each neighbourhood's count \
                 against its expected count exactly, which a weighted sum does not allow; ask \
                 for kernel=uniform, or adjust=none for raw counts with any kernel"
                    .to_owned(),
            ));
        }
        if self.permutations > 0 && self.kernel != Kernel::Uniform {
            return Err(AnalysisError::Question(
                "`permutations`: the permutation test sums its neighbourhoods unweighted, so it \
                 tests the uniform kernel only; ask for kernel=uniform, or permutations=0 (the \
                 randomisation test, which uses the kernel asked for)"
                    .to_owned(),
            ));
        }
        check_level(self.alpha)
    }

    /// Refuses a sensitivity comparison with permutations: three permutation tests are more
    /// work than one request may ask for.
    ///
    /// # Errors
    /// [`AnalysisError::Question`] naming the setting.
    pub fn check_sensitivity(&self) -> Result<(), AnalysisError> {
        if self.permutations > 0 {
            return Err(AnalysisError::Question(
                "`sensitivity` compares three resolutions, which with permutations is more work \
                 than one request may ask for: ask for permutations=0"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    /// The test deciding significance: `poisson` (adjusted for population), `permutation` or
    /// `randomisation`.
    #[must_use]
    pub const fn test(&self) -> &'static str {
        match (self.adjustment, self.permutations) {
            (Adjustment::Population, _) => "poisson",
            (Adjustment::None, 0) => "randomisation",
            (Adjustment::None, _) => "permutation",
        }
    }

    /// The seed of the permutation test, when there is one.
    #[must_use]
    pub const fn seed(&self) -> Option<u64> {
        if self.permutations > 0 {
            Some(PERMUTATION_SEED)
        } else {
            None
        }
    }

    /// These settings with permutations chosen automatically where the randomisation test
    /// would lose power: raw counts (`adjust=none`), the uniform kernel and no permutations
    /// asked for, over a study area so small that a neighbourhood of `m` cells is a sizeable
    /// share of its `n` (`n < 11 m − 10`, where drawing with replacement overstates the local
    /// sum's variance by more than 10 %: `(n − 1) / (n − m) > 1.1`). The conditional
    /// permutation test draws without replacement; it gets [`MAX_PERMUTATIONS`], or as many as
    /// the budget allows.
    #[must_use]
    pub fn with_automatic_permutations(self, study_area_cells: usize) -> Self {
        let members = 3 * self.k as usize * (self.k as usize + 1) + 1;
        let small = study_area_cells + 10 < 11 * members;
        if self.adjustment != Adjustment::None
            || self.kernel != Kernel::Uniform
            || self.permutations > 0
            || !small
        {
            return self;
        }
        let affordable = MAX_PERMUTATION_WORK / study_area_cells.max(1);
        Self {
            permutations: u32::try_from(affordable)
                .unwrap_or(MAX_PERMUTATIONS)
                .min(MAX_PERMUTATIONS),
            ..self
        }
    }

    /// Refuses more cells × permutations than one question may ask for.
    pub(super) fn check_budget(&self, study_area_cells: usize) -> Result<(), AnalysisError> {
        let permutations = self.permutations;
        if study_area_cells.saturating_mul(permutations as usize) > MAX_PERMUTATION_WORK {
            return Err(AnalysisError::Question(format!(
                "{permutations} permutations over {study_area_cells} cells is more work than one request may ask for \
                 (at most {MAX_PERMUTATION_WORK} cells × permutations): ask for fewer permutations or a coarser resolution"
            )));
        }
        Ok(())
    }

    /// Why no cell passed false-discovery control, when permutations are the reason. With N
    /// permutations the smallest two-sided p-value is 2 / (N + 1); Benjamini–Hochberg over m
    /// cells passes the k smallest p-values when the k-th is at most k·α / m, so cells at that
    /// smallest p-value pass only when at least ⌈2m / ((N + 1) α)⌉ of them reach it together.
    /// `None` when some cell passed, when permutations were not used, or when one cell could
    /// pass alone.
    pub(super) fn too_few_permutations(&self, cells: usize, discoveries: usize) -> Option<String> {
        let (permutations, alpha) = (self.permutations, self.alpha);
        if permutations == 0 || discoveries > 0 {
            return None;
        }
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "counts of cells and permutations, far below 2^52"
        )]
        let (together, alone) = (
            (2.0 * cells as f64 / ((f64::from(permutations) + 1.0) * alpha)).ceil() as u64,
            (2.0 * cells as f64 / alpha).ceil() as u64 - 1,
        );
        (together > 1).then(|| {
            format!(
                "no cell passed false-discovery control at alpha {alpha}, and with {permutations} \
                 permutations over {cells} cells none could unless at least {together} cells reached \
                 the smallest p-value a permutation test can give (2 / {}): {alone} permutations would \
                 let one cell pass alone; ask for a coarser resolution, or use the randomisation test \
                 (permutations=0), which has no such limit",
                u64::from(permutations) + 1
            )
        })
    }
}

/// What a hotspot analysis is asked: the grid's question, the statistic's settings, and the
/// records the caller may analyse.
#[derive(Debug, Clone)]
pub struct HotspotQuestion {
    /// The cells and the records' filter.
    pub grid: GridQuestion,
    /// The records the caller may read.
    pub scope: RecordScope,
    /// The statistic's settings.
    pub settings: HotspotSettings,
}

/// One cell of a hotspot analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct HotspotCell {
    /// The H3 cell.
    pub cell: CellIndex,
    /// The value counted.
    pub value: u32,
    /// The value expected from the children living here at the study area's overall rate, when
    /// the analysis is adjusted for population.
    pub expected: Option<f64>,
    /// The Gi* z-score of the counts; adjusted for population, the neighbourhood's count less
    /// its expected count over the Poisson standard deviation.
    pub z: f64,
    /// The two-sided p-value of `z` from the normal (esda's `p_norm`).
    pub p: f64,
    /// The two-sided p-value of the local sum under randomisation (raw counts).
    pub p_randomisation: Option<f64>,
    /// The two-sided Poisson p-value of the neighbourhood's count against its expected count
    /// (adjusted for population).
    pub p_poisson: Option<f64>,
    /// The one-sided permutation pseudo p-value, when permutations were asked for.
    pub p_sim: Option<f64>,
    /// A discovery at the false-discovery rate.
    pub significant: bool,
    /// −3…+3: cold or hot spot at 99 / 95 / 90 % confidence after false-discovery control.
    pub bin: i8,
    /// True when the cell passed the test as a hot spot but fewer than
    /// [`MIN_CHILDREN_NEARBY`] distinct children have records within its neighbourhood: "too
    /// few children to say", so `significant` is false and `bin` 0.
    pub too_few_children: bool,
}

impl HotspotCell {
    /// Whether the test calls the cell hot: a positive bin, or significant at the question's
    /// `alpha` with z > 0.
    #[must_use]
    pub fn is_called_hot(&self) -> bool {
        self.bin > 0 || (self.significant && self.z > 0.0)
    }
}

/// Takes away the hot spots of `cells` whose neighbourhood holds fewer than
/// [`MIN_CHILDREN_NEARBY`] children by `children_nearby`: "too few children to say".
pub(super) fn withhold_thin(cells: &mut [HotspotCell], children_nearby: impl Fn(CellIndex) -> u32) {
    for cell in cells.iter_mut().filter(|cell| cell.is_called_hot()) {
        if children_nearby(cell.cell) < MIN_CHILDREN_NEARBY {
            cell.too_few_children = true;
            cell.significant = false;
            cell.bin = 0;
        }
    }
}

/// A hotspot analysis.
#[derive(Debug)]
pub struct HotspotAnalysis {
    /// Cells in the study area.
    pub study_area_cells: usize,
    /// True when no agency within the scope contributed records for any day of the period:
    /// there is no analysis (no cells), because there are no data.
    pub no_data: bool,
    /// Every cell of the study area, sorted by cell (none when `no_data`).
    pub cells: Vec<HotspotCell>,
    /// Why no cell passed false-discovery control, when too few permutations are the reason;
    /// or why the analysis is on raw counts when population adjustment was asked for.
    pub warning: Option<String>,
    /// The settings as run: what the counts were set against (raw counts when no small-area
    /// populations are loaded), and the permutations chosen for a small study area.
    pub settings: HotspotSettings,
    /// Where the child populations come from, when the analysis is adjusted.
    pub population: Option<PopulationBasis>,
}

impl Analyses {
    /// Gi* hotspots of `code`: over its whole coverage at the question's resolution (zeros
    /// included), with false-discovery control. The permutation test, the long part, stops
    /// when the returned future is dropped.
    ///
    /// # Errors
    /// [`AnalysisError::Question`] for settings out of range, too much work, or a study area
    /// that cannot be analysed; [`AnalysisError::NotFound`]; [`AnalysisError::Store`].
    pub async fn hotspots(
        &self,
        code: &GssCode,
        question: &HotspotQuestion,
    ) -> Result<HotspotAnalysis, AnalysisError> {
        question.settings.check()?;
        let values = self.values(code, question).await?;
        let study_area = self.study_area(code, question.grid.resolution).await?;
        let study_area_cells = cells(&study_area).len();
        question.settings.check_budget(study_area_cells)?;
        // Without data there is nothing to analyse: an analysis of zeros would call every cell
        // "not significant", a statement the data cannot support.
        let no_data = self
            .has_no_data(
                code,
                question.scope,
                (question.grid.filter.from, question.grid.filter.to),
            )
            .await?;
        let populations = match question.settings.adjustment {
            Adjustment::Population if !no_data => {
                self.cell_populations(code, question.grid.resolution)
                    .await?
            }
            _ => None,
        };
        let asked = question.settings.adjustment;
        let adjustment = if asked == Adjustment::Population && populations.is_none() && !no_data {
            Adjustment::None
        } else {
            asked
        };
        let settings = HotspotSettings {
            adjustment,
            ..question.settings
        }
        .with_automatic_permutations(study_area_cells);
        let mut cells = if no_data {
            Vec::new()
        } else {
            self.analyse(study_area, values, populations.as_deref(), &settings)
                .await?
        };
        self.require_support(code, question, &mut cells).await?;
        let discoveries = cells.iter().filter(|cell| cell.significant).count();
        let unadjusted = (asked != adjustment).then(|| UNADJUSTED.to_owned());
        Ok(HotspotAnalysis {
            study_area_cells,
            no_data,
            warning: match (
                settings.too_few_permutations(study_area_cells, discoveries),
                unadjusted,
            ) {
                (Some(permutations), Some(unadjusted)) => {
                    Some(format!("{unadjusted}; {permutations}"))
                }
                (permutations, unadjusted) => permutations.or(unadjusted),
            },
            settings,
            population: populations.map(|populations| populations.basis.clone()),
            cells,
        })
    }

    /// Takes away the hot spots of `cells` with fewer than [`MIN_CHILDREN_NEARBY`] distinct
    /// children in their neighbourhood.
    async fn require_support(
        &self,
        code: &GssCode,
        question: &HotspotQuestion,
        cells: &mut [HotspotCell],
    ) -> Result<(), AnalysisError> {
        let hot: Vec<CellIndex> = cells
            .iter()
            .filter(|cell| cell.is_called_hot())
            .map(|cell| cell.cell)
            .collect();
        if hot.is_empty() {
            return Ok(());
        }
        let records = self.records(code, question.scope).await?;
        let (resolution, filter, k) = (
            question.grid.resolution.h3(),
            question.grid.filter.clone(),
            question.settings.k,
        );
        let study_area: std::collections::HashSet<CellIndex> =
            cells.iter().map(|cell| cell.cell).collect();
        let nearby = blocking("hotspot support", move || {
            let within = |cell| study_area.contains(&cell);
            let nearby = subjects_nearby(
                &records.records,
                resolution,
                &filter,
                &hot,
                k,
                &within,
                MIN_CHILDREN_NEARBY,
            );
            hot.into_iter().zip(nearby).collect::<BTreeMap<_, _>>()
        })
        .await?;
        withhold_thin(cells, |cell| nearby.get(&cell).copied().unwrap_or(u32::MAX));
        Ok(())
    }

    /// The value per cell a hotspot analysis of `code` counts, of the filtered grid of the
    /// records within the question's scope.
    pub(super) async fn values(
        &self,
        code: &GssCode,
        question: &HotspotQuestion,
    ) -> Result<KeyMap<CellIndex, u32>, AnalysisError> {
        let records = self.records(code, question.scope).await?;
        let resolution = question.grid.resolution.h3();
        let filter = question.grid.filter.clone();
        let by_subjects = question.settings.measure.by_subjects();
        blocking("hotspot values", move || {
            cell_values(&records.records, resolution, &filter, by_subjects)
        })
        .await
    }

    /// Gi* with its decisions over every cell of `study_area` (zeros where `values` has none),
    /// on the counts standardised against `populations` when given ([`excess_risk`]), after the
    /// budget has been checked. The permutation test stops when the returned future is dropped.
    pub(super) async fn analyse(
        &self,
        study_area: Coverage,
        values: KeyMap<CellIndex, u32>,
        populations: Option<&CellPopulations>,
        settings: &HotspotSettings,
    ) -> Result<Vec<HotspotCell>, AnalysisError> {
        let HotspotSettings {
            k,
            kernel,
            permutations,
            alpha,
            ..
        } = *settings;
        let (_stop_on_drop, stop) = StopOnDrop::new();
        let metrics: AnalysisMetrics = self.metrics.clone();
        let populations = populations.map(|populations| populations.of(cells(&study_area)));
        blocking("hotspots", move || -> Result<Vec<HotspotCell>, String> {
            let _running = metrics.start("hotspots");
            let area = study_area.ok_or_else(|| GiStarError::EmptyStudyArea.to_string())?;
            let counts: Vec<u32> = area
                .cells()
                .iter()
                .map(|cell| values.get(cell).copied().unwrap_or(0))
                .collect();
            let numbers: Vec<f64> = counts.iter().map(|count| f64::from(*count)).collect();
            let (result, randomisation, poisson, expected) = match populations {
                Some(populations) => {
                    let expected =
                        expected_counts(&numbers, &populations).map_err(|err| err.to_string())?;
                    let test = excess_over_expected(&area, &numbers, &expected, k)
                        .map_err(|err| err.to_string())?;
                    let normal = GiStar {
                        p: test.z.iter().map(|z| two_sided_p(*z)).collect(),
                        z: test.z,
                    };
                    (normal, None, Some(test.p), Some(expected))
                }
                None => {
                    let result =
                        gi_star(&area, &numbers, k, kernel).map_err(|err| err.to_string())?;
                    let randomisation = randomisation_p(&area, &numbers, k, kernel)
                        .map_err(|err| err.to_string())?;
                    (result, Some(randomisation), None, None)
                }
            };
            let p_sim = (permutations > 0)
                .then(|| permutation_p(&area, &numbers, k, permutations, PERMUTATION_SEED, &stop))
                .transpose()
                .inspect_err(|err| metrics.note_stopped("hotspots", err))
                .map_err(|err| err.to_string())?;
            // Permutation p-values are one-sided (the nearer tail); the decision is two-sided.
            let two_sided_sim: Option<Vec<f64>> = p_sim
                .as_ref()
                .map(|p| p.iter().map(|p| (2.0 * p).min(1.0)).collect());
            let decisive = two_sided_sim
                .as_ref()
                .or(poisson.as_ref())
                .or(randomisation.as_ref())
                .ok_or("no test was run")?;
            let significant = benjamini_hochberg(decisive, alpha);
            let bins = confidence_bins(&result.z, decisive);
            Ok(area
                .cells()
                .iter()
                .enumerate()
                .map(|(i, cell)| HotspotCell {
                    cell: *cell,
                    value: counts[i],
                    expected: expected.as_ref().map(|expected| expected[i]),
                    z: result.z[i],
                    p: result.p[i],
                    p_randomisation: randomisation.as_ref().map(|p| p[i]),
                    p_poisson: poisson.as_ref().map(|p| p[i]),
                    p_sim: p_sim.as_ref().map(|p| p[i]),
                    significant: significant[i],
                    bin: bins[i],
                    too_few_children: false,
                })
                .collect())
        })
        .await?
        .map_err(|err| AnalysisError::Question(format!("no hotspot analysis is possible: {err}")))
    }
}

/// How one map's hot spots compare with the same analysis at a neighbouring resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighbourResolution {
    /// The neighbouring resolution.
    pub resolution: StoredResolution,
    /// Its hot cells.
    pub hot: usize,
    /// This map's hot cells that lie in (coarser) or hold (finer) a hot cell there.
    pub ours_found_there: usize,
    /// Its hot cells that lie in (finer) or hold (coarser) no hot cell of this map.
    pub theirs_elsewhere: usize,
}

/// Whether a hotspot map's answer holds at the neighbouring resolutions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sensitivity {
    /// This map's hot cells.
    pub hot: usize,
    /// The same question at the resolution below and above, where stored.
    pub neighbours: Vec<NeighbourResolution>,
}

impl Sensitivity {
    /// True when every hot spot here is found at each neighbouring resolution and they find
    /// none elsewhere.
    #[must_use]
    pub fn stable(&self) -> bool {
        self.neighbours
            .iter()
            .all(|other| other.ours_found_there == self.hot && other.theirs_elsewhere == 0)
    }

    /// The sensitivity note, in a sentence or two.
    #[must_use]
    pub fn note(&self) -> String {
        let each: Vec<String> = self
            .neighbours
            .iter()
            .map(|other| {
                format!(
                    "at resolution {}, {} of the {} hot cells here fall in a hot spot there, and \
                     {} of its {} hot cells lie elsewhere",
                    other.resolution,
                    other.ours_found_there,
                    self.hot,
                    other.theirs_elsewhere,
                    other.hot
                )
            })
            .collect();
        if self.stable() {
            format!(
                "The hot spots hold at the neighbouring resolutions: {}.",
                each.join("; ")
            )
        } else {
            format!(
                "The answer changes with the resolution, so read these hot spots with care: {}.",
                each.join("; ")
            )
        }
    }
}

impl Analyses {
    /// The same hotspot question at the resolutions either side of the question's (5 to 9),
    /// compared with `cells`, the answer at the question's own. Refused with permutations
    /// (three permutation tests is more than one question may ask for).
    ///
    /// # Errors
    /// As [`Analyses::hotspots`].
    pub async fn sensitivity(
        &self,
        code: &GssCode,
        question: &HotspotQuestion,
        cells: &[HotspotCell],
    ) -> Result<Sensitivity, AnalysisError> {
        question.settings.check_sensitivity()?;
        let ours: BTreeSet<CellIndex> = cells
            .iter()
            .filter(|cell| cell.bin > 0)
            .map(|cell| cell.cell)
            .collect();
        let here = question.grid.resolution;
        let mut neighbours = Vec::new();
        for other in [here.get().checked_sub(1), here.get().checked_add(1)]
            .into_iter()
            .flatten()
            .filter_map(|resolution| StoredResolution::try_from(resolution).ok())
        {
            let mut asked = question.clone();
            asked.grid.resolution = other;
            let theirs: BTreeSet<CellIndex> = self
                .hotspots(code, &asked)
                .await?
                .cells
                .iter()
                .filter(|cell| cell.bin > 0)
                .map(|cell| cell.cell)
                .collect();
            let (coarse, fine, coarser) = if other < here {
                (&theirs, &ours, other)
            } else {
                (&ours, &theirs, here)
            };
            // Each fine hot cell's coarse parent, and which coarse hot cells hold one.
            let parents: BTreeSet<CellIndex> = fine
                .iter()
                .filter_map(|cell| cell.parent(coarser.h3()))
                .collect();
            let fine_in_coarse = fine
                .iter()
                .filter(|cell| {
                    cell.parent(coarser.h3())
                        .is_some_and(|parent| coarse.contains(&parent))
                })
                .count();
            let coarse_holding_fine = coarse.intersection(&parents).count();
            let (ours_found_there, theirs_elsewhere) = if other < here {
                (fine_in_coarse, coarse.len() - coarse_holding_fine)
            } else {
                (coarse_holding_fine, fine.len() - fine_in_coarse)
            };
            neighbours.push(NeighbourResolution {
                resolution: other,
                hot: theirs.len(),
                ours_found_there,
                theirs_elsewhere,
            });
        }
        Ok(Sensitivity {
            hot: ours.len(),
            neighbours,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_out_of_range_are_refused_naming_the_setting() {
        let refused = |settings: HotspotSettings| settings.check().unwrap_err().to_string();
        let base = HotspotSettings::default();
        assert!(refused(HotspotSettings { k: 4, ..base }).contains("`k`"));
        assert!(refused(HotspotSettings { alpha: 1.0, ..base }).contains("`alpha`"));
        assert!(
            refused(HotspotSettings {
                permutations: MAX_PERMUTATIONS + 1,
                ..base
            })
            .contains("at most")
        );
        assert!(
            refused(HotspotSettings {
                permutations: 99,
                kernel: Kernel::Gaussian,
                adjustment: Adjustment::None,
                ..base
            })
            .contains("uniform kernel only")
        );
        assert!(
            refused(HotspotSettings {
                permutations: 99,
                ..base
            })
            .contains("Poisson test")
        );
        assert!(
            refused(HotspotSettings {
                kernel: Kernel::Triangular,
                ..base
            })
            .contains("`kernel`")
        );
        assert!(base.check().is_ok());
    }

    #[test]
    fn the_permutation_warning_is_given_only_when_permutations_are_the_reason() {
        let settings = HotspotSettings {
            permutations: 99,
            ..HotspotSettings::default()
        };
        assert!(settings.too_few_permutations(5_000, 0).is_some());
        assert!(settings.too_few_permutations(5_000, 3).is_none());
        assert!(settings.too_few_permutations(1, 0).is_none());
        assert!(
            HotspotSettings::default()
                .too_few_permutations(5_000, 0)
                .is_none()
        );
    }

    #[test]
    fn a_map_is_stable_only_when_its_neighbouring_resolutions_agree() {
        let agreeing = NeighbourResolution {
            resolution: StoredResolution::try_from(7).unwrap(),
            hot: 2,
            ours_found_there: 3,
            theirs_elsewhere: 0,
        };
        let stable = Sensitivity {
            hot: 3,
            neighbours: vec![agreeing.clone()],
        };
        assert!(stable.stable());
        assert!(stable.note().starts_with("The hot spots hold"));
        let changing = Sensitivity {
            hot: 3,
            neighbours: vec![
                agreeing,
                NeighbourResolution {
                    resolution: StoredResolution::try_from(9).unwrap(),
                    hot: 5,
                    ours_found_there: 1,
                    theirs_elsewhere: 2,
                },
            ],
        };
        assert!(!changing.stable());
        assert!(changing.note().contains(
            "at resolution 9, 1 of the 3 hot cells here fall in a hot spot there, and 2 of its 5"
        ));
    }

    #[test]
    fn small_study_areas_get_permutations_on_raw_counts_only() {
        let raw = HotspotSettings {
            adjustment: Adjustment::None,
            k: 2,
            ..HotspotSettings::default()
        };
        // k = 2: 19 cells a neighbourhood; automatic below 11 × 19 − 10 = 199 cells.
        assert_eq!(
            raw.with_automatic_permutations(70).permutations,
            MAX_PERMUTATIONS
        );
        assert_eq!(
            raw.with_automatic_permutations(198).permutations,
            MAX_PERMUTATIONS
        );
        assert_eq!(raw.with_automatic_permutations(199).permutations, 0);
        assert_eq!(raw.with_automatic_permutations(70).test(), "permutation");
        for kept in [
            HotspotSettings::default(),
            HotspotSettings {
                kernel: Kernel::Triangular,
                ..raw
            },
            HotspotSettings {
                permutations: 99,
                ..raw
            },
        ] {
            assert_eq!(kept.with_automatic_permutations(70), kept);
        }
    }

    #[test]
    fn the_budget_refuses_more_work_than_one_question_may_ask() {
        let settings = HotspotSettings {
            permutations: MAX_PERMUTATIONS,
            ..HotspotSettings::default()
        };
        assert!(settings.check_budget(5_000).is_ok());
        assert!(settings.check_budget(100_000).is_err());
    }
}
