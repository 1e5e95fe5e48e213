//! Regional hotspots: Gi* over a partnership's coverage merged with its neighbours' that share
//! `regional_hotspots` with it, so that a hotspot straddling a boundary is found whole. The
//! neighbours' counts enter through the publication gate (perturbed by their records' keys);
//! the partnership learns, of its own cells, only its own value and the bin, and of its
//! neighbours' only counts of hot and cold cells (docs/privacy.md, "Cross-border hotspots").

use std::collections::BTreeSet;
use std::sync::Arc;

use atlas_access::{RecordScope, Scope};
use atlas_analytics::emerging::Step;
use atlas_analytics::gate::{self, ClosedWindow, closed_window};
use atlas_analytics::gistar::StudyArea;
use atlas_analytics::grid::Filter;
use atlas_domain::{GssCode, StoredResolution};
use atlas_store::{agreements, partnerships};
use chrono::NaiveDate;
use h3o::CellIndex;

use super::hotspots::withhold_thin;
use super::population::UNADJUSTED;
use super::{
    Adjustment, Analyses, AnalysisError, CellPopulations, GridQuestion, HotspotQuestion,
    HotspotSettings, PopulationBasis, blocking, cells,
};

/// The false-discovery rates a regional analysis offers: a free `alpha` would let a caller
/// bisect each cell's p-value out of its bin, and so the statistic the neighbours' counts are
/// mixed into.
pub const REGIONAL_ALPHAS: [f64; 3] = [0.01, 0.05, 0.1];
/// The permutation counts a regional analysis offers, for the same reason.
pub const REGIONAL_PERMUTATIONS: [u32; 2] = [0, 999];
/// The most quarters one regional analysis may cover.
pub const MAX_REGIONAL_QUARTERS: usize = 40;
/// Quarters a regional analysis covers when `from` is not given.
const DEFAULT_QUARTERS: u32 = 4;

/// What a regional analysis is asked: whole closed quarters of all records (no filters, since
/// it is built on other partnerships' records) and the statistic's settings from a small menu.
#[derive(Debug, Clone)]
pub struct RegionalQuestion {
    /// The H3 resolution of the cells.
    pub resolution: StoredResolution,
    /// A day of the first quarter (default: four closed quarters back).
    pub from: Option<NaiveDate>,
    /// A day of the last quarter (default: the last closed quarter).
    pub to: Option<NaiveDate>,
    /// The records of the partnership itself the caller may read.
    pub scope: RecordScope,
    /// The statistic's settings; `alpha` one of [`REGIONAL_ALPHAS`], `permutations` one of
    /// [`REGIONAL_PERMUTATIONS`].
    pub settings: HotspotSettings,
}

impl RegionalQuestion {
    /// Checks the settings against the menu and resolves the closed quarters covered on
    /// `today`.
    ///
    /// # Errors
    /// [`AnalysisError::Question`] naming the setting or the period.
    pub fn window(&self, today: NaiveDate) -> Result<ClosedWindow, AnalysisError> {
        self.settings.check()?;
        if !REGIONAL_ALPHAS.contains(&self.settings.alpha) {
            return Err(AnalysisError::Question(format!(
                "`alpha`: regional hotspots take 0.01, 0.05 or 0.1, since they are built on other \
                 partnerships' records (not {})",
                self.settings.alpha
            )));
        }
        if !REGIONAL_PERMUTATIONS.contains(&self.settings.permutations) {
            return Err(AnalysisError::Question(format!(
                "`permutations`: regional hotspots take 0 or 999 (not {})",
                self.settings.permutations
            )));
        }
        closed_window(
            Step::Quarter,
            self.from,
            self.to,
            today,
            DEFAULT_QUARTERS,
            MAX_REGIONAL_QUARTERS,
        )
        .map_err(|err| AnalysisError::Question(err.to_string()))
    }
}

/// A partnership's neighbours, split by whether their records enter its regional analysis.
#[derive(Debug, Clone, Default)]
pub struct RegionalPartners {
    /// Neighbours sharing `regional_hotspots` with the partnership under an agreement in force.
    pub merged: Vec<GssCode>,
    /// Neighbours that do not.
    pub not_merged: Vec<GssCode>,
}

/// One of the partnership's own cells in a regional analysis: its own count and the bin. No
/// z-score or p-value: they mix the neighbours' counts in at full precision and could be
/// inverted to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionalCell {
    /// The H3 cell.
    pub cell: CellIndex,
    /// The partnership's own value in the cell.
    pub value: u32,
    /// −3…+3: cold or hot spot at 99 / 95 / 90 % confidence after false-discovery control.
    pub bin: i8,
}

