//! A partnership's grid and hotspots: exact counts for its own analysts, in JSON, GeoJSON
//! (`Accept: application/geo+json` or `format=geojson`) or CSV with an `h3` column
//! (`format=csv`, for kepler.gl and QGIS).

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::http::header::ACCEPT;
use actix_web::{HttpRequest, HttpResponse, get, web};
use atlas_access::{RecordScope, Scope};
use atlas_analytics::emerging::{MIN_STEPS, Step, check_budget, cube, emerging_hot_spots};
use atlas_analytics::gate::{self, closed_window};
use atlas_analytics::gistar::{
    GiStarError, Kernel, StudyArea, benjamini_hochberg, confidence_bins, gi_star, permutation_p,
    randomisation_p,
};
use atlas_analytics::grid::{Filter, GridCell, IndicatorMatch, grid as count_cells};
use atlas_domain::{GssCode, StoredResolution};
use atlas_store::{Database, agreements, batches, partnerships};
use chrono::NaiveDate;
use h3o::{CellIndex, Resolution};
use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::ApiError;
use crate::auth::Authorized;
use crate::dates;
use crate::guards::{ReadAnalysis, ReadGrid};
use crate::query_audit::QueryAudit;
use atlas_app::RecordCache;

/// The media type of GeoJSON (RFC 7946).
const GEO_JSON: &str = "application/geo+json";
/// The most permutations one request may ask for.
const MAX_PERMUTATIONS: u32 = 9_999;
/// The most cells × permutations one request may ask for (a few seconds of work).
const MAX_PERMUTATION_WORK: usize = 50_000_000;
/// The false-discovery rates a regional analysis offers.
const REGIONAL_ALPHAS: [f64; 3] = [0.01, 0.05, 0.1];
/// The permutation counts a regional analysis offers.
const REGIONAL_PERMUTATIONS: [u32; 2] = [0, 999];
/// The most quarters one regional analysis may cover.
const MAX_REGIONAL_QUARTERS: usize = 40;
/// The seed of permutation tests: the same question always gets the same answer.
const PERMUTATION_SEED: u64 = 20_261_128;

/// Sets its flag when dropped: when the handler's future is dropped because the client has
/// gone (or the handler is done), the computation watching the flag stops.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Long analyses on `/metrics`, labelled by analysis (`emerging`, `hotspots`):
/// `atlas_analyses_running`, those computing now, and `atlas_analyses_abandoned_total`, those
/// stopped part-way because their client disconnected.
#[derive(Clone)]
pub struct AnalysisMetrics {
    running: IntGaugeVec,
    abandoned: IntCounterVec,
}

impl AnalysisMetrics {
    /// The analyses counted, each with its samples from the start (zero until one runs).
    const ANALYSES: [&'static str; 2] = ["emerging", "hotspots"];

    /// Registers the gauge and the counter with `registry`.
    ///
    /// # Errors
    /// When the registry refuses them (a second registration).
    pub fn register(registry: &prometheus::Registry) -> Result<Self, prometheus::Error> {
        let running = IntGaugeVec::new(
            Opts::new("atlas_analyses_running", "Long analyses computing now"),
            &["analysis"],
        )?;
        let abandoned = IntCounterVec::new(
            Opts::new(
                "atlas_analyses_abandoned_total",
                "Long analyses stopped part-way because their client disconnected",
            ),
            &["analysis"],
        )?;
        for analysis in Self::ANALYSES {
            running.with_label_values(&[analysis]);
            abandoned.with_label_values(&[analysis]);
        }
        registry.register(Box::new(running.clone()))?;
        registry.register(Box::new(abandoned.clone()))?;
        Ok(Self { running, abandoned })
    }

    /// Counts one `analysis` in `atlas_analyses_running` until the guard is dropped.
    fn start(&self, analysis: &'static str) -> Running {
        let gauge = self.running.with_label_values(&[analysis]);
        gauge.inc();
        Running(gauge)
    }

    /// Counts and logs one `analysis` stopped because its client has gone, when `err` says so.
    fn note_stopped(&self, analysis: &'static str, err: &GiStarError) {
        if *err == GiStarError::Stopped {
            self.abandoned.with_label_values(&[analysis]).inc();
            tracing::info!(analysis, "an analysis stopped: its client has gone");
        }
    }
}

/// Counts an analysis in `atlas_analyses_running` until dropped, however it ends.
struct Running(IntGauge);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The query string, read key by key so that an unknown or repeated key is an error that names
/// it (a misspelt filter must not silently widen the answer).
pub(crate) struct Params(BTreeMap<String, String>);

impl Params {
    pub(crate) fn parse(request: &HttpRequest) -> Result<Self, ApiError> {
        let pairs = web::Query::<Vec<(String, String)>>::from_query(request.query_string())
            .map_err(|err| ApiError::BadRequest(format!("the query string is malformed: {err}")))?
            .into_inner();
        let mut params = BTreeMap::new();
        for (key, value) in pairs {
            if params.insert(key.clone(), value).is_some() {
                return Err(ApiError::BadRequest(format!(
                    "`{key}` is given twice; separate several values with commas"
                )));
            }
        }
        Ok(Self(params))
    }

