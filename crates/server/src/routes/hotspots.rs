//! A partnership's Getis-Ord Gi* hotspots, for its own analysts.

use actix_web::{HttpRequest, HttpResponse, get, web};
use atlas_analytics::gistar::Kernel;
use atlas_app::Analyses;
use atlas_app::analysis::areas::{self, HotspotArea};
use atlas_app::analysis::{
    ChosenResolution, GridQuestion, HotspotCell, HotspotQuestion, HotspotSettings,
    MIN_CHILDREN_NEARBY, PopulationBasis, Sensitivity,
};
use atlas_app::places::PlaceNames;
use h3o::CellIndex;
use serde::Serialize;
use utoipa::ToSchema;

use crate::ApiError;
use crate::auth::Authorized;
use crate::guards::ReadAnalysis;
use crate::render::{CellRow, FilterView, answer};
use crate::routes::params::{GridQuery, HotspotSettingsQuery, Params, documented};

/// One cell of a hotspot analysis.
#[derive(Debug, Serialize, ToSchema)]
pub struct HotspotCellView {
    /// The H3 cell, as its hexadecimal index.
    #[serde(serialize_with = "crate::render::hex")]
    #[schema(value_type = String)]
    pub cell: CellIndex,
    /// Where the cell's centre is, in words, from the nearest of the partnership's places
    /// ("Burnley centre", "3 km south-west of Burnley"), for hot and cold spots and cells too
    /// few children make no hot spot; absent for other cells (the map names any cell on demand).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub near: Option<String>,
    /// The value counted (distinct children or records).
    pub value: u32,
    /// The value expected from the children living in the cell at the study area's overall
    /// rate, when the analysis is adjusted for population (`settings.adjust` = `population`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<f64>,
    /// The Gi* z-score of the counts (`adjust=none`); adjusted for population, the
    /// neighbourhood's count less its expected count over the Poisson standard deviation.
    pub z: f64,
    /// The two-sided p-value of `z` from the normal (as PySAL esda's `p_norm`), for reference:
    /// it finds false hotspots when counts are sparse.
    pub p: f64,
    /// The two-sided p-value of the cell's local sum under randomisation, exact or by
    /// saddle-point (docs/analytics.md, "Sparse counts"), when `adjust=none`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_randomisation: Option<f64>,
    /// The two-sided Poisson p-value of the neighbourhood's count against its expected count,
    /// when adjusted for population (docs/analytics.md, "Population-adjusted hotspots").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_poisson: Option<f64>,
    /// The permutation pseudo p-value, when permutations were asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_sim: Option<f64>,
    /// A discovery at the false-discovery rate `alpha` (Benjamini–Hochberg on `p_poisson`
    /// when adjusted for population, on `p_randomisation`, or on the two-sided permutation
    /// p-value `min(1, 2 p_sim)` when permutations were asked for).
    pub significant: bool,
    /// −3…+3: cold or hot spot at 99 / 95 / 90 % confidence after false-discovery control.
    pub bin: i8,
    /// "Too few children to say": the cell passed the test as a hot spot, but fewer than
    /// `settings.min_children_nearby` distinct children have records within its
    /// neighbourhood, so it is not called one (`significant` false, `bin` 0).
    pub too_few_children: bool,
}

impl HotspotCellView {
    /// The view of `cell`, named from `places` when it is a hot or cold spot or too few
    /// children make it none.
    fn new(cell: HotspotCell, places: &PlaceNames) -> Self {
        Self {
            cell: cell.cell,
            near: (cell.bin != 0 || cell.too_few_children)
                .then(|| places.describe_cell(cell.cell))
                .flatten(),
            value: cell.value,
            expected: cell.expected,
            z: cell.z,
            p: cell.p,
            p_randomisation: cell.p_randomisation,
            p_poisson: cell.p_poisson,
            p_sim: cell.p_sim,
            significant: cell.significant,
            bin: cell.bin,
            too_few_children: cell.too_few_children,
        }
    }
}