/// What a partnership learns of a neighbour's part of a regional analysis: how many of its
/// cells are hot or cold spots, no cell-level figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighbourSummary {
    /// The neighbour.
    pub code: GssCode,
    /// Cells of its coverage in the merged study area (not the partnership's own).
    pub cells: usize,
    /// Of those, hot spots at 95 % or 99 % confidence after false-discovery control.
    pub hot_cells: usize,
    /// Of those, cold spots at 95 % or 99 %.
    pub cold_cells: usize,
}

/// A regional hotspot analysis, as one partnership may see it.
#[derive(Debug)]
pub struct RegionalAnalysis {
    /// Cells in the merged study area.
    pub study_area_cells: usize,
    /// True when no agency contributed records to the partnership in the window: its own
    /// cells are left out, because it has no data.
    pub no_data: bool,
    /// The partnership's own cells (none when `no_data`).
    pub cells: Vec<RegionalCell>,
    /// The merged neighbours' parts, as summaries.
    pub neighbours: Vec<NeighbourSummary>,
    /// Why no cell passed false-discovery control, when too few permutations are the reason;
    /// or why the analysis is on raw counts.
    pub warning: Option<String>,
    /// The settings as run (raw counts when a partnership has no small-area populations).
    pub settings: HotspotSettings,
    /// Where the child populations come from, when the analysis is adjusted.
    pub population: Option<PopulationBasis>,
}

impl Analyses {
    /// The neighbours of `code` whose records enter its regional analysis on `today`.
    ///
    /// # Errors
    /// [`AnalysisError::NotFound`]; [`AnalysisError::Store`].
    pub async fn regional_partners(
        &self,
        code: &GssCode,
        today: NaiveDate,
    ) -> Result<RegionalPartners, AnalysisError> {
        let mut conn = self.database.connection().await?;
        let partnership = partnerships::find(&mut conn, code)
            .await?
            .ok_or_else(|| AnalysisError::unknown(code))?;
        let mut partners = RegionalPartners::default();
        for neighbour in partnership.neighbours {
            let scopes = agreements::shared_scopes(&mut conn, &neighbour, code, today).await?;
            if scopes.contains(&Scope::RegionalHotspots) {
                partners.merged.push(neighbour);
            } else {
                partners.not_merged.push(neighbour);
            }
        }
        Ok(partners)
    }