    /// The first of `keys` the query string holds.
    pub(crate) fn first_of<'a>(&self, keys: &[&'a str]) -> Option<&'a str> {
        keys.iter().copied().find(|key| self.0.contains_key(*key))
    }

    /// Takes `key` parsed as a `T`, or 400 naming it. A date ([`NaiveDate`]), whichever
    /// handler reads it, must also lie in the domain of [`crate::dates`].
    pub(crate) fn take<T: FromStr + 'static>(&mut self, key: &str) -> Result<Option<T>, ApiError>
    where
        T::Err: Display,
    {
        let is_date = TypeId::of::<T>() == TypeId::of::<NaiveDate>();
        self.0
            .remove(key)
            .map(|value| {
                let parsed: T = value.trim().parse().map_err(|err| {
                    if is_date {
                        dates::out_of_domain(key, &value)
                    } else {
                        ApiError::BadRequest(format!("`{key}`: {err}"))
                    }
                })?;
                if let Some(day) = (&parsed as &dyn Any).downcast_ref::<NaiveDate>() {
                    dates::check(key, *day)?;
                }
                Ok(parsed)
            })
            .transpose()
    }

    pub(crate) fn take_set<T: FromStr + Ord>(&mut self, key: &str) -> Result<BTreeSet<T>, ApiError>
    where
        T::Err: Display,
    {
        self.0.remove(key).map_or_else(
            || Ok(BTreeSet::new()),
            |value| {
                value
                    .split(',')
                    .filter(|part| !part.trim().is_empty())
                    .map(|part| {
                        part.trim()
                            .parse()
                            .map_err(|err| ApiError::BadRequest(format!("`{key}`: {err}")))
                    })
                    .collect()
            },
        )
    }

    /// Takes `format`: `json` (the default) or `csv`; true for CSV.
    pub(crate) fn csv_wanted(&mut self) -> Result<bool, ApiError> {
        match self.take::<String>("format")?.as_deref() {
            None | Some("json") => Ok(false),
            Some("csv") => Ok(true),
            Some(other) => Err(ApiError::BadRequest(format!(
                "`format`: `{other}` is not json or csv"
            ))),
        }
    }

    pub(crate) fn finish(self, known: &[&str]) -> Result<(), ApiError> {
        match self.0.keys().next() {
            None => Ok(()),
            Some(key) => Err(ApiError::BadRequest(format!(
                "unknown parameter `{key}`; this endpoint takes {}",
                known.join(", ")
            ))),
        }
    }
}

/// The filter and grid parameters shared by the grid and hotspot endpoints.
const GRID_PARAMETERS: [&str; 11] = [
    "resolution",
    "from",
    "to",
    "agency_kinds",
    "record_kinds",
    "indicators",
    "indicator_match",
    "age_bands",
    "sexes",
    "location_roles",
    "format",
];

/// How the answer is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    GeoJson,
    Csv,
}

struct GridQuestion {
    resolution: StoredResolution,
    filter: Filter,
    format: Format,
}

fn grid_question(request: &HttpRequest, params: &mut Params) -> Result<GridQuestion, ApiError> {
    let resolution = StoredResolution::try_from(params.take::<u8>("resolution")?.unwrap_or(8))
        .map_err(|err| ApiError::BadRequest(format!("`resolution`: {err}")))?;
    let from: Option<NaiveDate> = params.take("from")?;
    let to: Option<NaiveDate> = params.take("to")?;
    if let (Some(from), Some(to)) = (from, to)
        && to < from
    {
        return Err(ApiError::BadRequest("`to` is before `from`".to_owned()));
    }
    let indicator_match = match params.take::<String>("indicator_match")?.as_deref() {
        None | Some("any") => IndicatorMatch::Any,
        Some("all") => IndicatorMatch::All,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "`indicator_match`: `{other}` is not `any` or `all`"
            )));
        }
    };
    let filter = Filter {
        from,
        to,
        agency_kinds: params.take_set("agency_kinds")?,
        record_kinds: params.take_set("record_kinds")?,
        indicators: params
            .take_set::<atlas_domain::Indicator>("indicators")?
            .into_iter()
            .collect(),
        indicator_match,
        age_bands: params.take_set("age_bands")?,
        sexes: params.take_set("sexes")?,
        location_roles: params.take_set("location_roles")?,
    };
    let wants_geojson = request
        .headers()
        .get(ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains(GEO_JSON));
    let format = match params.take::<String>("format")?.as_deref() {
        None if wants_geojson => Format::GeoJson,
        None | Some("json") => Format::Json,
        Some("geojson") => Format::GeoJson,
        Some("csv") => Format::Csv,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "`format`: `{other}` is not json, geojson or csv"
            )));
        }
    };
    Ok(GridQuestion {
        resolution,
        filter,
        format,
    })
}

/// `k`: the k-ring size, 1 to 3 (default 1).
fn ring_size(params: &mut Params) -> Result<u32, ApiError> {
    let k = params.take::<u32>("k")?.unwrap_or(1);
    if (1..=3).contains(&k) {
        Ok(k)
    } else {
        Err(ApiError::BadRequest("`k` must be 1, 2 or 3".to_owned()))
    }
}

/// `value`: whether distinct subjects (children: the default) or records are analysed.
fn counts_subjects(params: &mut Params) -> Result<bool, ApiError> {
    match params.take::<String>("value")?.as_deref() {
        Some("records") => Ok(false),
        None | Some("subjects") => Ok(true),
        Some(other) => Err(ApiError::BadRequest(format!(
            "`value`: `{other}` is not records or subjects"
        ))),
    }
}

/// `alpha`: the false-discovery rate, strictly between 0 and 1 (default 0.05).
fn level(params: &mut Params) -> Result<f64, ApiError> {
    let alpha = params.take::<f64>("alpha")?.unwrap_or(0.05);
    if alpha > 0.0 && alpha < 1.0 {
        Ok(alpha)
    } else {
        Err(ApiError::BadRequest(
            "`alpha` must be between 0 and 1".to_owned(),
        ))
    }
}

/// Whether no agency within `scope` has contributed records to `code` for any day from `from`
/// to `to` (open ends: all time): the answer then has no data, which is not a grid of zeros. A
/// filter that matches nothing among contributed records is a true zero.
async fn has_no_data(
    database: &Database,
    code: &GssCode,
    scope: RecordScope,
    (from, to): (Option<NaiveDate>, Option<NaiveDate>),
) -> Result<bool, ApiError> {
    let from = from.unwrap_or(crate::dates::FIRST_DAY);
    let to = to.unwrap_or(crate::dates::LAST_DAY);
    let agency = match scope {
        RecordScope::Partnership => None,
        RecordScope::Agency(agency) => Some(agency),
    };
    let mut conn = database.connection().await?;
    let contributed =
        batches::contributed_periods(&mut conn, &[code.to_string()], &[from], to, agency).await?;
    Ok(!contributed
        .get(code.as_str())
        .is_some_and(|periods| periods.iter().any(|contributed| *contributed)))
}

/// The partnership's coverage at `resolution`: the study area of its analyses.
pub(crate) async fn study_area(
    database: &Database,
    code: &GssCode,
    resolution: StoredResolution,
) -> Result<Vec<CellIndex>, ApiError> {
    let mut conn = database.connection().await?;
    let coverage = partnerships::coverage(&mut conn, code, i16::from(resolution.get())).await?;
    Ok(coverage
        .into_iter()
        .filter_map(|cell| u64::try_from(cell).ok())
        .filter_map(|cell| CellIndex::try_from(cell).ok())
        .collect())
}

