//! A partnership's emerging hotspots, for its own analysts.

use actix_web::{HttpRequest, HttpResponse, get, web};
use atlas_analytics::emerging::{EmergingCell, Step};
use atlas_app::Analyses;
use chrono::NaiveDate;
use h3o::CellIndex;
use serde::Serialize;
use utoipa::ToSchema;

use crate::ApiError;
use crate::auth::Authorized;
use crate::guards::ReadAnalysis;
use crate::render::{CellRow, FilterView, answer};
use crate::routes::hotspots::{ChosenResolutionView, PopulationView, choose_resolution};
use crate::routes::params::{EmergingQuery, GridQuery, Params, documented};

/// One cell of an emerging hotspot analysis.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmergingCellView {
    /// The H3 cell, as its hexadecimal index.
    #[serde(serialize_with = "crate::render::hex")]
    #[schema(value_type = String)]
    pub cell: CellIndex,
    /// One of the 17 categories, such as `intensifying_hot_spot` or `no_pattern`.
    pub category: &'static str,
    /// Mann–Kendall z of the cell's series of space-time Gi* z-scores.
    pub trend_z: f64,
    /// Its two-sided p-value.
    pub trend_p: f64,
    /// Steps in which the cell was a significant hot spot.
    pub hot_steps: usize,
    /// Steps in which it was a significant cold spot.
    pub cold_steps: usize,
}

impl From<EmergingCell> for EmergingCellView {
    fn from(cell: EmergingCell) -> Self {
        Self {
            cell: cell.cell,
            category: cell.category.as_str(),
            trend_z: cell.trend_z,
            trend_p: cell.trend_p,
            hot_steps: cell.hot_steps,
            cold_steps: cell.cold_steps,
        }
    }
}

impl CellRow for EmergingCellView {
    const HEADER: &'static [&'static str] = &[
        "hex_id",
        "category",
        "trend_z",
        "trend_p",
        "hot_steps",
        "cold_steps",
    ];
    const VALUE: &'static str = "each cell's emerging hot spot category with its Mann-Kendall trend z and p, and how many steps it was a hot or cold spot";
    const METHOD: &'static str = "emerging hot spot analysis: Gi* in each time step over a space-time cube, the Mann-Kendall trend of each cell's z-scores (docs/statistics.md)";
    fn cell(&self) -> CellIndex {
        self.cell
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.cell.to_string(),
            self.category.to_owned(),
            self.trend_z.to_string(),
            self.trend_p.to_string(),
            self.hot_steps.to_string(),
            self.cold_steps.to_string(),
        ]
    }
}

/// A time step asked for but left out of an analysis.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeftOutStep {
    /// Its first day.
    pub start: NaiveDate,
    /// Why it was left out.
    pub reason: &'static str,
}

/// The settings an emerging hotspot analysis used.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmergingSettingsView {
    /// The H3 resolution of the cells.
    pub resolution: u8,
    /// `week`, `month` or `quarter`.
    pub step: &'static str,
    /// A step asked for that has not ended, and was left out.
    pub left_out: Option<LeftOutStep>,
    /// The k-ring size.
    pub k: u32,
    /// Earlier steps in each bin's neighbourhood.
    pub time_lag: usize,
    /// The time windows that do not overlap each cell's Mann–Kendall trend is tested over:
    /// one every `time_lag + 1` steps, so that no step counts in two (0 when there are no data).
    pub trend_windows: usize,
    /// `subjects` (distinct children) or `records`.
    pub value: &'static str,
    /// The false-discovery rate of the bins and the level of the trends.
    pub alpha: f64,
    /// What the counts were set against: `population` (each bin's count against the
    /// children living there, an exact Poisson test) or `none` (space-time Gi* on raw
    /// counts). Asked for `population` where no small-area populations are loaded, the analysis
    /// is on raw counts and `warning` says so.
    pub adjust: &'static str,
    /// Where the child populations come from, when `adjust` is `population`.
    pub population: Option<PopulationView>,
    /// Why the analysis is on raw counts when population adjustment was asked for.
    pub warning: Option<String>,
    /// Why this resolution, when it was chosen from the data (no `resolution` asked for).
    pub resolution_chosen: Option<ChosenResolutionView>,
    /// The filters applied.
    pub filters: FilterView,
}

