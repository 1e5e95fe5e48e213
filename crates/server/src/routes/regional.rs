//! A partnership's hotspots merged with its neighbours', seen through the publication gate.

use actix_web::{HttpRequest, HttpResponse, get, web};
use atlas_analytics::emerging::Step;
use atlas_analytics::gate;
use atlas_analytics::grid::Filter;
use atlas_app::Analyses;
use atlas_app::analysis::{GridQuestion, NeighbourSummary, RegionalCell};
use atlas_store::Database;
use chrono::NaiveDate;
use h3o::CellIndex;
use serde::Serialize;
use utoipa::ToSchema;

use crate::ApiError;
use crate::auth::Authorized;
use crate::guards::ReadAnalysis;
use crate::query_audit::QueryAudit;
use crate::render::{CellRow, answer};
use crate::routes::hotspots::HotspotSettingsView;
use crate::routes::params::{Params, RegionalQuery, documented};

/// What a partnership sees of a neighbour's part of a regional analysis: how many of its cells
/// are hot or cold spots, no cell-level figures.
#[derive(Debug, Serialize, ToSchema)]
pub struct NeighbourSummaryView {
    /// The neighbour's GSS code.
    pub code: String,
    /// Cells of its coverage in the merged study area (not the partnership's own).
    pub cells: usize,
    /// Of those, hot spots at 95 % or 99 % confidence after false-discovery control.
    pub hot_cells: usize,
    /// Of those, cold spots at 95 % or 99 %.
    pub cold_cells: usize,
}

impl From<NeighbourSummary> for NeighbourSummaryView {
    fn from(summary: NeighbourSummary) -> Self {
        Self {
            code: summary.code.to_string(),
            cells: summary.cells,
            hot_cells: summary.hot_cells,
            cold_cells: summary.cold_cells,
        }
    }
}

/// One of the partnership's own cells in a regional analysis: its own count and the bin. No
/// z-score or p-value: they mix the neighbours' counts in at full precision and could be
/// inverted to them.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegionalCellView {
    /// The H3 cell, as its hexadecimal index.
    #[serde(serialize_with = "crate::render::hex")]
    #[schema(value_type = String)]
    pub cell: CellIndex,
    /// The partnership's own value in the cell (records or distinct children).
    pub value: u32,
    /// −3…+3: cold or hot spot at 99 / 95 / 90 % confidence after false-discovery control.
    pub bin: i8,
}

impl From<RegionalCell> for RegionalCellView {
    fn from(cell: RegionalCell) -> Self {
        Self {
            cell: cell.cell,
            value: cell.value,
            bin: cell.bin,
        }
    }
}

impl CellRow for RegionalCellView {
    const HEADER: &'static [&'static str] = &["hex_id", "value", "bin"];
    const VALUE: &'static str = "each own cell's value and its bin (-3 to 3: cold to hot spot) from a Gi* run over the partnership and the neighbours that share regional hotspots with it";
    const METHOD: &'static str = "Getis-Ord Gi* over the merged coverage of the partnership and its neighbours, their counts entering perturbed through the publication gate, over closed quarters (docs/privacy.md, \"Cross-border hotspots\")";
    fn cell(&self) -> CellIndex {
        self.cell
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.cell.to_string(),
            self.value.to_string(),
            self.bin.to_string(),
        ]
    }
}

/// The settings a regional analysis used: the hotspot settings, the closed quarters and who
/// was merged.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegionalSettingsView {
    /// The statistic's settings.
    #[serde(flatten)]
    pub hotspots: HotspotSettingsView,
    /// The first day of the first quarter.
    pub from: NaiveDate,
    /// The last day of the last quarter.
    pub to: NaiveDate,
    /// The quarters covered, such as `2026-Q1`.
    pub quarters: Vec<String>,
    /// A quarter asked for that has not closed, and was left out.
    pub left_out: Option<String>,
    /// The partnerships whose records were included, this one first.
    pub merged: Vec<String>,
    /// Neighbours that do not share `regional_hotspots` with this partnership.
    pub not_merged: Vec<String>,
    /// How the neighbours' records are protected.
    pub disclosure: &'static str,
}

/// A regional hotspot analysis, as one partnership sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegionalHotspotsView {
    /// The partnership.
    pub partnership: String,
    /// The settings used, with the closed quarters (`from`, `to`, `left_out`), `merged`
    /// (partnerships whose records were included) and `not_merged` (neighbours that do not
    /// share `regional_hotspots` with this partnership).
    pub settings: RegionalSettingsView,
    /// Cells in the merged study area.
    pub study_area_cells: usize,
    /// True when no agency has contributed records to the partnership in the window: its own
    /// cells are left out, because it has no data.
    pub no_data: bool,
    /// The partnership's own cells: its own value and the bin (none when `no_data`).
    pub cells: Vec<RegionalCellView>,
    /// The merged neighbours' parts, as summaries.
    pub neighbours: Vec<NeighbourSummaryView>,
}