fn h3_resolution(resolution: StoredResolution) -> Result<Resolution, ApiError> {
    Resolution::try_from(resolution.get())
        .map_err(|err| ApiError::Internal(format!("resolution: {err}")))
}

/// The filter as the answer echoes it.
fn describe_filter(filter: &Filter) -> Value {
    let names = |values: Vec<String>| (!values.is_empty()).then_some(values);
    json!({
        "from": filter.from,
        "to": filter.to,
        "agency_kinds": names(filter.agency_kinds.iter().map(ToString::to_string).collect()),
        "record_kinds": names(filter.record_kinds.iter().map(ToString::to_string).collect()),
        "indicators": names(filter.indicators.iter().map(|indicator| indicator.to_string()).collect()),
        "indicator_match": match filter.indicator_match { IndicatorMatch::Any => "any", IndicatorMatch::All => "all" },
        "age_bands": names(filter.age_bands.iter().map(ToString::to_string).collect()),
        "sexes": names(filter.sexes.iter().map(ToString::to_string).collect()),
        "location_roles": names(filter.location_roles.iter().map(ToString::to_string).collect()),
    })
}

/// One cell of a grid.
#[derive(Debug, Serialize, ToSchema)]
pub struct GridCellView {
    /// The H3 cell, as its 15-character hexadecimal index.
    #[schema(example = "88195d2b1dfffff")]
    pub cell: String,
    /// Records.
    pub records: u32,
    /// Distinct children (by pseudonym, across agencies).
    pub subjects: u32,
    /// Distinct contributing agencies.
    pub agencies: u32,
    /// Their kinds.
    pub agency_kinds: Vec<String>,
    /// Children known there to two or more agency kinds.
    pub multi_agency_subjects: u32,
    /// The earliest date.
    pub first: NaiveDate,
    /// The latest date.
    pub last: NaiveDate,
}

impl From<&GridCell> for GridCellView {
    fn from(cell: &GridCell) -> Self {
        Self {
            cell: cell.cell.to_string(),
            records: cell.records,
            subjects: cell.subjects,
            agencies: cell.agencies,
            agency_kinds: cell.agency_kinds.iter().map(ToString::to_string).collect(),
            multi_agency_subjects: cell.multi_agency_subjects,
            first: cell.first,
            last: cell.last,
        }
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
    #[schema(value_type = Object)]
    pub filters: Value,
    /// True when no agency (the caller's own, for agency staff) has contributed records for
    /// any day of the period: there are no cells because there are no data, not because
    /// nothing happened.
    pub no_data: bool,
    /// Cells with at least one record, sorted by cell.
    pub cells: Vec<GridCellView>,
}

/// The grid of the records of `code` within `scope` (the caller's [`Authorized::record_scope`]).
async fn cells_of(
    cache: &RecordCache,
    database: &Database,
    code: &GssCode,
    scope: RecordScope,
    question: &GridQuestion,
) -> Result<Vec<GridCell>, ApiError> {
    let records = cache
        .records(database, code, scope)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no partnership has the code {code}")))?;
    let resolution = h3_resolution(question.resolution)?;
    let filter = question.filter.clone();
    web::block(move || count_cells(&records.records, resolution, &filter))
        .await
        .map_err(|err| ApiError::Internal(format!("grid: {err}")))
}

/// The partnership's grid: records, distinct children, agencies and multi-agency overlap per
/// H3 cell, for its own partnership analysts, and for its agency analysts over their own
/// agency's records only.
#[utoipa::path(
    tag = "analysis",
    security(("bearer" = [])),
    params(
        ("code" = String, Path, description = "GSS code", example = "E10000017"),
        ("resolution" = Option<u8>, Query, description = "H3 resolution 5 to 9 (default 8)"),
        ("from" = Option<NaiveDate>, Query, description = "First day included"),
        ("to" = Option<NaiveDate>, Query, description = "Last day included"),
        ("agency_kinds" = Option<String>, Query, description = "Comma-separated agency kinds"),
        ("record_kinds" = Option<String>, Query, description = "Comma-separated record kinds"),
        ("indicators" = Option<String>, Query, description = "Comma-separated indicators"),
        ("indicator_match" = Option<String>, Query, description = "`any` (default) or `all`"),
        ("age_bands" = Option<String>, Query, description = "Comma-separated age bands"),
        ("sexes" = Option<String>, Query, description = "Comma-separated sexes (F, M, X, U)"),
        ("location_roles" = Option<String>, Query, description = "Comma-separated location roles"),
        ("format" = Option<String>, Query, description = "json (default), geojson or csv")
    ),
    responses(
        (status = 200, body = GridView),
        (status = 200, content_type = "application/geo+json", description = "A FeatureCollection of hexagons"),
        (status = 200, content_type = "text/csv", description = "h3,records,subjects,agencies,agency_kinds,multi_agency_subjects,first,last"),
        (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)
    )
)]
#[get("/api/v1/partnerships/{code}/grid")]
pub async fn grid(
    authorized: Authorized<ReadGrid>,
    request: HttpRequest,
    database: web::Data<Database>,
    cache: web::Data<RecordCache>,
) -> Result<HttpResponse, ApiError> {
    let mut params = Params::parse(&request)?;
    let question = grid_question(&request, &mut params)?;
    params.finish(&GRID_PARAMETERS)?;
    let code = authorized.target();
    let cells = cells_of(
        &cache,
        &database,
        code,
        authorized.record_scope(),
        &question,
    )
    .await?;
    let no_data = has_no_data(
        &database,
        code,
        authorized.record_scope(),
        (question.filter.from, question.filter.to),
    )
    .await?;
    authorized.used_records_of([code]);
    authorized.returned(cells.len());
    let views: Vec<GridCellView> = cells.iter().map(GridCellView::from).collect();
    answer(
        question.format,
        views,
        no_data,
        |cells| GridView {
            partnership: code.to_string(),
            resolution: question.resolution.get(),
            filters: describe_filter(&question.filter),
            no_data,
            cells,
        },
        &format!("grid-{code}-r{}.csv", question.resolution.get()),
    )
}

