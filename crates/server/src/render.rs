//! How answers are written: JSON, GeoJSON (RFC 7946, `Accept: application/geo+json` or
//! `format=geojson`, with a `metadata` member saying what the map shows) or CSV with a `hex_id`
//! column (which kepler.gl recognises as H3) and a `wkt` polygon column (which QGIS and GDAL
//! read as the geometry) (`format=csv`).

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::HttpResponse;
use actix_web::body::{BodySize, MessageBody};
use actix_web::web::Bytes;
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

/// Writes a cell as its hexadecimal H3 index, without a string per cell.
///
/// # Errors
/// The serializer's.
pub fn hex<S: serde::Serializer>(cell: &CellIndex, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(cell)
}

/// Writes a day as `YYYY-MM-DD` (ISO 8601) without the formatting machinery's character at a
/// time, for the dates of every cell of a grid.
///
/// # Errors
/// The serializer's.
pub fn day<S: serde::Serializer>(day: &NaiveDate, serializer: S) -> Result<S::Ok, S::Error> {
    use chrono::Datelike as _;
    let Ok(year) = u32::try_from(day.year()) else {
        return serializer.collect_str(day);
    };
    if year > 9999 {
        return serializer.collect_str(day);
    }
    let digit = |value: u32, place: u32| b'0' + u8::try_from(value / place % 10).unwrap_or(0);
    let (month, date) = (day.month(), day.day());
    let text = [
        digit(year, 1000),
        digit(year, 100),
        digit(year, 10),
        digit(year, 1),
        b'-',
        digit(month, 10),
        digit(month, 1),
        b'-',
        digit(date, 10),
        digit(date, 1),
    ];
    serializer.serialize_str(std::str::from_utf8(&text).map_err(serde::ser::Error::custom)?)
}

/// A body whose length is known, handed to actix-web in slices of [`BODY_SLICE`] bytes: given
/// in one piece, a large answer was copied whole into a write buffer grown to its size.
struct Sliced(Bytes);

/// The slice of a [`Sliced`] body actix-web writes at a time.
const BODY_SLICE: usize = 256 * 1024;

impl MessageBody for Sliced {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Sized(u64::try_from(self.0.len()).unwrap_or(u64::MAX))
    }

    fn poll_next(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let rest = &mut self.get_mut().0;
        if rest.is_empty() {
            return Poll::Ready(None);
        }
        let slice = rest.len().min(BODY_SLICE);
        Poll::Ready(Some(Ok(rest.split_to(slice))))
    }
}

/// About the bytes one cell of a JSON answer takes (a hotspot cell: 173 bytes).
const JSON_BYTES_PER_CELL: usize = 192;

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
    /// The cell.
    fn cell(&self) -> CellIndex;
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
/// [`ApiError::Internal`] when the JSON or the CSV cannot be written.
pub fn answer<C: CellRow, V: Serialize>(
    format: Format,
    cells: Vec<C>,
    no_data: bool,
    view: impl FnOnce(Vec<C>) -> V,
    file_name: &str,
) -> Result<HttpResponse, ApiError> {
    match format {
        Format::Json => {
            // Written once into a buffer of about the answer's size: growing it by doubling
            // copied a large map's answer (15 MB for 88,000 cells) several times over.
            let mut body = Vec::with_capacity(cells.len().saturating_mul(JSON_BYTES_PER_CELL));
            serde_json::to_writer(&mut body, &view(cells))
                .map_err(|err| ApiError::Internal(format!("writing the answer: {err}")))?;
            Ok(HttpResponse::Ok()
                .content_type(actix_web::http::header::ContentType::json())
                .body(Sliced(Bytes::from(body))))
        }
        Format::GeoJson => {
            let features: Vec<Value> = cells
                .iter()
                .filter_map(|cell| {
                    let index = cell.cell();
                    let mut ring: Vec<[f64; 2]> = index
                        .boundary()
                        .iter()
                        .map(|vertex| [vertex.lng(), vertex.lat()])
                        .collect();
                    ring.push(*ring.first()?);
                    Some(json!({
                        "type": "Feature",
                        "id": index.to_string(),
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
                    row.push(wkt(cell.cell()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Serialize)]
    struct Written {
        #[serde(serialize_with = "hex")]
        cell: CellIndex,
        #[serde(serialize_with = "day")]
        on: NaiveDate,
    }

    proptest! {
        /// Cells and days are written as their own `Display` and chrono's serde write them.
        #[test]
        fn cells_and_days_are_written_as_their_usual_text(
            days in -1_000_000_i32..3_000_000,
            lat in 50.0_f64..55.0,
            lng in -5.0_f64..1.0,
        ) {
            let on = NaiveDate::from_num_days_from_ce_opt(days).unwrap();
            let cell = h3o::LatLng::new(lat, lng).unwrap().to_cell(h3o::Resolution::Nine);
            let written = serde_json::to_value(Written { cell, on }).unwrap();
            prop_assert_eq!(&written["cell"], &json!(cell.to_string()));
            prop_assert_eq!(&written["on"], &serde_json::to_value(on).unwrap());
        }
    }

    #[actix_web::test]
    async fn a_sliced_body_keeps_its_length_and_bytes() {
        let bytes: Vec<u8> = (0..BODY_SLICE * 2 + 17).map(|i| (i % 251) as u8).collect();
        let body = Sliced(Bytes::from(bytes.clone()));
        assert_eq!(
            body.size(),
            BodySize::Sized(u64::try_from(bytes.len()).unwrap())
        );
        let mut body = Box::pin(body);
        let mut slices = Vec::new();
        while let Some(slice) =
            std::future::poll_fn(|context| body.as_mut().poll_next(context)).await
        {
            slices.push(slice.unwrap());
        }
        assert_eq!(slices.len(), 3);
        assert!(slices.iter().all(|slice| slice.len() <= BODY_SLICE));
        assert_eq!(slices.concat(), bytes);
    }
}