/// The grid filters a regional analysis refuses: a finer question about a neighbour's records
/// than whole quarters of all records.
const FINE_FILTERS: [&str; 7] = [
    "agency_kinds",
    "record_kinds",
    "indicators",
    "indicator_match",
    "age_bands",
    "sexes",
    "location_roles",
];

/// Gi* over the partnership's coverage merged with its neighbours' that share
/// `regional_hotspots` with it, so that a hotspot straddling a boundary is found whole. It
/// covers whole closed quarters only and takes no filters; the neighbours' counts enter through
/// the publication gate (perturbed by their records' keys), and the partnership sees, of its
/// own cells, only its own value and the bin, and of its neighbours' only counts of hot and
/// cold cells (docs/privacy.md, "Cross-border hotspots").
#[utoipa::path(
    tag = "analysis",
    security(("bearer" = [])),
    params(
        ("code" = String, Path, description = "GSS code", example = "E06000009"),
        RegionalQuery
    ),
    responses(
        (status = 200, body = RegionalHotspotsView),
        (status = 200, content_type = "application/geo+json", description = "A FeatureCollection of the partnership's own hexagons"),
        (status = 200, content_type = "text/csv", description = "hex_id,value,bin,wkt (own cells)"),
        (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)
    )
)]
#[get("/api/v1/partnerships/{code}/regional-hotspots")]
#[tracing::instrument(skip_all)]
pub async fn regional_hotspots(
    authorized: Authorized<ReadAnalysis>,
    request: HttpRequest,
    analyses: web::Data<Analyses>,
    database: web::Data<Database>,
    query_audit: web::Data<QueryAudit>,
) -> Result<HttpResponse, ApiError> {
    let mut params = Params::parse(&request)?;
    if let Some(filter) = params.first_of(&FINE_FILTERS) {
        return Err(ApiError::BadRequest(format!(
            "`{filter}`: regional hotspots take no filters, since they are built on other \
             partnerships' records; use the partnership's own hotspots for filtered questions"
        )));
    }
    let query = RegionalQuery::read(&mut params)?;
    params.finish_documented(&[documented::<RegionalQuery>()])?;
    let (question, format) = query.question(&request, authorized.record_scope())?;
    let today = chrono::Utc::now().date_naive();
    let window = question.window(today)?;
    let code = authorized.target();
    let partners = analyses.regional_partners(code, today).await?;
    if !partners.merged.is_empty() {
        query_audit
            .check(&database, &authorized, "regional_hotspots")
            .await?;
    }
    let analysis = analyses
        .regional(code, &question, &window, &partners)
        .await?;
    authorized.used_records_of(std::iter::once(code).chain(&partners.merged));
    authorized.returned(analysis.cells.len());
    let echoed = GridQuestion {
        resolution: question.resolution,
        filter: Filter {
            from: Some(window.first()),
            to: Some(window.last),
            ..Filter::default()
        },
    };
    let hotspots = HotspotSettingsView::new(
        &echoed,
        &analysis.settings,
        analysis.population,
        analysis.warning,
    );
    let settings = RegionalSettingsView {
        hotspots,
        from: window.first(),
        to: window.last,
        quarters: window
            .starts
            .iter()
            .map(|start| gate::label(Step::Quarter, *start))
            .collect(),
        left_out: window
            .left_out
            .map(|start| gate::label(Step::Quarter, start)),
        merged: std::iter::once(code)
            .chain(&partners.merged)
            .map(ToString::to_string)
            .collect(),
        not_merged: partners
            .not_merged
            .iter()
            .map(ToString::to_string)
            .collect(),
        disclosure: "the neighbours' counts enter perturbed by their records' keys (the publication gate); only bins are shown, over closed quarters, without filters",
    };
    let (study_area_cells, no_data) = (analysis.study_area_cells, analysis.no_data);
    let neighbours = analysis
        .neighbours
        .into_iter()
        .map(NeighbourSummaryView::from)
        .collect();
    answer(
        format,
        analysis
            .cells
            .into_iter()
            .map(RegionalCellView::from)
            .collect(),
        no_data,
        |cells| RegionalHotspotsView {
            partnership: code.to_string(),
            settings,
            study_area_cells,
            no_data,
            cells,
            neighbours,
        },
        &format!(
            "regional-hotspots-{code}-r{}.csv",
            question.resolution.get()
        ),
    )
}