impl CellRow for HotspotCellView {
    const HEADER: &'static [&'static str] = &[
        "hex_id",
        "near",
        "value",
        "expected",
        "z",
        "p",
        "p_randomisation",
        "p_poisson",
        "p_sim",
        "significant",
        "bin",
        "too_few_children",
    ];
    const VALUE: &'static str = "each cell's value (children or records, as `measure` says) with its Getis-Ord Gi* z-score, p-values and bin (-3 to 3: cold to hot spot at 99, 95 and 90 % confidence)";
    const METHOD: &'static str = "Getis-Ord Gi* over the study area, neighbours within k rings, false-discovery-rate control over the cells; population-adjusted where `settings.adjust` says so (docs/statistics.md)";
    fn cell(&self) -> CellIndex {
        self.cell
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.cell.to_string(),
            self.near.clone().unwrap_or_default(),
            self.value.to_string(),
            self.expected.map(|e| e.to_string()).unwrap_or_default(),
            self.z.to_string(),
            self.p.to_string(),
            self.p_randomisation
                .map(|p| p.to_string())
                .unwrap_or_default(),
            self.p_poisson.map(|p| p.to_string()).unwrap_or_default(),
            self.p_sim.map(|p| p.to_string()).unwrap_or_default(),
            self.significant.to_string(),
            self.bin.to_string(),
            self.too_few_children.to_string(),
        ]
    }
}

/// The settings a hotspot analysis used.
#[derive(Debug, Serialize, ToSchema)]
pub struct HotspotSettingsView {
    /// The H3 resolution of the cells.
    pub resolution: u8,
    /// Why the analysis is on raw counts when population adjustment was asked for, and why no
    /// cell passed false-discovery control when too few permutations are the reason.
    pub warning: Option<String>,
    /// The k-ring size.
    pub k: u32,
    /// `uniform`, `triangular` or `gaussian`.
    pub kernel: &'static str,
    /// `subjects` (distinct children) or `records`.
    pub value: &'static str,
    /// Conditional permutations (0: none).
    pub permutations: u32,
    /// `poisson` (adjusted for population), `permutation` or `randomisation`: the test deciding
    /// significance.
    pub test: &'static str,
    /// The false-discovery rate.
    pub alpha: f64,
    /// The permutation test's seed, when permutations were asked for.
    pub seed: Option<u64>,
    /// What the counts were set against: `population` (the children living in each cell: each
    /// neighbourhood's count against its expected count, an exact Poisson test) or `none` (Gi*
    /// on raw counts). An analysis asked
    /// for `population` is on raw counts, with a warning, when no small-area populations are
    /// loaded.
    pub adjust: &'static str,
    /// Where the child populations come from, when `adjust` is `population`.
    pub population: Option<PopulationView>,
    /// The fewest children within a cell's neighbourhood for it to be called a hot spot
    /// (distinct children; in a regional analysis, the merged per-cell figures summed).
    pub min_children_nearby: u32,
    /// Why this resolution, when it was chosen from the data (no `resolution` asked for).
    pub resolution_chosen: Option<ChosenResolutionView>,
    /// The filters applied.
    pub filters: FilterView,
}

/// A resolution chosen from the partnership's data rather than asked for.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChosenResolutionView {
    /// Distinct children with a record the caller may read, over all the data.
    pub children: u64,
    /// Cells where children live at the resolution.
    pub lived_in_cells: usize,
    /// Why, in a sentence: the rule of docs/analytics.md ("The analysis resolution").
    pub reason: String,
}

impl From<ChosenResolution> for ChosenResolutionView {
    fn from(chosen: ChosenResolution) -> Self {
        Self {
            children: chosen.children,
            lived_in_cells: chosen.lived_in_cells,
            reason: chosen.reason,
        }
    }
}

/// Sets `grid`'s resolution to the partnership's analysis resolution when the caller asked for
/// none (`asked` false), after the rest of the question has been checked, and says why.
pub(crate) async fn choose_resolution(
    grid: &mut GridQuestion,
    asked: bool,
    analyses: &Analyses,
    code: &atlas_domain::GssCode,
    scope: atlas_access::RecordScope,
) -> Result<Option<ChosenResolutionView>, ApiError> {
    if asked {
        return Ok(None);
    }
    let chosen = analyses.analysis_resolution(code, scope).await?;
    grid.resolution = chosen.resolution;
    Ok(Some(chosen.into()))
}

/// Where a hotspot analysis's child populations come from.
#[derive(Debug, Serialize, ToSchema)]
pub struct PopulationView {
    /// Small areas (LSOAs or output areas) whose reference point lies in the coverage.
    pub small_areas: usize,
    /// The latest year of their figures.
    pub year: i16,
    /// True when the figures are an approximation (each 2011 LSOA standing for the same
    /// number of children), not official estimates.
    pub approximate: bool,
    /// Where the figures come from.
    pub sources: Vec<String>,
    /// How the children are placed in cells: `postcodes` (the approximation's children in
    /// proportion to the postcode directory's postcodes in each cell),
    /// `small_areas_by_postcode` (each small area's children among the cells nearest its point,
    /// in proportion to their postcodes) or `small_areas_evenly`.
    pub placement: &'static str,
}

