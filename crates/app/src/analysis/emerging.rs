//! Emerging hotspots: space-time Gi*, Mann–Kendall trends and the 17 categories of ArcGIS's
//! Emerging Hot Spot Analysis over a partnership's coverage.

use atlas_access::RecordScope;
use atlas_analytics::emerging::{
    EmergingCell, MIN_STEPS, MIN_TREND_WINDOWS, Step, check_budget, cube, emerging_hot_spots,
    trend_windows,
};
use atlas_analytics::gistar::GiStarError;
use atlas_domain::{GssCode, StoredResolution};
use chrono::NaiveDate;

use super::population::UNADJUSTED;
use super::{
    Adjustment, Analyses, AnalysisError, GridQuestion, Measure, PopulationBasis, StopOnDrop,
    blocking, cells, check_level, check_ring_size,
};

/// The most earlier steps a bin's neighbourhood may reach back.
pub const MAX_TIME_LAG: usize = 12;

/// What an emerging hotspot analysis is asked.
#[derive(Debug, Clone)]
pub struct EmergingQuestion {
    /// The cells and the records' filter; `from` and `to` default to the earliest and latest
    /// matching record.
    pub grid: GridQuestion,
    /// The records the caller may read.
    pub scope: RecordScope,
    /// The length of a time step.
    pub step: Step,
    /// The k-ring size, 1 to 3.
    pub k: u32,
    /// Earlier steps in each bin's neighbourhood, at most [`MAX_TIME_LAG`].
    pub time_lag: usize,
    /// What is counted in each cell.
    pub measure: Measure,
    /// The false-discovery rate of the bins and the level of the trends.
    pub alpha: f64,
    /// What the counts are set against.
    pub adjustment: Adjustment,
}

impl EmergingQuestion {
    /// Checks the settings against what the analysis supports.
    ///
    /// # Errors
    /// [`AnalysisError::Question`] naming the setting.
    pub fn check(&self) -> Result<(), AnalysisError> {
        check_ring_size(self.k)?;
        if self.time_lag > MAX_TIME_LAG {
            return Err(AnalysisError::Question(format!(
                "`time_lag` must be at most {MAX_TIME_LAG}"
            )));
        }
        check_level(self.alpha)
    }
}

/// An emerging hotspot analysis.
#[derive(Debug)]
pub struct EmergingAnalysis {
    /// The first day of each time step: whole steps that have ended.
    pub steps: Vec<NaiveDate>,
    /// The first day of a step asked for but not ended, and so left out.
    pub left_out: Option<NaiveDate>,
    /// Cells in the study area.
    pub study_area_cells: usize,
    /// The time windows that do not overlap each cell's trend is tested over (one every
    /// `time_lag + 1` steps).
    pub trend_windows: usize,
    /// True when no agency within the scope contributed records for any day of the period:
    /// there is no analysis (no steps, no cells), because there are no data.
    pub no_data: bool,
    /// Every cell of the study area, sorted by cell (none when `no_data`).
    pub cells: Vec<EmergingCell>,
    /// What the counts were set against (raw counts when no small-area populations are loaded).
    pub adjustment: Adjustment,
    /// Where the child populations come from, when the analysis is adjusted.
    pub population: Option<PopulationBasis>,
    /// Why the analysis is on raw counts when population adjustment was asked for.
    pub warning: Option<String>,
}

