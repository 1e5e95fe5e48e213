//! A partnership's analyses as typed services: its [grid](Analyses::grid), Gi*
//! [hotspots](Analyses::hotspots), [emerging hotspots](Analyses::emerging) and the
//! [regional](Analyses::regional) hotspots merged with its neighbours'. Each takes a typed
//! question, checks it (settings, budget), reads the records the caller's scope allows through
//! the [`RecordCache`] and returns a typed answer; front ends parse and render, nothing else.

pub mod areas;
mod emerging;
mod hotspots;
mod kept;
mod metrics;
mod population;
mod regional;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use atlas_access::RecordScope;
use atlas_analytics::gistar::StudyArea;
use atlas_analytics::grid::{Filter, GridCell, grid as count_cells};
use atlas_domain::calendar::{FIRST_DAY, LAST_DAY};
use atlas_domain::{GssCode, StoredResolution};
use atlas_store::{Database, StoreError, batches, partnerships};
use chrono::NaiveDate;
use h3o::CellIndex;

use atlas_store::records::PartnershipRecords;

use crate::RecordCache;

pub use emerging::{EmergingAnalysis, EmergingQuestion, MAX_TIME_LAG};
pub use hotspots::{
    Adjustment, HotspotAnalysis, HotspotCell, HotspotQuestion, HotspotSettings,
    MAX_PERMUTATION_WORK, MAX_PERMUTATIONS, MIN_CHILDREN_NEARBY, NeighbourResolution,
    PERMUTATION_SEED, Sensitivity,
};
pub use kept::{Coverage, POPULATION_BUDGET_BYTES, STUDY_AREA_BUDGET_BYTES, cells};
pub use metrics::AnalysisMetrics;
pub use population::{CellPopulations, ChosenResolution, Placement, PopulationBasis};
pub use regional::{
    MAX_REGIONAL_QUARTERS, NeighbourSummary, REGIONAL_ALPHAS, REGIONAL_PERMUTATIONS,
    RegionalAnalysis, RegionalCell, RegionalPartners, RegionalQuestion,
};

/// Why an analysis has no answer.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// The question cannot be answered as asked (a setting out of range, more work than one
    /// question may ask for, too few time steps): the caller's to change.
    #[error("{0}")]
    Question(String),
    /// The question asks for more work than one request may (the caller's to change: a
    /// coarser resolution, a shorter period).
    #[error("{0}")]
    OverBudget(String),
    /// What the question names does not exist, such as a partnership.
    #[error("{0}")]
    NotFound(String),
    /// The question cannot be answered in the present state, such as a release of a quarter
    /// no agency contributed to.
    #[error("{0}")]
    Conflict(String),
    /// PostgreSQL failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A fault of ours, such as a computation that panicked.
    #[error("{0}")]
    Internal(String),
}

impl AnalysisError {
    /// No partnership has `code`.
    #[must_use]
    pub fn unknown(code: &GssCode) -> Self {
        Self::NotFound(format!("no partnership has the code {code}"))
    }
}

/// What an analysis counts in each cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Measure {
    /// Distinct children (by pseudonym, across agencies), so that one child with many records
    /// cannot make a hot spot.
    #[default]
    Subjects,
    /// Records.
    Records,
}

impl Measure {
    /// The name the API uses.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Subjects => "subjects",
            Self::Records => "records",
        }
    }

    /// Whether distinct subjects are counted.
    #[must_use]
    pub const fn by_subjects(self) -> bool {
        matches!(self, Self::Subjects)
    }
}

impl FromStr for Measure {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "subjects" => Ok(Self::Subjects),
            "records" => Ok(Self::Records),
            other => Err(format!("`{other}` is not records or subjects")),
        }
    }
}

/// The grid part of a question: the resolution of the cells and the filter of the records.
#[derive(Debug, Clone)]
pub struct GridQuestion {
    /// The H3 resolution of the cells.
    pub resolution: StoredResolution,
    /// Which records count.
    pub filter: Filter,
}

/// A partnership's grid: the cells with at least one matching record, and whether there are
/// data at all.
#[derive(Debug)]
pub struct GridAnswer {
    /// Cells with at least one record, sorted by cell.
    pub cells: Vec<GridCell>,
    /// True when no agency within the scope contributed records for any day of the period:
    /// no cells because no data, not because nothing happened.
    pub no_data: bool,
}

/// Child populations kept per partnership and resolution, at (coverage, population sources)
/// versions.
type KeptPopulations = kept::Kept<Option<Arc<CellPopulations>>, (i64, i64)>;

/// The analyses, over the store and the record cache; cheap to clone.
#[derive(Clone)]
pub struct Analyses {
    pub(crate) database: Database,
    pub(crate) cache: Arc<RecordCache>,
    study_areas: Arc<kept::Kept<Coverage, i64>>,
    populations: Arc<KeptPopulations>,
    metrics: AnalysisMetrics,
}

impl Analyses {
    /// Analyses over `database`, reading records through `cache`, keeping study areas within
    /// [`STUDY_AREA_BUDGET_BYTES`] and their child populations within
    /// [`POPULATION_BUDGET_BYTES`], and counting long analyses in `metrics`.
    #[must_use]
    pub fn new(database: Database, cache: Arc<RecordCache>, metrics: AnalysisMetrics) -> Self {
        Self {
            database,
            cache,
            study_areas: Arc::new(kept::Kept::new(STUDY_AREA_BUDGET_BYTES)),
            populations: Arc::new(kept::Kept::new(POPULATION_BUDGET_BYTES)),
            metrics,
        }
    }