impl From<PopulationBasis> for PopulationView {
    fn from(basis: PopulationBasis) -> Self {
        Self {
            small_areas: basis.small_areas,
            year: basis.year,
            approximate: basis.approximate,
            sources: basis.sources,
            placement: basis.placement.as_str(),
        }
    }
}

impl HotspotSettingsView {
    /// The settings of an analysis of `grid` with `settings` as it was run, its child
    /// populations and `warning`.
    pub fn new(
        grid: &GridQuestion,
        settings: &HotspotSettings,
        population: Option<PopulationBasis>,
        warning: Option<String>,
    ) -> Self {
        Self {
            resolution: grid.resolution.get(),
            warning,
            k: settings.k,
            kernel: match settings.kernel {
                Kernel::Uniform => "uniform",
                Kernel::Triangular => "triangular",
                Kernel::Gaussian => "gaussian",
            },
            value: settings.measure.as_str(),
            permutations: settings.permutations,
            test: settings.test(),
            alpha: settings.alpha,
            seed: settings.seed(),
            adjust: settings.adjustment.as_str(),
            population: population.map(PopulationView::from),
            min_children_nearby: MIN_CHILDREN_NEARBY,
            resolution_chosen: None,
            filters: FilterView::from(&grid.filter),
        }
    }
}

/// A hotspot analysis.
#[derive(Debug, Serialize, ToSchema)]
pub struct HotspotsView {
    /// The partnership.
    pub partnership: String,
    /// The settings used.
    pub settings: HotspotSettingsView,
    /// Cells in the study area: the partnership's whole coverage at the resolution.
    pub study_area_cells: usize,
    /// True when no agency has contributed records for any day of the period: there is no
    /// analysis (no cells), because there are no data.
    pub no_data: bool,
    /// With `sensitivity=true`: whether the hot spots hold at the neighbouring resolutions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sensitivity: Option<SensitivityView>,
    /// The hot spot areas: contiguous cells hot at 95 % confidence or more, named from the
    /// nearest place, most children first.
    pub areas: Vec<HotspotAreaView>,
    /// The areas in one plain-English sentence, for the top of the map.
    pub summary: String,
    /// Where the place names come from (absent when no place is known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place_attribution: Option<String>,
    /// Every cell of the study area, sorted by cell (none when `no_data`).
    pub cells: Vec<HotspotCellView>,
}

/// A hot spot area: contiguous cells hot at 95 % confidence or more.
#[derive(Debug, Serialize, ToSchema)]
pub struct HotspotAreaView {
    /// Where it is, in words, from the nearest place of the partnership ("Burnley centre",
    /// "3 km south-west of Burnley").
    pub name: String,
    /// 99 when any of its cells is hot at 99 % confidence, else 95.
    pub confidence: u8,
    /// Its cells, sorted.
    pub cells: Vec<String>,
    /// Distinct children with a record in it (in the records the analysis used).
    pub children: u32,
    /// Records in it.
    pub records: u32,
    /// The mean of its cells' centres: `[latitude, longitude]`.
    pub centre: [f64; 2],
    /// Whether its children month by month rise or fall over the period.
    pub trend: AreaTrendView,
}

/// Whether a hot spot area's distinct children month by month rise or fall over the period
/// (Mann–Kendall at 95 % on whole months; docs/web.md, "The hotspot map").
#[derive(Debug, Serialize, ToSchema)]
pub struct AreaTrendView {
    /// `rising`, `falling`, `no clear trend`, or `too few months to tell` (fewer than six).
    pub direction: &'static str,
    /// The test's two-sided p-value (absent when too few months).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p: Option<f64>,
    /// The months of the period.
    pub months: usize,
}

impl From<&HotspotArea> for HotspotAreaView {
    fn from(area: &HotspotArea) -> Self {
        Self {
            name: area.name.clone(),
            confidence: area.confidence,
            cells: area.cells.iter().map(ToString::to_string).collect(),
            children: area.children.count,
            records: area.records.count,
            centre: [area.centre.0, area.centre.1],
            trend: AreaTrendView {
                direction: area.trend.direction,
                p: area.trend.p,
                months: area.trend.months,
            },
        }
    }
}

/// Whether a map's hot spots hold at the neighbouring resolutions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SensitivityView {
    /// True when every hot spot here is found at each neighbouring resolution and they find
    /// none elsewhere.
    pub stable: bool,
    /// The comparison in words, for the map.
    pub note: String,
    /// The resolution below and above, where stored.
    pub neighbours: Vec<NeighbourResolutionView>,
}

