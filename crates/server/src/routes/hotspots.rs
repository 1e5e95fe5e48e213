//! A partnership's Getis-Ord Gi* hotspots, for its own analysts.

use actix_web::{HttpRequest, HttpResponse, get, web};
use atlas_analytics::gistar::Kernel;
use atlas_app::Analyses;
use atlas_app::analysis::{GridQuestion, HotspotCell, HotspotQuestion, HotspotSettings};
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
    pub cell: String,
    /// The value analysed (records or distinct children).
    pub value: u32,
    /// The Gi* z-score.
    pub z: f64,
    /// The two-sided p-value from the normal (as PySAL esda's `p_norm`), for reference: it
    /// finds false hotspots when counts are sparse.
    pub p: f64,
    /// The two-sided p-value of the cell's local sum under randomisation, exact or by
    /// saddle-point (docs/analytics.md, "Sparse counts").
    pub p_randomisation: f64,
    /// The permutation pseudo p-value, when permutations were asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_sim: Option<f64>,
    /// A discovery at the false-discovery rate `alpha` (Benjamini–Hochberg on
    /// `p_randomisation`, or on the two-sided permutation p-value `min(1, 2 p_sim)` when
    /// permutations were asked for).
    pub significant: bool,
    /// −3…+3: cold or hot spot at 99 / 95 / 90 % confidence after false-discovery control.
    pub bin: i8,
}

impl From<HotspotCell> for HotspotCellView {
    fn from(cell: HotspotCell) -> Self {
        Self {
            cell: cell.cell.to_string(),
            value: cell.value,
            z: cell.z,
            p: cell.p,
            p_randomisation: cell.p_randomisation,
            p_sim: cell.p_sim,
            significant: cell.significant,
            bin: cell.bin,
        }
    }
}

impl CellRow for HotspotCellView {
    const HEADER: &'static [&'static str] = &[
        "h3",
        "value",
        "z",
        "p",
        "p_randomisation",
        "p_sim",
        "significant",
        "bin",
    ];
    fn cell(&self) -> &str {
        &self.cell
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.cell.clone(),
            self.value.to_string(),
            self.z.to_string(),
            self.p.to_string(),
            self.p_randomisation.to_string(),
            self.p_sim.map(|p| p.to_string()).unwrap_or_default(),
            self.significant.to_string(),
            self.bin.to_string(),
        ]
    }
}

/// The settings a hotspot analysis used.
#[derive(Debug, Serialize, ToSchema)]
pub struct HotspotSettingsView {
    /// The H3 resolution of the cells.
    pub resolution: u8,
    /// Why no cell passed false-discovery control, when too few permutations are the reason.
    pub warning: Option<String>,
    /// The k-ring size.
    pub k: u32,
    /// `uniform`, `triangular` or `gaussian`.
    pub kernel: &'static str,
    /// `subjects` (distinct children) or `records`.
    pub value: &'static str,
    /// Conditional permutations (0: none).
    pub permutations: u32,
    /// `permutation` or `randomisation`: the test deciding significance.
    pub test: &'static str,
    /// The false-discovery rate.
    pub alpha: f64,
    /// The permutation test's seed, when permutations were asked for.
    pub seed: Option<u64>,
    /// The filters applied.
    pub filters: FilterView,
}

impl HotspotSettingsView {
    /// The settings of an analysis of `grid` with `settings`, and its `warning`.
    pub fn new(grid: &GridQuestion, settings: &HotspotSettings, warning: Option<String>) -> Self {
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
    /// Every cell of the study area, sorted by cell (none when `no_data`).
    pub cells: Vec<HotspotCellView>,
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
        (status = 200, content_type = "text/csv", description = "h3,value,z,p,p_randomisation,p_sim,significant,bin"),
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
    let (grid, format) = grid.question(&request)?;
    let settings = settings.settings()?;
    let question = HotspotQuestion {
        grid,
        scope: authorized.record_scope(),
        settings,
    };
    let code = authorized.target();
    let analysis = analyses.hotspots(code, &question).await?;
    authorized.used_records_of([code]);
    authorized.returned(analysis.cells.len());
    let settings = HotspotSettingsView::new(&question.grid, &question.settings, analysis.warning);
    let (study_area_cells, no_data) = (analysis.study_area_cells, analysis.no_data);
    answer(
        format,
        analysis
            .cells
            .into_iter()
            .map(HotspotCellView::from)
            .collect(),
        no_data,
        |cells| HotspotsView {
            partnership: code.to_string(),
            settings,
            study_area_cells,
            no_data,
            cells,
        },
        &format!("hotspots-{code}-r{}.csv", question.grid.resolution.get()),
    )
}