    /// The grid of the records of `code` within `scope`: records, distinct children, agencies
    /// and multi-agency overlap per cell.
    ///
    /// # Errors
    /// [`AnalysisError::NotFound`], [`AnalysisError::Store`].
    pub async fn grid(
        &self,
        code: &GssCode,
        scope: RecordScope,
        question: &GridQuestion,
    ) -> Result<GridAnswer, AnalysisError> {
        let cells = self.cells(code, scope, question).await?;
        let no_data = self
            .has_no_data(code, scope, (question.filter.from, question.filter.to))
            .await?;
        Ok(GridAnswer { cells, no_data })
    }

    /// The records of `code` within `scope`.
    pub(crate) async fn records(
        &self,
        code: &GssCode,
        scope: RecordScope,
    ) -> Result<Arc<PartnershipRecords>, AnalysisError> {
        self.cache
            .records(&self.database, code, scope)
            .await?
            .ok_or_else(|| AnalysisError::unknown(code))
    }

    /// The grid cells of the records of `code` within `scope`.
    async fn cells(
        &self,
        code: &GssCode,
        scope: RecordScope,
        question: &GridQuestion,
    ) -> Result<Vec<GridCell>, AnalysisError> {
        let records = self.records(code, scope).await?;
        let resolution = question.resolution.h3();
        let filter = question.filter.clone();
        blocking("grid", move || {
            count_cells(&records.records, resolution, &filter)
        })
        .await
    }

    /// Whether no agency within `scope` has contributed records to `code` for any day from
    /// `from` to `to` (open ends: the whole calendar): the answer then has no data, which is not
    /// a grid of zeros. A filter that matches nothing among contributed records is a true zero.
    pub(crate) async fn has_no_data(
        &self,
        code: &GssCode,
        scope: RecordScope,
        (from, to): (Option<NaiveDate>, Option<NaiveDate>),
    ) -> Result<bool, AnalysisError> {
        let from = from.unwrap_or(FIRST_DAY);
        let to = to.unwrap_or(LAST_DAY);
        let agency = match scope {
            RecordScope::Partnership => None,
            RecordScope::Agency(agency) => Some(agency),
        };
        let mut conn = self.database.connection().await?;
        let contributed =
            batches::contributed_periods(&mut conn, &[code.to_string()], &[from], to, agency)
                .await?;
        Ok(!contributed
            .get(code.as_str())
            .is_some_and(|periods| periods.iter().any(|contributed| *contributed)))
    }

    /// The partnership's coverage at `resolution`: the study area of its analyses, `None`
    /// when it has no cells there (or no partnership has `code`). Kept between requests until
    /// the coverage is rewritten (see the `kept` module).
    ///
    /// # Errors
    /// [`AnalysisError::Store`].
    pub async fn study_area(
        &self,
        code: &GssCode,
        resolution: StoredResolution,
    ) -> Result<Coverage, AnalysisError> {
        let mut conn = self.database.connection().await?;
        let Some(version) = partnerships::coverage_version(&mut conn, code).await? else {
            return Ok(None);
        };
        if let Some(area) = self.study_areas.fresh(code, resolution, &version) {
            return Ok(area);
        }
        let coverage = partnerships::coverage(&mut conn, code, i16::from(resolution.get())).await?;
        drop(conn);
        let area = blocking("study area", move || {
            let cells: Vec<CellIndex> = coverage
                .into_iter()
                .filter_map(|cell| u64::try_from(cell).ok())
                .filter_map(|cell| CellIndex::try_from(cell).ok())
                .collect();
            // Given whole, so the area's index is sized once (what its budget counts).
            StudyArea::new(cells).ok().map(Arc::new)
        })
        .await?;
        let bytes = area.as_ref().map_or(0, |area| area.max_heap_bytes());
        self.study_areas
            .keep(code, resolution, version, area.clone(), bytes);
        Ok(area)
    }
}

/// Runs `work` on the blocking pool; `what` names it when it panics.
pub(crate) async fn blocking<T: Send + 'static>(
    what: &'static str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AnalysisError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| AnalysisError::Internal(format!("{what}: {err}")))
}

/// Sets its flag when dropped: when the future of an analysis is dropped because its caller has
/// gone (or the analysis is done), the computation watching the flag stops.
struct StopOnDrop(Arc<AtomicBool>);

impl StopOnDrop {
    /// A guard and the flag it sets.
    fn new() -> (Self, Arc<AtomicBool>) {
        let stop = Arc::new(AtomicBool::new(false));
        (Self(Arc::clone(&stop)), stop)
    }
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// `k`: the k-ring size, 1 to 3.
fn check_ring_size(k: u32) -> Result<(), AnalysisError> {
    if (1..=3).contains(&k) {
        Ok(())
    } else {
        Err(AnalysisError::Question("`k` must be 1, 2 or 3".to_owned()))
    }
}

/// `alpha`: the false-discovery rate, strictly between 0 and 1.
fn check_level(alpha: f64) -> Result<(), AnalysisError> {
    if alpha > 0.0 && alpha < 1.0 {
        Ok(())
    } else {
        Err(AnalysisError::Question(
            "`alpha` must be between 0 and 1".to_owned(),
        ))
    }
}