/// A cell of an analysis, as the GeoJSON and CSV answers write it.
trait CellRow: Serialize {
    /// The CSV header; its first column is `h3`.
    const HEADER: &'static [&'static str];
    /// The cell's hexadecimal H3 index.
    fn cell(&self) -> &str;
    /// The CSV row, in the order of [`Self::HEADER`].
    fn row(&self) -> Vec<String>;
}

impl CellRow for GridCellView {
    const HEADER: &'static [&'static str] = &[
        "h3",
        "records",
        "subjects",
        "agencies",
        "agency_kinds",
        "multi_agency_subjects",
        "first",
        "last",
    ];
    fn cell(&self) -> &str {
        &self.cell
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.cell.clone(),
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

impl CellRow for EmergingCellView {
    const HEADER: &'static [&'static str] = &[
        "h3",
        "category",
        "trend_z",
        "trend_p",
        "hot_steps",
        "cold_steps",
    ];
    fn cell(&self) -> &str {
        &self.cell
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.cell.clone(),
            self.category.to_owned(),
            self.trend_z.to_string(),
            self.trend_p.to_string(),
            self.hot_steps.to_string(),
            self.cold_steps.to_string(),
        ]
    }
}

/// Writes an analysis in `format`: as JSON, the view `view` makes of the cells; as GeoJSON, a
/// FeatureCollection of hexagons with each cell's fields as properties and `no_data` beside
/// the features; as CSV, the cells' rows in an attachment named `file_name`.
fn answer<C: CellRow, V: Serialize>(
    format: Format,
    cells: Vec<C>,
    no_data: bool,
    view: impl FnOnce(Vec<C>) -> V,
    file_name: &str,
) -> Result<HttpResponse, ApiError> {
    match format {
        Format::Json => Ok(HttpResponse::Ok().json(view(cells))),
        Format::GeoJson => {
            let features: Vec<Value> = cells
                .iter()
                .filter_map(|cell| {
                    let index: CellIndex = cell.cell().parse().ok()?;
                    let mut ring: Vec<[f64; 2]> = index
                        .boundary()
                        .iter()
                        .map(|vertex| [vertex.lng(), vertex.lat()])
                        .collect();
                    ring.push(*ring.first()?);
                    Some(json!({
                        "type": "Feature",
                        "id": cell.cell(),
                        "properties": serde_json::to_value(cell).unwrap_or(Value::Null),
                        "geometry": { "type": "Polygon", "coordinates": [ring] },
                    }))
                })
                .collect();
            Ok(HttpResponse::Ok().content_type(GEO_JSON).json(
                json!({ "type": "FeatureCollection", "no_data": no_data, "features": features }),
            ))
        }
        Format::Csv => csv_response(C::HEADER, cells.iter().map(CellRow::row), file_name),
    }
}

/// A CSV attachment named `file_name`: `header`, then `rows`.
pub(crate) fn csv_response(
    header: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
    file_name: &str,
) -> Result<HttpResponse, ApiError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let written: Result<(), csv::Error> = (|| {
        writer.write_record(header)?;
        for row in rows {
            writer.write_record(&row)?;
        }
        writer.flush()?;
        Ok(())
    })();
    written.map_err(|err| ApiError::Internal(err.to_string()))?;
    let body = writer
        .into_inner()
        .map_err(|err| ApiError::Internal(err.to_string()))?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "content-disposition",
            format!("attachment; filename=\"{file_name}\""),
        ))
        .body(body))
}

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

