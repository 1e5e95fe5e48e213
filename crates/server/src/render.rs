//! How answers are written: JSON, GeoJSON (RFC 7946, `Accept: application/geo+json` or
//! `format=geojson`, with a `metadata` member saying what the map shows) or CSV with a `hex_id`
//! column (which kepler.gl recognises as H3) and a `wkt` polygon column (which QGIS and GDAL
//! read as the geometry) (`format=csv`).

use actix_web::HttpResponse;
use atlas_analytics::grid::{Filter, IndicatorMatch};
use chrono::NaiveDate;
use h3o::CellIndex;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::ApiError;

/// The media type of GeoJSON (RFC 7946).
pub const GEO_JSON: &str = "application/geo+json";

/// How an analysis is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The answer's view as JSON.
    Json,
    /// A FeatureCollection of hexagons.
    GeoJson,
    /// The cells' rows as a CSV attachment.
    Csv,
}

/// The licence and attribution every download carries.
pub const ATTRIBUTION: &str = "Safeguard Atlas. Disclosure-controlled figures for the partnership's own use under its sharing agreements (docs/privacy.md). Reference geography: Office for National Statistics, Open Government Licence v3.0; H3 hexagons (Apache-2.0).";

/// A cell of an analysis, as the GeoJSON and CSV answers write it.
pub trait CellRow: Serialize {
    /// The CSV header; its first column is `hex_id`, the cell (a `wkt` column is added last).
    const HEADER: &'static [&'static str];
    /// What each cell's figures are, in words (the GeoJSON's `metadata.value`).
    const VALUE: &'static str;
    /// How they were worked out, in words (the GeoJSON's `metadata.method`).
    const METHOD: &'static str;
    /// The cell's hexadecimal H3 index.
    fn cell(&self) -> &str;
    /// The CSV row, in the order of [`Self::HEADER`].
    fn row(&self) -> Vec<String>;
}

/// Writes an analysis in `format`: as JSON, the view `view` makes of the cells; as GeoJSON, a
/// FeatureCollection of hexagons with each cell's fields as properties and, beside the
/// features, `no_data`, the view's other members (partnership, settings, study area) and
/// `metadata` (see [`metadata`]); as CSV, the cells' rows, each with its hexagon as WKT, in an
/// attachment named `file_name`.
///
/// # Errors
/// [`ApiError::Internal`] when the CSV cannot be written.
pub fn answer<C: CellRow, V: Serialize>(
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
            // What the JSON answer says beside its cells (partnership, settings, study area…)
            // travels with the features as foreign members (RFC 7946, section 6.1), so that a
            // downloaded map keeps what it shows and how it was made.
            let mut collection = match serde_json::to_value(view(Vec::new())) {
                Ok(Value::Object(mut members)) => {
                    members.remove("cells");
                    members
                }
                _ => serde_json::Map::new(),
            };
            let described = metadata::<C>(&collection, file_name);
            collection.insert("metadata".to_owned(), described);
            collection.insert("type".to_owned(), json!("FeatureCollection"));
            collection.insert("no_data".to_owned(), json!(no_data));
            collection.insert("features".to_owned(), Value::Array(features));
            Ok(HttpResponse::Ok()
                .content_type(GEO_JSON)
                .json(Value::Object(collection)))
        }
        Format::Csv => {
            let header: Vec<&str> = C::HEADER.iter().copied().chain(["wkt"]).collect();
            csv_response(
                &header,
                cells.iter().map(|cell| {
                    let mut row = cell.row();
                    row.push(cell.cell().parse().map(wkt).unwrap_or_default());
                    row
                }),
                file_name,
            )
        }
    }
}

/// The hexagon of `cell` as WKT: `POLYGON ((lng lat, …))`, closed, WGS84.
pub fn wkt(cell: CellIndex) -> String {
    let boundary = cell.boundary();
    let ring: Vec<String> = boundary
        .iter()
        .chain(boundary.iter().take(1))
        .map(|vertex| format!("{} {}", vertex.lng(), vertex.lat()))
        .collect();
    format!("POLYGON (({}))", ring.join(", "))
}

/// What a downloaded map shows, in one object: `name`, `value` and `method` (in words), the
/// `resolution`, the `period` (`from`, `to`; null where all records are used), the record
/// `filters`, `generated_at`, and the `licence` and attribution; read from the answer's
/// members (`view`) whatever their nesting (`settings`, `settings.hotspots`).
fn metadata<C: CellRow>(view: &serde_json::Map<String, Value>, file_name: &str) -> Value {
    let settings = view.get("settings");
    let nested = settings.and_then(|settings| settings.get("hotspots"));
    let find = |name: &str| {
        [
            view.get(name),
            settings.and_then(|s| s.get(name)),
            nested.and_then(|s| s.get(name)),
        ]
        .into_iter()
        .flatten()
        .find(|value| !value.is_null())
        .cloned()
        .unwrap_or(Value::Null)
    };
    let filters = find("filters");
    let period_end = |name: &str| {
        let from_settings = find(name);
        if from_settings.is_null() {
            filters.get(name).cloned().unwrap_or(Value::Null)
        } else {
            from_settings
        }
    };
    json!({
        "name": file_name.trim_end_matches(".csv"),
        "partnership": find("partnership"),
        "value": C::VALUE,
        "measure": find("value"),
        "resolution": find("resolution"),
        "period": { "from": period_end("from"), "to": period_end("to") },
        "filters": filters,
        "method": C::METHOD,
        "generated_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "licence": ATTRIBUTION,
    })
}

/// A CSV attachment named `file_name`: `header`, then `rows`.
///
/// # Errors
/// [`ApiError::Internal`] when the CSV cannot be written.
pub fn csv_response(
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

/// The filter of records an answer echoes; a dimension not filtered on is null.
#[derive(Debug, Serialize, ToSchema)]
pub struct FilterView {
    /// First day included.
    pub from: Option<NaiveDate>,
    /// Last day included.
    pub to: Option<NaiveDate>,
    /// Agency kinds.
    pub agency_kinds: Option<Vec<String>>,
    /// Record kinds.
    pub record_kinds: Option<Vec<String>>,
    /// Indicators, combined by `indicator_match`.
    pub indicators: Option<Vec<String>>,
    /// `any` or `all` of `indicators`.
    pub indicator_match: &'static str,
    /// Age bands.
    pub age_bands: Option<Vec<String>>,
    /// Sexes.
    pub sexes: Option<Vec<String>>,
    /// Location roles.
    pub location_roles: Option<Vec<String>>,
}

impl From<&Filter> for FilterView {
    fn from(filter: &Filter) -> Self {
        fn names<T: ToString>(values: impl IntoIterator<Item = T>) -> Option<Vec<String>> {
            let names: Vec<String> = values.into_iter().map(|value| value.to_string()).collect();
            (!names.is_empty()).then_some(names)
        }
        Self {
            from: filter.from,
            to: filter.to,
            agency_kinds: names(&filter.agency_kinds),
            record_kinds: names(&filter.record_kinds),
            indicators: names(filter.indicators.iter()),
            indicator_match: match filter.indicator_match {
                IndicatorMatch::Any => "any",
                IndicatorMatch::All => "all",
            },
            age_bands: names(&filter.age_bands),
            sexes: names(&filter.sexes),
            location_roles: names(&filter.location_roles),
        }
    }
}
