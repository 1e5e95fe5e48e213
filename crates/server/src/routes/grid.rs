//! A partnership's grid: exact counts per H3 cell for its own analysts.

use actix_web::{HttpRequest, HttpResponse, get, web};
use atlas_analytics::grid::GridCell;
use atlas_app::Analyses;
use chrono::NaiveDate;
use h3o::CellIndex;
use serde::Serialize;
use utoipa::ToSchema;

use crate::ApiError;
use crate::auth::Authorized;
use crate::guards::ReadGrid;
use crate::render::{CellRow, FilterView, answer};
use crate::routes::params::{GridQuery, Params, documented};

/// One cell of a grid.
#[derive(Debug, Serialize, ToSchema)]
pub struct GridCellView {
    /// The H3 cell, as its 15-character hexadecimal index.
    #[serde(serialize_with = "crate::render::hex")]
    #[schema(value_type = String, example = "88195d2b1dfffff")]
    pub cell: CellIndex,
    /// Records.
    pub records: u32,
    /// Distinct children (by pseudonym, across agencies).
    pub subjects: u32,
    /// Distinct contributing agencies.
    pub agencies: u32,
    /// Their kinds.
    pub agency_kinds: Vec<&'static str>,
    /// Children known there to two or more agency kinds.
    pub multi_agency_subjects: u32,
    /// The earliest date.
    #[serde(serialize_with = "crate::render::day")]
    #[schema(value_type = String, format = Date)]
    pub first: NaiveDate,
    /// The latest date.
    #[serde(serialize_with = "crate::render::day")]
    #[schema(value_type = String, format = Date)]
    pub last: NaiveDate,
}

impl From<&GridCell> for GridCellView {
    fn from(cell: &GridCell) -> Self {
        Self {
            cell: cell.cell,
            records: cell.records,
            subjects: cell.subjects,
            agencies: cell.agencies,
            agency_kinds: cell.agency_kinds.iter().map(|kind| kind.as_str()).collect(),
            multi_agency_subjects: cell.multi_agency_subjects,
            first: cell.first,
            last: cell.last,
        }
    }
}

impl CellRow for GridCellView {
    const HEADER: &'static [&'static str] = &[
        "hex_id",
        "records",
        "subjects",
        "agencies",
        "agency_kinds",
        "multi_agency_subjects",
        "first",
        "last",
    ];
    const VALUE: &'static str = "records, distinct children (subjects), agencies, agency kinds and children known to several agency kinds per cell, exact, with the first and last date of its records";
    const METHOD: &'static str = "exact counts of the partnership's pseudonymised case records in each H3 cell, after the filters";
    fn cell(&self) -> CellIndex {
        self.cell
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.cell.to_string(),
            self.records.to_string(),
            self.subjects.to_string(),
            self.agencies.to_string(),
            self.agency_kinds.join(";"),
            self.multi_agency_subjects.to_string(),
            self.first.to_string(),
            self.last.to_string(),
        ]
    }
}

/// A grid.
#[derive(Debug, Serialize, ToSchema)]
pub struct GridView {
    /// The partnership.
    pub partnership: String,
    /// The H3 resolution of the cells.
    pub resolution: u8,
    /// The filters applied.
    pub filters: FilterView,
    /// True when no agency (the caller's own, for agency staff) has contributed records for
    /// any day of the period: there are no cells because there are no data, not because
    /// nothing happened.
    pub no_data: bool,
    /// Cells with at least one record, sorted by cell.
    pub cells: Vec<GridCellView>,
}

/// The partnership's grid: records, distinct children, agencies and multi-agency overlap per
/// H3 cell, for its own partnership analysts, and for its agency analysts over their own
/// agency's records only.
#[utoipa::path(
    tag = "analysis",
    security(("bearer" = [])),
    params(
        ("code" = String, Path, description = "GSS code", example = "E10000017"),
        GridQuery
    ),
    responses(
        (status = 200, body = GridView),
        (status = 200, content_type = "application/geo+json", description = "A FeatureCollection of hexagons"),
        (status = 200, content_type = "text/csv", description = "hex_id,records,subjects,agencies,agency_kinds,multi_agency_subjects,first,last,wkt"),
        (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)
    )
)]
#[get("/api/v1/partnerships/{code}/grid")]
#[tracing::instrument(skip_all)]
pub async fn grid(
    authorized: Authorized<ReadGrid>,
    request: HttpRequest,
    analyses: web::Data<Analyses>,
) -> Result<HttpResponse, ApiError> {
    let mut params = Params::parse(&request)?;
    let query = GridQuery::read(&mut params)?;
    params.finish_documented(&[documented::<GridQuery>()])?;
    let (question, format) = query.question(&request)?;
    let code = authorized.target();
    let grid = analyses
        .grid(code, authorized.record_scope(), &question)
        .await?;
    authorized.used_records_of([code]);
    authorized.returned(grid.cells.len());
    let views: Vec<GridCellView> = grid.cells.iter().map(GridCellView::from).collect();
    answer(
        format,
        views,
        grid.no_data,
        |cells| GridView {
            partnership: code.to_string(),
            resolution: question.resolution.get(),
            filters: FilterView::from(&question.filter),
            no_data: grid.no_data,
            cells,
        },
        &format!("grid-{code}-r{}.csv", question.resolution.get()),
    )
}