/// A hotspot analysis.
#[derive(Debug, Serialize, ToSchema)]
pub struct HotspotsView {
    /// The partnership.
    pub partnership: String,
    /// The settings used.
    #[schema(value_type = Object)]
    pub settings: Value,
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
        ("k" = Option<u32>, Query, description = "k-ring size 1 to 3 (default 1)"),
        ("kernel" = Option<String>, Query, description = "uniform (default), triangular or gaussian"),
        ("value" = Option<String>, Query, description = "subjects (default: distinct children, so one child with many records cannot make a hot spot) or records"),
        ("permutations" = Option<u32>, Query, description = "0 (default) to 9999 conditional permutations"),
        ("alpha" = Option<f64>, Query, description = "false-discovery rate (default 0.05)"),
        ("resolution" = Option<u8>, Query, description = "H3 resolution 5 to 9 (default 8); the grid's filters apply too")
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
pub async fn hotspots(
    authorized: Authorized<ReadAnalysis>,
    request: HttpRequest,
    database: web::Data<Database>,
    cache: web::Data<RecordCache>,
    metrics: web::Data<AnalysisMetrics>,
) -> Result<HttpResponse, ApiError> {
    let question = HotspotQuestion::parse(&request, authorized.record_scope())?;
    let code = authorized.target();
    let values = values_of(&cache, &database, code, &question).await?;
    authorized.used_records_of([code]);
    let study_area = study_area(&database, code, question.grid.resolution).await?;
    let study_area_cells = study_area.len();
    check_permutation_budget(study_area_cells, question.permutations)?;
    // Without data there is nothing to analyse: an analysis of zeros would call every cell
    // "not significant", a statement the data cannot support.
    let no_data = has_no_data(
        &database,
        code,
        question.scope,
        (question.grid.filter.from, question.grid.filter.to),
    )
    .await?;
    let analysis = if no_data {
        Vec::new()
    } else {
        analyse(study_area, values, &question, &metrics).await?
    };
    authorized.returned(analysis.len());
    let discoveries = analysis.iter().filter(|cell| cell.significant).count();
    let settings = question.settings(study_area_cells, discoveries, json!({}));
    answer(
        question.grid.format,
        analysis,
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

/// What a hotspot analysis is asked: the grid's question, the statistic's settings, and the
/// records the caller may analyse.
struct HotspotQuestion {
    grid: GridQuestion,
    scope: RecordScope,
    k: u32,
    kernel: Kernel,
    by_subjects: bool,
    permutations: u32,
    alpha: f64,
}

impl HotspotQuestion {
    /// Reads and checks the query string (no other parameter is accepted), for a caller who may
    /// read the records within `scope` (its [`Authorized::record_scope`]).
    fn parse(request: &HttpRequest, scope: RecordScope) -> Result<Self, ApiError> {
        let mut params = Params::parse(request)?;
        let grid_part = grid_question(request, &mut params)?;
        let k = ring_size(&mut params)?;
        let kernel = match params.take::<String>("kernel")?.as_deref() {
            None | Some("uniform") => Kernel::Uniform,
            Some("triangular") => Kernel::Triangular,
            Some("gaussian") => Kernel::Gaussian,
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "`kernel`: `{other}` is not uniform, triangular or gaussian"
                )));
            }
        };
        let by_subjects = counts_subjects(&mut params)?;
        let permutations = params.take::<u32>("permutations")?.unwrap_or(0);
        if permutations > MAX_PERMUTATIONS {
            return Err(ApiError::BadRequest(format!(
                "`permutations` must be at most {MAX_PERMUTATIONS}"
            )));
        }
        if permutations > 0 && kernel != Kernel::Uniform {
            return Err(ApiError::BadRequest(
                "`permutations`: the permutation test sums its neighbourhoods unweighted, so it \
                 tests the uniform kernel only; ask for kernel=uniform, or permutations=0 (the \
                 randomisation test, which uses the kernel asked for)"
                    .to_owned(),
            ));
        }
        let alpha = level(&mut params)?;
        let mut known = GRID_PARAMETERS.to_vec();
        known.extend(["k", "kernel", "value", "permutations", "alpha"]);
        params.finish(&known)?;
        Ok(Self {
            grid: grid_part,
            scope,
            k,
            kernel,
            by_subjects,
            permutations,
            alpha,
        })
    }

    /// The settings echoed with the answer, with `extra` fields merged in. `discoveries` is how
    /// many cells passed false-discovery control: the warning about too few permutations is
    /// given only when it is true.
    fn settings(&self, study_area_cells: usize, discoveries: usize, extra: Value) -> Value {
        let warning =
            too_few_permutations(self.permutations, study_area_cells, self.alpha, discoveries);
        let permutations = self.permutations;
        let mut settings = json!({
            "resolution": self.grid.resolution.get(),
            "warning": warning,
            "k": self.k,
            "kernel": match self.kernel { Kernel::Uniform => "uniform", Kernel::Triangular => "triangular", Kernel::Gaussian => "gaussian" },
            "value": if self.by_subjects { "subjects" } else { "records" },
            "permutations": permutations,
            "test": if permutations > 0 { "permutation" } else { "randomisation" },
            "alpha": self.alpha,
            "seed": (permutations > 0).then_some(PERMUTATION_SEED),
            "filters": describe_filter(&self.grid.filter),
        });
        if let (Some(settings), Value::Object(extra)) = (settings.as_object_mut(), extra) {
            settings.extend(extra);
        }
        settings
    }
}

/// Why no cell passed false-discovery control, when permutations are the reason. With N
/// permutations the smallest two-sided p-value is 2 / (N + 1); Benjamini–Hochberg over m cells
/// passes the k smallest p-values when the k-th is at most k·α / m, so cells at that smallest
/// p-value pass only when at least ⌈2m / ((N + 1) α)⌉ of them reach it together. `None` when
/// some cell passed, when permutations were not used, or when one cell could pass alone.
fn too_few_permutations(
    permutations: u32,
    cells: usize,
    alpha: f64,
    discoveries: usize,
) -> Option<String> {
    if permutations == 0 || discoveries > 0 {
        return None;
    }
    #[allow(
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

/// The value per cell a hotspot analysis of `code` counts: records or distinct subjects of the
/// filtered grid of the records within the question's scope.
async fn values_of(
    cache: &RecordCache,
    database: &Database,
    code: &GssCode,
    question: &HotspotQuestion,
) -> Result<BTreeMap<CellIndex, u32>, ApiError> {
    let cells = cells_of(cache, database, code, question.scope, &question.grid).await?;
    Ok(cells
        .iter()
        .map(|cell| {
            (
                cell.cell,
                if question.by_subjects {
                    cell.subjects
                } else {
                    cell.records
                },
            )
        })
        .collect())
}

/// Refuses more cells × permutations than one request may ask for.
fn check_permutation_budget(study_area_cells: usize, permutations: u32) -> Result<(), ApiError> {
    if study_area_cells.saturating_mul(permutations as usize) > MAX_PERMUTATION_WORK {
        return Err(ApiError::BadRequest(format!(
            "{permutations} permutations over {study_area_cells} cells is more work than one request may ask for \
             (at most {MAX_PERMUTATION_WORK} cells × permutations): ask for fewer permutations or a coarser resolution"
        )));
    }
    Ok(())
}

/// Gi* with its decisions over every cell of `study_area` (zeros where `values` has none), once
/// the caller has checked [`check_permutation_budget`]. The permutation test, the long part,
/// stops when the handler's future is dropped (its client has gone).
async fn analyse(
    study_area: Vec<CellIndex>,
    values: BTreeMap<CellIndex, u32>,
    question: &HotspotQuestion,
    metrics: &AnalysisMetrics,
) -> Result<Vec<HotspotCellView>, ApiError> {
    let (k, kernel, permutations, alpha) = (
        question.k,
        question.kernel,
        question.permutations,
        question.alpha,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_on_drop = StopOnDrop(Arc::clone(&stop));
    let metrics = metrics.clone();
    web::block(move || -> Result<Vec<HotspotCellView>, String> {
        let _running = metrics.start("hotspots");
        let area = StudyArea::new(study_area).map_err(|err| err.to_string())?;
        let counts: Vec<u32> = area
            .cells()
            .iter()
            .map(|cell| values.get(cell).copied().unwrap_or(0))
            .collect();
        let numbers: Vec<f64> = counts.iter().map(|count| f64::from(*count)).collect();
        let result = gi_star(&area, &numbers, k, kernel).map_err(|err| err.to_string())?;
        let randomisation =
            randomisation_p(&area, &numbers, k, kernel).map_err(|err| err.to_string())?;
        let p_sim = (permutations > 0)
            .then(|| permutation_p(&area, &numbers, k, permutations, PERMUTATION_SEED, &stop))
            .transpose()
            .inspect_err(|err| metrics.note_stopped("hotspots", err))
            .map_err(|err| err.to_string())?;
        // Permutation p-values are one-sided (the nearer tail); the decision is two-sided.
        let two_sided_sim: Option<Vec<f64>> = p_sim
            .as_ref()
            .map(|p| p.iter().map(|p| (2.0 * p).min(1.0)).collect());
        let decisive = two_sided_sim.as_ref().unwrap_or(&randomisation);
        let significant = benjamini_hochberg(decisive, alpha);
        let bins = confidence_bins(&result.z, decisive);
        Ok(area
            .cells()
            .iter()
            .enumerate()
            .map(|(i, cell)| HotspotCellView {
                cell: cell.to_string(),
                value: counts[i],
                z: result.z[i],
                p: result.p[i],
                p_randomisation: randomisation[i],
                p_sim: p_sim.as_ref().map(|p| p[i]),
                significant: significant[i],
                bin: bins[i],
            })
            .collect())
    })
    .await
    .map_err(|err| ApiError::Internal(format!("hotspots: {err}")))?
    .map_err(|err| ApiError::BadRequest(format!("no hotspot analysis is possible: {err}")))
}

/// What a partnership sees of a neighbour's part of a regional analysis: how many of its cells
/// are hot or cold spots, no cell-level figures.
#[derive(Debug, Serialize, ToSchema)]
pub struct NeighbourSummary {
    /// The neighbour's GSS code.
    pub code: String,
    /// Cells of its coverage in the merged study area (not the partnership's own).
    pub cells: usize,
    /// Of those, hot spots at 95 % or 99 % confidence after false-discovery control.
    pub hot_cells: usize,
    /// Of those, cold spots at 95 % or 99 %.
    pub cold_cells: usize,
}

/// One of the partnership's own cells in a regional analysis: its own count and the bin. No
/// z-score or p-value: they mix the neighbours' counts in at full precision and could be
/// inverted to them.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegionalCellView {
    /// The H3 cell, as its hexadecimal index.
    pub cell: String,
    /// The partnership's own value in the cell (records or distinct children).
    pub value: u32,
    /// −3…+3: cold or hot spot at 99 / 95 / 90 % confidence after false-discovery control.
    pub bin: i8,
}

impl CellRow for RegionalCellView {
    const HEADER: &'static [&'static str] = &["h3", "value", "bin"];
    fn cell(&self) -> &str {
        &self.cell
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.cell.clone(),
            self.value.to_string(),
            self.bin.to_string(),
        ]
    }
}

