//! How answers are written: JSON, GeoJSON (RFC 7946, `Accept: application/geo+json` or
//! `format=geojson`) or CSV with an `h3` column (`format=csv`, for kepler.gl and QGIS).

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

/// A cell of an analysis, as the GeoJSON and CSV answers write it.
pub trait CellRow: Serialize {
    /// The CSV header; its first column is `h3`.
    const HEADER: &'static [&'static str];
    /// The cell's hexadecimal H3 index.
    fn cell(&self) -> &str;
    /// The CSV row, in the order of [`Self::HEADER`].
    fn row(&self) -> Vec<String>;
}

/// Writes an analysis in `format`: as JSON, the view `view` makes of the cells; as GeoJSON, a
/// FeatureCollection of hexagons with each cell's fields as properties and, beside the
/// features, `no_data` and the view's other members (partnership, settings, study area); as CSV, the cells' rows in an attachment named `file_name`.
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
            collection.insert("type".to_owned(), json!("FeatureCollection"));
            collection.insert("no_data".to_owned(), json!(no_data));
            collection.insert("features".to_owned(), Value::Array(features));
            Ok(HttpResponse::Ok()
                .content_type(GEO_JSON)
                .json(Value::Object(collection)))
        }
        Format::Csv => csv_response(C::HEADER, cells.iter().map(CellRow::row), file_name),
    }
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