    /// The regional hotspots of `code` over `window` (from [`RegionalQuestion::window`]),
    /// merged with `partners.merged` (from [`Self::regional_partners`]).
    ///
    /// # Errors
    /// [`AnalysisError::Question`] for too much work or a study area that cannot be analysed;
    /// [`AnalysisError::NotFound`]; [`AnalysisError::Store`].
    pub async fn regional(
        &self,
        code: &GssCode,
        question: &RegionalQuestion,
        window: &ClosedWindow,
        partners: &RegionalPartners,
    ) -> Result<RegionalAnalysis, AnalysisError> {
        let (first, last) = (window.first(), window.last);
        let own_question = HotspotQuestion {
            grid: GridQuestion {
                resolution: question.resolution,
                filter: Filter {
                    from: Some(first),
                    to: Some(last),
                    ..Filter::default()
                },
            },
            scope: question.scope,
            settings: question.settings,
        };
        let resolution = question.resolution.h3();
        let own_area = self.study_area(code, question.resolution).await?;
        let own_cells: BTreeSet<CellIndex> = cells(&own_area).iter().copied().collect();
        let own_values = self.values(code, &own_question).await?;
        let mut values = own_values.clone();
        let mut area: BTreeSet<CellIndex> = own_cells.clone();
        let mut neighbour_cells: Vec<(GssCode, BTreeSet<CellIndex>)> = Vec::new();
        let by_subjects = question.settings.measure.by_subjects();
        for neighbour in &partners.merged {
            let theirs = self.study_area(neighbour, question.resolution).await?;
            let records = self
                .cache
                .records(&self.database, neighbour, question.scope)
                .await?
                .unwrap_or_default();
            let contribution = blocking("regional hotspots", move || {
                gate::contribution(&records.records, resolution, first, last, by_subjects)
            })
            .await?;
            for (cell, value) in contribution {
                *values.entry(cell).or_default() += value;
            }
            area.extend(cells(&theirs).iter().copied());
            neighbour_cells.push((
                neighbour.clone(),
                cells(&theirs)
                    .iter()
                    .filter(|cell| !own_cells.contains(cell))
                    .copied()
                    .collect(),
            ));
        }
        let study_area_cells = area.len();
        question.settings.check_budget(study_area_cells)?;
        let populations = match question.settings.adjustment {
            Adjustment::Population => {
                self.regional_populations(code, &partners.merged, question.resolution)
                    .await?
            }
            Adjustment::None => None,
        };
        let settings = HotspotSettings {
            adjustment: if populations.is_some() {
                Adjustment::Population
            } else {
                Adjustment::None
            },
            ..question.settings
        };
        let merged = values.clone();
        let mut analysis = self
            .analyse(
                StudyArea::new(area.iter().copied()).ok().map(Arc::new),
                values,
                populations.as_ref(),
                &settings,
            )
            .await?;
        // The minimum support counts what crossed the border, the gated per-cell figures, summed
        // over the neighbourhood (a child in two of its cells counts twice there).
        let k = settings.k;
        withhold_thin(&mut analysis, |cell| {
            cell.grid_disk::<Vec<_>>(k)
                .iter()
                .filter(|member| area.contains(*member))
                .map(|member| merged.get(member).copied().unwrap_or(0))
                .sum()
        });
        let neighbours = neighbour_cells
            .into_iter()
            .map(|(code, cells)| {
                let theirs = || analysis.iter().filter(|cell| cells.contains(&cell.cell));
                NeighbourSummary {
                    code,
                    cells: cells.len(),
                    hot_cells: theirs().filter(|cell| cell.bin >= 2).count(),
                    cold_cells: theirs().filter(|cell| cell.bin <= -2).count(),
                }
            })
            .collect();
        // Own cells only, each with the partnership's own count and the bin; none when no
        // agency contributed to the partnership in the window (no data is not a map of zeros).
        let no_data = self
            .has_no_data(code, question.scope, (Some(first), Some(last)))
            .await?;
        let discoveries = analysis.iter().filter(|cell| cell.significant).count();
        let cells = analysis
            .into_iter()
            .filter(|_| !no_data)
            .filter(|cell| own_cells.contains(&cell.cell))
            .map(|cell| RegionalCell {
                value: own_values.get(&cell.cell).copied().unwrap_or(0),
                cell: cell.cell,
                bin: cell.bin,
            })
            .collect();
        Ok(RegionalAnalysis {
            study_area_cells,
            no_data,
            cells,
            neighbours,
            warning: settings
                .too_few_permutations(study_area_cells, discoveries)
                .or_else(|| {
                    (settings.adjustment != question.settings.adjustment)
                        .then(|| UNADJUSTED.to_owned())
                }),
            settings,
            population: populations.map(|populations| populations.basis),
        })
    }

    /// The children living in each cell of the merged study area: each partnership's own
    /// resolution-9 cells ([`Self::cell_populations`]), a fine cell on a shared border taking
    /// the larger of the two figures (each side's small areas reach over the border, so a sum
    /// would count some children twice), summed into their parents at `resolution`. `None`
    /// when any partnership has no small-area populations.
    async fn regional_populations(
        &self,
        code: &GssCode,
        merged: &[GssCode],
        resolution: StoredResolution,
    ) -> Result<Option<CellPopulations>, AnalysisError> {
        let mut combined: Option<CellPopulations> = None;
        for partnership in std::iter::once(code).chain(merged) {
            let Some(populations) = self
                .cell_populations(partnership, StoredResolution::FINEST)
                .await?
            else {
                return Ok(None);
            };
            combined = Some(match combined {
                None => CellPopulations::clone(&populations),
                Some(mut all) => {
                    for (&cell, &children) in &populations.children {
                        let slot = all.children.entry(cell).or_default();
                        *slot = slot.max(children);
                    }
                    all.basis.small_areas += populations.basis.small_areas;
                    all.basis.year = all.basis.year.max(populations.basis.year);
                    all.basis.approximate |= populations.basis.approximate;
                    all.basis
                        .sources
                        .extend(populations.basis.sources.iter().cloned());
                    all.basis.sources.sort();
                    all.basis.sources.dedup();
                    all
                }
            });
        }
        Ok(combined.map(|mut populations| {
            let mut parents: std::collections::HashMap<CellIndex, f64> =
                std::collections::HashMap::new();
            for (cell, children) in populations.children {
                if let Some(parent) = cell.parent(resolution.h3()) {
                    *parents.entry(parent).or_default() += children;
                }
            }
            populations.children = parents;
            populations
        }))
    }
}