/// A regional hotspot analysis, as one partnership sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegionalHotspotsView {
    /// The partnership.
    pub partnership: String,
    /// The settings used, with the closed quarters (`from`, `to`, `left_out`), `merged`
    /// (partnerships whose records were included) and `not_merged` (neighbours that do not
    /// share `regional_hotspots` with this partnership).
    #[schema(value_type = Object)]
    pub settings: Value,
    /// Cells in the merged study area.
    pub study_area_cells: usize,
    /// True when no agency has contributed records to the partnership in the window: its own
    /// cells are left out, because it has no data.
    pub no_data: bool,
    /// The partnership's own cells: its own value and the bin (none when `no_data`).
    pub cells: Vec<RegionalCellView>,
    /// The merged neighbours' parts, as summaries.
    pub neighbours: Vec<NeighbourSummary>,
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
        ("from" = Option<NaiveDate>, Query, description = "A day of the first quarter (default: four closed quarters back)"),
        ("to" = Option<NaiveDate>, Query, description = "A day of the last quarter; a quarter not yet ended is left out (default: the last closed quarter)"),
        ("k" = Option<u32>, Query, description = "k-ring size 1 to 3 (default 1)"),
        ("kernel" = Option<String>, Query, description = "uniform (default), triangular or gaussian"),
        ("value" = Option<String>, Query, description = "subjects (default: distinct children, so one child with many records cannot make a hot spot) or records"),
        ("permutations" = Option<u32>, Query, description = "0 (default) or 999 conditional permutations"),
        ("alpha" = Option<f64>, Query, description = "false-discovery rate: 0.01, 0.05 (default) or 0.1"),
        ("resolution" = Option<u8>, Query, description = "H3 resolution 5 to 9 (default 8)")
    ),
    responses(
        (status = 200, body = RegionalHotspotsView),
        (status = 200, content_type = "application/geo+json", description = "A FeatureCollection of the partnership's own hexagons"),
        (status = 200, content_type = "text/csv", description = "h3,value,bin (own cells)"),
        (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)
    )
)]
#[get("/api/v1/partnerships/{code}/regional-hotspots")]
pub async fn regional_hotspots(
    authorized: Authorized<ReadAnalysis>,
    request: HttpRequest,
    database: web::Data<Database>,
    cache: web::Data<RecordCache>,
    query_audit: web::Data<QueryAudit>,
    metrics: web::Data<AnalysisMetrics>,
) -> Result<HttpResponse, ApiError> {
    if let Some(filter) = Params::parse(&request)?.first_of(&FINE_FILTERS) {
        return Err(ApiError::BadRequest(format!(
            "`{filter}`: regional hotspots take no filters, since they are built on other \
             partnerships' records; use the partnership's own hotspots for filtered questions"
        )));
    }
    let mut question = HotspotQuestion::parse(&request, authorized.record_scope())?;
    // A free `alpha` or permutation count would let a caller bisect each cell's p-value out of
    // its bin, and so the statistic it mixes the neighbours' counts into: a small menu only.
    if !REGIONAL_ALPHAS.contains(&question.alpha) {
        return Err(ApiError::BadRequest(format!(
            "`alpha`: regional hotspots take 0.01, 0.05 or 0.1, since they are built on other \
             partnerships' records (not {})",
            question.alpha
        )));
    }
    if !REGIONAL_PERMUTATIONS.contains(&question.permutations) {
        return Err(ApiError::BadRequest(format!(
            "`permutations`: regional hotspots take 0 or 999 (not {})",
            question.permutations
        )));
    }
    let window = closed_window(
        Step::Quarter,
        question.grid.filter.from,
        question.grid.filter.to,
        chrono::Utc::now().date_naive(),
        4,
        MAX_REGIONAL_QUARTERS,
    )
    .map_err(|err| ApiError::BadRequest(err.to_string()))?;
    let (first, last) = (window.first(), window.last);
    question.grid.filter.from = Some(first);
    question.grid.filter.to = Some(last);
    let code = authorized.target();
    let (merged, not_merged) = {
        let mut conn = database.connection().await?;
        let partnership = partnerships::find(&mut conn, code)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no partnership has the code {code}")))?;
        let today = chrono::Utc::now().date_naive();
        let (mut merged, mut not_merged) = (Vec::new(), Vec::new());
        for neighbour in partnership.neighbours {
            let neighbour = GssCode::parse(&neighbour)
                .map_err(|err| ApiError::Internal(format!("stored code: {err}")))?;
            let scopes = agreements::shared_scopes(&mut conn, &neighbour, code, today).await?;
            if scopes
                .iter()
                .any(|scope| scope == Scope::RegionalHotspots.as_str())
            {
                merged.push(neighbour);
            } else {
                not_merged.push(neighbour.to_string());
            }
        }
        (merged, not_merged)
    };
    if !merged.is_empty() {
        query_audit
            .check(&database, &authorized, "regional_hotspots")
            .await?;
    }
    let resolution = h3_resolution(question.grid.resolution)?;
    let own_area = study_area(&database, code, question.grid.resolution).await?;
    let own_cells: BTreeSet<CellIndex> = own_area.iter().copied().collect();
    let own_values = values_of(&cache, &database, code, &question).await?;
    let mut values = own_values.clone();
    let mut area: BTreeSet<CellIndex> = own_cells.clone();
    let mut neighbour_cells: Vec<(String, BTreeSet<CellIndex>)> = Vec::new();
    for neighbour in &merged {
        let cells = study_area(&database, neighbour, question.grid.resolution).await?;
        let records = cache
            .records(&database, neighbour, authorized.record_scope())
            .await?
            .unwrap_or_default();
        let by_subjects = question.by_subjects;
        let contribution = web::block(move || {
            gate::contribution(&records.records, resolution, first, last, by_subjects)
        })
        .await
        .map_err(|err| ApiError::Internal(format!("regional hotspots: {err}")))?;
        for (cell, value) in contribution {
            *values.entry(cell).or_default() += value;
        }
        area.extend(cells.iter().copied());
        neighbour_cells.push((
            neighbour.to_string(),
            cells
                .into_iter()
                .filter(|cell| !own_cells.contains(cell))
                .collect(),
        ));
    }
    let study_area_cells = area.len();
    check_permutation_budget(study_area_cells, question.permutations)?;
    authorized.used_records_of(std::iter::once(code).chain(&merged));
    let analysis = analyse(area.into_iter().collect(), values, &question, &metrics).await?;
    let neighbours: Vec<NeighbourSummary> = neighbour_cells
        .iter()
        .map(|(neighbour, cells)| {
            let theirs = || {
                analysis.iter().filter(|view| {
                    view.cell
                        .parse::<CellIndex>()
                        .is_ok_and(|cell| cells.contains(&cell))
                })
            };
            NeighbourSummary {
                code: neighbour.clone(),
                cells: cells.len(),
                hot_cells: theirs().filter(|view| view.bin >= 2).count(),
                cold_cells: theirs().filter(|view| view.bin <= -2).count(),
            }
        })
        .collect();
    // Own cells only, each with the partnership's own count and the bin; none when no agency
    // contributed to the partnership in the window (no data is not a map of zeros).
    let no_data = has_no_data(&database, code, question.scope, (Some(first), Some(last))).await?;
    let discoveries = analysis.iter().filter(|cell| cell.significant).count();
    let own: Vec<RegionalCellView> = analysis
        .into_iter()
        .filter(|_| !no_data)
        .filter_map(|view| {
            let cell = view.cell.parse::<CellIndex>().ok()?;
            own_cells.contains(&cell).then(|| RegionalCellView {
                value: own_values.get(&cell).copied().unwrap_or(0),
                cell: view.cell,
                bin: view.bin,
            })
        })
        .collect();
    authorized.returned(own.len());
    let settings = question.settings(
        study_area_cells,
        discoveries,
        json!({
            "from": first,
            "to": last,
            "quarters": window.starts.iter().map(|start| gate::label(Step::Quarter, *start)).collect::<Vec<_>>(),
            "left_out": window.left_out.map(|start| gate::label(Step::Quarter, start)),
            "merged": std::iter::once(code.to_string()).chain(merged.iter().map(ToString::to_string)).collect::<Vec<_>>(),
            "not_merged": not_merged,
            "disclosure": "the neighbours' counts enter perturbed by their records' keys (the publication gate); only bins are shown, over closed quarters, without filters",
        }),
    );
    answer(
        question.grid.format,
        own,
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
            question.grid.resolution.get()
        ),
    )
}