impl Analyses {
    /// Emerging hotspots of `code` over whole time steps that have ended by `today`. The
    /// computation stops when the returned future is dropped.
    ///
    /// # Errors
    /// [`AnalysisError::Question`] for settings out of range, too few steps or too much work;
    /// [`AnalysisError::NotFound`]; [`AnalysisError::Store`].
    pub async fn emerging(
        &self,
        code: &GssCode,
        question: &EmergingQuestion,
        today: NaiveDate,
    ) -> Result<EmergingAnalysis, AnalysisError> {
        question.check()?;
        let records = self.records(code, question.scope).await?;
        let study_area = self.study_area(code, question.grid.resolution).await?;
        let resolution = question.grid.resolution.h3();
        let no_data = self
            .has_no_data(
                code,
                question.scope,
                (question.grid.filter.from, question.grid.filter.to),
            )
            .await?;
        let populations = match question.adjustment {
            Adjustment::Population if !no_data => {
                self.cell_populations(code, question.grid.resolution)
                    .await?
            }
            _ => None,
        };
        let adjustment = if populations.is_some() || no_data {
            question.adjustment
        } else {
            Adjustment::None
        };
        let population = populations
            .as_ref()
            .map(|populations| populations.basis.clone());
        let warning = (adjustment != question.adjustment).then(|| UNADJUSTED.to_owned());
        let EmergingQuestion {
            step,
            k,
            time_lag,
            measure,
            alpha,
            ..
        } = *question;
        let mut filter = question.grid.filter.clone();
        let (_stop_on_drop, stop) = StopOnDrop::new();
        let metrics = self.metrics.clone();
        blocking("emerging", move || -> Result<EmergingAnalysis, Refused> {
            let nothing = |left_out| EmergingAnalysis {
                steps: Vec::new(),
                left_out,
                study_area_cells: cells(&study_area).len(),
                trend_windows: 0,
                no_data,
                cells: Vec::new(),
                adjustment,
                population: None,
                warning: None,
            };
            let matching = records.records.iter().filter(|record| filter.matches(record));
            let (earliest, latest) = matching.fold(
                (None, None),
                |(low, high): (Option<NaiveDate>, Option<NaiveDate>), record| {
                    (
                        Some(low.map_or(record.occurred_on, |low| low.min(record.occurred_on))),
                        Some(high.map_or(record.occurred_on, |high| high.max(record.occurred_on))),
                    )
                },
            );
            let (Some(from), Some(to)) = (filter.from.or(earliest), filter.to.or(latest)) else {
                if no_data {
                    return Ok(nothing(None));
                }
                return Err(Refused::Question(
                    "no records match, so there is no period to analyse".to_owned(),
                ));
            };
            // Whole steps that have ended: a part-counted first or last step would look like a
            // rise or a fall, and turn hot spots "historical".
            let (starts, last, left_out) = step.whole(from, to, today);
            if starts.len() < MIN_STEPS {
                return Err(Refused::Question(format!(
                    "{} to {} is {} whole, ended time step(s); emerging hotspots need at least {MIN_STEPS}: widen the period or choose a shorter step",
                    from,
                    to,
                    starts.len()
                )));
            }
            let windows = trend_windows(starts.len(), time_lag);
            if windows < MIN_TREND_WINDOWS {
                return Err(Refused::Question(format!(
                    "{} whole, ended time steps at time_lag {time_lag} hold {windows} time windows that do not overlap, and a trend needs at least {MIN_TREND_WINDOWS} (with fewer, no trend can be significant): widen the period, choose a shorter step or a smaller time_lag",
                    starts.len()
                )));
            }
            if let Some(first) = starts.first() {
                filter.from = Some(*first);
                filter.to = Some(last);
            }
            check_budget(cells(&study_area).len(), starts.len(), k, time_lag)
                .map_err(|err| Refused::OverBudget(err.to_string()))?;
            // Without data there is nothing to analyse (checked after the question itself).
            if no_data {
                return Ok(nothing(left_out));
            }
            let _running = metrics.start("emerging");
            let area = study_area.ok_or_else(|| GiStarError::EmptyStudyArea.to_string())?;
            let counts = cube(
                &records.records,
                resolution,
                &filter,
                &starts,
                step,
                measure.by_subjects(),
            );
            let series: Vec<Vec<f64>> = area
                .cells()
                .iter()
                .map(|cell| {
                    counts.get(cell).map_or_else(
                        || vec![0.0; starts.len()],
                        |counts| counts.iter().map(|count| f64::from(*count)).collect(),
                    )
                })
                .collect();
            let children = populations.map(|populations| populations.of(area.cells()));
            let cells = emerging_hot_spots(
                &area,
                &series,
                children.as_deref(),
                k,
                time_lag,
                alpha,
                &stop,
            )
                .inspect_err(|err| metrics.note_stopped("emerging", err))
                .map_err(|err| err.to_string())?;
            Ok(EmergingAnalysis {
                trend_windows: windows,
                steps: starts,
                left_out,
                study_area_cells: area.cells().len(),
                no_data,
                cells,
                adjustment,
                population,
                warning,
            })
        })
        .await?
        .map_err(|refused| match refused {
            Refused::OverBudget(reason) => AnalysisError::OverBudget(format!(
                "no emerging hotspot analysis is possible: {reason}"
            )),
            Refused::Question(reason) => AnalysisError::Question(format!(
                "no emerging hotspot analysis is possible: {reason}"
            )),
        })
    }

    /// [`Self::emerging`] at the question's resolution or, while that is more work than one
    /// request may ask for, the next coarser one down to 6: for a resolution chosen from the
    /// data, not by the caller. The question's resolution is the one used.
    ///
    /// # Errors
    /// As [`Self::emerging`].
    pub async fn emerging_within_budget(
        &self,
        code: &GssCode,
        question: &mut EmergingQuestion,
        today: NaiveDate,
    ) -> Result<EmergingAnalysis, AnalysisError> {
        loop {
            match self.emerging(code, question, today).await {
                Err(AnalysisError::OverBudget(reason)) => {
                    let coarser = question
                        .grid
                        .resolution
                        .get()
                        .checked_sub(1)
                        .filter(|resolution| *resolution >= 6)
                        .and_then(|resolution| StoredResolution::try_from(resolution).ok())
                        .ok_or(AnalysisError::OverBudget(reason))?;
                    question.grid.resolution = coarser;
                }
                answer => return answer,
            }
        }
    }
}

/// Why the blocking part of an emerging analysis refused.
enum Refused {
    /// More work than one request may ask for.
    OverBudget(String),
    /// Anything else the caller must change.
    Question(String),
}

impl From<String> for Refused {
    fn from(reason: String) -> Self {
        Self::Question(reason)
    }
}