/// One neighbouring resolution's hot spots against this map's.
#[derive(Debug, Serialize, ToSchema)]
pub struct NeighbourResolutionView {
    /// The resolution.
    pub resolution: u8,
    /// Its hot cells.
    pub hot: usize,
    /// This map's hot cells that lie in (coarser) or hold (finer) a hot cell there.
    pub ours_found_there: usize,
    /// Its hot cells that lie in (finer) or hold (coarser) no hot cell of this map.
    pub theirs_elsewhere: usize,
}

impl From<Sensitivity> for SensitivityView {
    fn from(sensitivity: Sensitivity) -> Self {
        Self {
            stable: sensitivity.stable(),
            note: sensitivity.note(),
            neighbours: sensitivity
                .neighbours
                .into_iter()
                .map(|other| NeighbourResolutionView {
                    resolution: other.resolution.get(),
                    hot: other.hot,
                    ours_found_there: other.ours_found_there,
                    theirs_elsewhere: other.theirs_elsewhere,
                })
                .collect(),
        }
    }
}

/// Getis-Ord Gi* hotspots over the partnership's whole coverage at a resolution (zeros
/// included), with false-discovery control, for its own partnership analysts.
#[utoipa::path(
    tag = "analysis",
    security(("bearer" = [])),
    params(
        ("code" = String, Path, description = "GSS code", example = "E10000017"),
        GridQuery,
        HotspotSettingsQuery
    ),
    responses(
        (status = 200, body = HotspotsView),
        (status = 200, content_type = "application/geo+json", description = "A FeatureCollection of hexagons"),
        (status = 200, content_type = "text/csv", description = "hex_id,value,expected,z,p,p_randomisation,p_poisson,p_sim,significant,bin,too_few_children,wkt"),
        (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)
    )
)]
#[get("/api/v1/partnerships/{code}/hotspots")]
#[tracing::instrument(skip_all)]
pub async fn hotspots(
    authorized: Authorized<ReadAnalysis>,
    request: HttpRequest,
    analyses: web::Data<Analyses>,
) -> Result<HttpResponse, ApiError> {
    let mut params = Params::parse(&request)?;
    let grid = GridQuery::read(&mut params)?;
    let settings = HotspotSettingsQuery::read(&mut params)?;
    params.finish_documented(&[
        documented::<GridQuery>(),
        documented::<HotspotSettingsQuery>(),
    ])?;
    let asked = grid.resolution.is_some();
    let (mut grid, format) = grid.question(&request)?;
    let compare = settings.sensitivity.unwrap_or(false);
    let settings = settings.settings()?;
    // The whole question is checked before the resolution is chosen, which reads the records.
    settings.check()?;
    if compare {
        settings.check_sensitivity()?;
    }
    let chosen = choose_resolution(
        &mut grid,
        asked,
        &analyses,
        authorized.target(),
        authorized.record_scope(),
    )
    .await?;
    let question = HotspotQuestion {
        grid,
        scope: authorized.record_scope(),
        settings,
    };
    let code = authorized.target();
    let analysis = analyses.hotspots(code, &question).await?;
    let places = analyses.place_names(code).await?;
    let areas = analyses
        .hotspot_areas(code, &question, &analysis, &places)
        .await?;
    let summary = areas::summary(&areas);
    let areas: Vec<HotspotAreaView> = areas.iter().map(HotspotAreaView::from).collect();
    let sensitivity = if compare && !analysis.no_data {
        Some(
            analyses
                .sensitivity(code, &question, &analysis.cells)
                .await?
                .into(),
        )
    } else {
        None
    };
    authorized.used_records_of([code]);
    authorized.returned(analysis.cells.len());
    let mut settings = HotspotSettingsView::new(
        &question.grid,
        &analysis.settings,
        analysis.population,
        analysis.warning,
    );
    settings.resolution_chosen = chosen;
    let (study_area_cells, no_data) = (analysis.study_area_cells, analysis.no_data);
    answer(
        format,
        analysis
            .cells
            .into_iter()
            .map(|cell| HotspotCellView::new(cell, &places))
            .collect(),
        no_data,
        |cells| HotspotsView {
            partnership: code.to_string(),
            settings,
            study_area_cells,
            no_data,
            sensitivity,
            areas,
            summary,
            place_attribution: places.attribution().map(ToOwned::to_owned),
            cells,
        },
        &format!("hotspots-{code}-r{}.csv", question.grid.resolution.get()),
    )
}