/// One cell of an emerging hotspot analysis.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmergingCellView {
    /// The H3 cell, as its hexadecimal index.
    pub cell: String,
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

/// An emerging hotspot analysis.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmergingView {
    /// The partnership.
    pub partnership: String,
    /// The settings used.
    #[schema(value_type = Object)]
    pub settings: Value,
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

/// What an emerging analysis computed: its whole, ended steps, the step left out because it
/// has not ended, the study area's size and the cells' categories.
struct EmergingOutcome {
    steps: Vec<NaiveDate>,
    left_out: Option<NaiveDate>,
    study_area_cells: usize,
    cells: Vec<EmergingCellView>,
}

/// Emerging hotspots (space-time Gi*, Mann–Kendall trends and the 17 categories of ArcGIS's
/// Emerging Hot Spot Analysis) over the partnership's coverage, for its own partnership
/// analysts.
#[utoipa::path(
    tag = "analysis",
    security(("bearer" = [])),
    params(
        ("code" = String, Path, description = "GSS code", example = "E10000017"),
        ("step" = Option<String>, Query, description = "week, month (default) or quarter; at least 10 steps between from and to"),
        ("k" = Option<u32>, Query, description = "k-ring size 1 to 3 (default 1)"),
        ("time_lag" = Option<usize>, Query, description = "earlier steps in each bin's neighbourhood (default 1)"),
        ("value" = Option<String>, Query, description = "subjects (default: distinct children, so one child with many records cannot make a hot spot) or records"),
        ("alpha" = Option<f64>, Query, description = "false-discovery rate for bins and level for trends (default 0.05)"),
        ("from" = Option<NaiveDate>, Query, description = "First day (default: the earliest record)"),
        ("to" = Option<NaiveDate>, Query, description = "Last day (default: the latest record); the grid's filters apply too")
    ),
    responses(
        (status = 200, body = EmergingView),
        (status = 200, content_type = "application/geo+json", description = "A FeatureCollection of hexagons"),
        (status = 200, content_type = "text/csv", description = "h3,category,trend_z,trend_p,hot_steps,cold_steps"),
        (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)
    )
)]
#[get("/api/v1/partnerships/{code}/emerging")]
pub async fn emerging(
    authorized: Authorized<ReadAnalysis>,
    request: HttpRequest,
    database: web::Data<Database>,
    cache: web::Data<RecordCache>,
    metrics: web::Data<AnalysisMetrics>,
) -> Result<HttpResponse, ApiError> {
    let mut params = Params::parse(&request)?;
    let question = grid_question(&request, &mut params)?;
    let step = match params.take::<String>("step")?.as_deref() {
        None | Some("month") => Step::Month,
        Some("week") => Step::Week,
        Some("quarter") => Step::Quarter,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "`step`: `{other}` is not week, month or quarter"
            )));
        }
    };
    let k = ring_size(&mut params)?;
    let time_lag = params.take::<usize>("time_lag")?.unwrap_or(1);
    if time_lag > 12 {
        return Err(ApiError::BadRequest(
            "`time_lag` must be at most 12".to_owned(),
        ));
    }
    let by_subjects = counts_subjects(&mut params)?;
    let alpha = level(&mut params)?;
    let mut known = GRID_PARAMETERS.to_vec();
    known.extend(["step", "k", "time_lag", "value", "alpha"]);
    params.finish(&known)?;

    let code = authorized.target();
    let records = cache
        .records(&database, code, authorized.record_scope())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no partnership has the code {code}")))?;
    let study_area = study_area(&database, code, question.resolution).await?;
    let resolution = h3_resolution(question.resolution)?;
    let no_data = has_no_data(
        &database,
        code,
        authorized.record_scope(),
        (question.filter.from, question.filter.to),
    )
    .await?;
    let filter = question.filter.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_on_drop = StopOnDrop(Arc::clone(&stop));
    let metrics = metrics.get_ref().clone();
    let today = chrono::Utc::now().date_naive();
    let outcome = web::block(move || -> Result<EmergingOutcome, String> {
        let mut filter = filter;
        let nothing = |left_out| EmergingOutcome {
            steps: Vec::new(),
            left_out,
            study_area_cells: study_area.len(),
            cells: Vec::new(),
        };
        let matching = records.records.iter().filter(|record| filter.matches(record));
        let (earliest, latest) = matching.fold((None, None), |(low, high): (Option<NaiveDate>, Option<NaiveDate>), record| {
            (
                Some(low.map_or(record.occurred_on, |low| low.min(record.occurred_on))),
                Some(high.map_or(record.occurred_on, |high| high.max(record.occurred_on))),
            )
        });
        let (Some(from), Some(to)) = (filter.from.or(earliest), filter.to.or(latest)) else {
            if no_data {
                return Ok(nothing(None));
            }
            return Err("no records match, so there is no period to analyse".to_owned());
        };
        // Whole steps that have ended: a part-counted first or last step would look like a
        // rise or a fall, and turn hot spots "historical".
        let (starts, last, left_out) = step.whole(from, to, today);
        if starts.len() < MIN_STEPS {
            return Err(format!(
                "{} to {} is {} whole, ended time step(s); emerging hotspots need at least {MIN_STEPS}: widen the period or choose a shorter step",
                from,
                to,
                starts.len()
            ));
        }
        if let Some(first) = starts.first() {
            filter.from = Some(*first);
            filter.to = Some(last);
        }
        check_budget(study_area.len(), starts.len(), k, time_lag).map_err(|err| err.to_string())?;
        // Without data there is nothing to analyse (checked after the question itself).
        if no_data {
            return Ok(nothing(left_out));
        }
        let _running = metrics.start("emerging");
        let area = StudyArea::new(study_area).map_err(|err| err.to_string())?;
        let counts = cube(&records.records, resolution, &filter, &starts, step, by_subjects);
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
        let cells = emerging_hot_spots(&area, &series, k, time_lag, alpha, &stop)
            .inspect_err(|err| metrics.note_stopped("emerging", err))
            .map_err(|err| err.to_string())?
            .into_iter()
            .map(|cell| EmergingCellView {
                cell: cell.cell.to_string(),
                category: cell.category.as_str(),
                trend_z: cell.trend_z,
                trend_p: cell.trend_p,
                hot_steps: cell.hot_steps,
                cold_steps: cell.cold_steps,
            })
            .collect();
        Ok(EmergingOutcome {
            steps: starts,
            left_out,
            study_area_cells: area.cells().len(),
            cells,
        })
    })
    .await
    .map_err(|err| ApiError::Internal(format!("emerging: {err}")))?
    .map_err(|err| ApiError::BadRequest(format!("no emerging hotspot analysis is possible: {err}")))?;
    let EmergingOutcome {
        steps,
        left_out,
        study_area_cells,
        cells,
    } = outcome;
    authorized.used_records_of([code]);
    authorized.returned(cells.len());
    let settings = json!({
        "resolution": question.resolution.get(),
        "step": match step { Step::Week => "week", Step::Month => "month", Step::Quarter => "quarter" },
        "left_out": left_out.map(|start| json!({
            "start": start,
            "reason": "this step has not ended: an analysis counts whole steps that have ended, since a part-counted step would look like a fall",
        })),
        "k": k,
        "time_lag": time_lag,
        "value": if by_subjects { "subjects" } else { "records" },
        "alpha": alpha,
        "filters": describe_filter(&question.filter),
    });
    answer(
        question.format,
        cells,
        no_data,
        |cells| EmergingView {
            partnership: code.to_string(),
            settings,
            steps,
            study_area_cells,
            no_data,
            cells,
        },
        &format!("emerging-{code}-r{}.csv", question.resolution.get()),
    )
}