/// An emerging hotspot analysis.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmergingView {
    /// The partnership.
    pub partnership: String,
    /// The settings used.
    pub settings: EmergingSettingsView,
    /// The first day of each time step: whole steps that have ended (a `from` or `to` inside a
    /// step takes in the whole step; a step not ended is left out, named in
    /// `settings.left_out`).
    pub steps: Vec<NaiveDate>,
    /// Cells in the study area: the partnership's whole coverage at the resolution.
    pub study_area_cells: usize,
    /// True when no agency has contributed records for any day of the period: there is no
    /// analysis (no steps, no cells), because there are no data.
    pub no_data: bool,
    /// Every cell of the study area, sorted by cell (none when `no_data`).
    pub cells: Vec<EmergingCellView>,
}

/// Emerging hotspots (space-time Gi*, Mann–Kendall trends and the 17 categories of ArcGIS's
/// Emerging Hot Spot Analysis) over the partnership's coverage, for its own partnership
/// analysts.
#[utoipa::path(
    tag = "analysis",
    security(("bearer" = [])),
    params(
        ("code" = String, Path, description = "GSS code", example = "E10000017"),
        GridQuery,
        EmergingQuery
    ),
    responses(
        (status = 200, body = EmergingView),
        (status = 200, content_type = "application/geo+json", description = "A FeatureCollection of hexagons"),
        (status = 200, content_type = "text/csv", description = "hex_id,category,trend_z,trend_p,hot_steps,cold_steps,wkt"),
        (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)
    )
)]
#[get("/api/v1/partnerships/{code}/emerging")]
#[tracing::instrument(skip_all)]
pub async fn emerging(
    authorized: Authorized<ReadAnalysis>,
    request: HttpRequest,
    analyses: web::Data<Analyses>,
) -> Result<HttpResponse, ApiError> {
    let mut params = Params::parse(&request)?;
    let grid = GridQuery::read(&mut params)?;
    let emerging = EmergingQuery::read(&mut params)?;
    params.finish_documented(&[documented::<GridQuery>(), documented::<EmergingQuery>()])?;
    let asked = grid.resolution.is_some();
    let (grid, format) = grid.question(&request)?;
    let mut question = emerging.question(grid, authorized.record_scope())?;
    // The whole question is checked before the resolution is chosen, which reads the records.
    question.check()?;
    let mut resolution_chosen = choose_resolution(
        &mut question.grid,
        asked,
        &analyses,
        authorized.target(),
        authorized.record_scope(),
    )
    .await?;
    let step = question.step;
    let code = authorized.target();
    let today = chrono::Utc::now().date_naive();
    let analysis = match resolution_chosen.as_mut() {
        None => analyses.emerging(code, &question, today).await?,
        Some(chosen) => {
            // A resolution the caller did not choose is coarsened rather than refused when the
            // cube is more work than one request may ask for.
            let finest = question.grid.resolution;
            let analysis = analyses
                .emerging_within_budget(code, &mut question, today)
                .await?;
            if question.grid.resolution != finest {
                chosen.reason = format!(
                    "{}; coarsened to resolution {} because the space-time cube at {finest} is \
                     more work than one request may ask for",
                    chosen.reason, question.grid.resolution
                );
            }
            analysis
        }
    };
    authorized.used_records_of([code]);
    authorized.returned(analysis.cells.len());
    let settings = EmergingSettingsView {
        resolution: question.grid.resolution.get(),
        step: match step {
            Step::Week => "week",
            Step::Month => "month",
            Step::Quarter => "quarter",
        },
        left_out: analysis.left_out.map(|start| LeftOutStep {
            start,
            reason: "this step has not ended: an analysis counts whole steps that have ended, since a part-counted step would look like a fall",
        }),
        k: question.k,
        time_lag: question.time_lag,
        trend_windows: analysis.trend_windows,
        value: question.measure.as_str(),
        alpha: question.alpha,
        adjust: analysis.adjustment.as_str(),
        warning: analysis.warning,
        population: analysis.population.map(PopulationView::from),
        resolution_chosen,
        filters: FilterView::from(&question.grid.filter),
    };
    let (steps, study_area_cells, no_data) =
        (analysis.steps, analysis.study_area_cells, analysis.no_data);
    answer(
        format,
        analysis
            .cells
            .into_iter()
            .map(EmergingCellView::from)
            .collect(),
        no_data,
        |cells| EmergingView {
            partnership: code.to_string(),
            settings,
            steps,
            study_area_cells,
            no_data,
            cells,
        },
        &format!("emerging-{code}-r{}.csv", question.grid.resolution.get()),
    )
}
