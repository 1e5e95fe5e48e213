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

/// Cells written into one piece of a streamed answer (about 177 KB of hotspot JSON).
const CELLS_PER_PIECE: usize = 1024;

/// How a [`CellBody`] writes each cell.
#[derive(Debug, Clone, Copy)]
enum Encoding {
    /// The cell's JSON, comma-separated.
    Json,
    /// A GeoJSON Feature of the cell's hexagon with its fields as properties, comma-separated.
    GeoJson,
    /// A CSV row: the cell's row and its hexagon as WKT.
    Csv,
}

/// An answer of many cells, written while it is sent: `head`, the cells [`CELLS_PER_PIECE`] at
/// a time in `encoding`, then `tail`. The answer is never held whole (a large map's JSON is
/// 15 MB for 88,000 cells), each piece is written only when the connection can take it, and a
/// caller that stops reading stops the writing.
struct CellBody<C> {
    /// What comes before the first cell; taken with the first piece.
    head: Option<Bytes>,
    /// The cells not yet written.
    cells: std::vec::IntoIter<C>,
    /// Whether a cell has been written (the next one follows a comma).
    started: bool,
    /// What comes after the last cell; taken with the last piece.
    tail: Option<Bytes>,
    /// How each cell is written.
    encoding: Encoding,
    /// The size of the last piece written: the next is about as large.
    last_piece: usize,
}

impl<C: CellRow> CellBody<C> {
    /// `head`, then `cells` written in `encoding`, then `tail`.
    fn new(head: Bytes, cells: Vec<C>, tail: Option<Bytes>, encoding: Encoding) -> Self {
        Self {
            head: Some(head),
            cells: cells.into_iter(),
            started: false,
            tail,
            encoding,
            last_piece: 0,
        }
    }

    /// The next piece: the head if not yet sent, up to [`CELLS_PER_PIECE`] cells and, after the
    /// last cell, the tail.
    fn piece(&mut self) -> Result<Option<Bytes>, std::io::Error> {
        let mut piece = Vec::with_capacity(self.last_piece + self.last_piece / 8);
        if let Some(head) = self.head.take() {
            piece.extend_from_slice(&head);
        }
        let cells = self.cells.by_ref().take(CELLS_PER_PIECE);
        match self.encoding {
            Encoding::Json | Encoding::GeoJson => {
                for cell in cells {
                    if std::mem::replace(&mut self.started, true) {
                        piece.push(b',');
                    }
                    match self.encoding {
                        Encoding::GeoJson => serde_json::to_writer(&mut piece, &Feature(&cell)),
                        _ => serde_json::to_writer(&mut piece, &cell),
                    }?;
                }
            }
            Encoding::Csv => {
                let mut writer = csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(&mut piece);
                for cell in cells {
                    let mut row = cell.row();
                    if row.len() != C::HEADER.len() {
                        return Err(std::io::Error::other(format!(
                            "a row of {} fields under a header of {}",
                            row.len(),
                            C::HEADER.len()
                        )));
                    }
                    row.push(wkt(cell.cell()));
                    writer.write_record(&row)?;
                }
                writer.flush()?;
            }
        }
        if self.cells.len() == 0
            && let Some(tail) = self.tail.take()
        {
            piece.extend_from_slice(&tail);
        }
        self.last_piece = piece.len();
        Ok((!piece.is_empty()).then(|| Bytes::from(piece)))
    }
}

impl<C: CellRow + Unpin> MessageBody for CellBody<C> {
    type Error = std::io::Error;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Poll::Ready(self.get_mut().piece().transpose())
    }
}

/// One cell as a GeoJSON Feature: its index as `id`, its fields as `properties`, its hexagon as
/// the geometry.
struct Feature<'a, C>(&'a C);

impl<C: CellRow> Serialize for Feature<'_, C> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let cell = self.0.cell();
        let mut feature = serializer.serialize_map(Some(4))?;
        feature.serialize_entry("type", "Feature")?;
        feature.serialize_entry("id", &cell.to_string())?;
        feature.serialize_entry("properties", self.0)?;
        feature.serialize_entry("geometry", &Hexagon(cell))?;
        feature.end()
    }
}

/// A cell's hexagon as a GeoJSON Polygon: one closed ring, longitude before latitude (WGS84).
struct Hexagon(CellIndex);

impl Serialize for Hexagon {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut polygon = serializer.serialize_map(Some(2))?;
        polygon.serialize_entry("type", "Polygon")?;
        polygon.serialize_entry("coordinates", &[ring(self.0)])?;
        polygon.end()
    }
}

/// Where the empty array of the top-level member `member` (`"cells":[]`) starts in the compact
/// JSON `json`, skipping strings and anything nested (a hot spot area's own `cells`).
fn top_level_member(json: &[u8], member: &[u8]) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0_usize, false, false);
    for (at, &byte) in json.iter().enumerate() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' if depth == 1 && json[at..].starts_with(member) => return Some(at),
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// An answer whose top-level member `member` is an array of `cells`: `around` (the answer with
/// that array empty) is split where the array opens, and the cells are written in between as
/// they are sent.
///
/// # Errors
/// [`ApiError::Internal`] when `around` has no such top-level member.
fn streamed<C: CellRow + Unpin + 'static>(
    around: &[u8],
    member: &str,
    cells: Vec<C>,
    encoding: Encoding,
    content_type: &str,
) -> Result<HttpResponse, ApiError> {
    let empty = format!("\"{member}\":[]");
    let at = top_level_member(around, empty.as_bytes())
        .ok_or_else(|| ApiError::Internal(format!("the answer has no member {member}")))?;
    let open = at + empty.len() - 1;
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .body(CellBody::new(
            Bytes::copy_from_slice(&around[..open]),
            cells,
            Some(Bytes::copy_from_slice(&around[open..])),
            encoding,
        )))
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
    /// The cell.
    fn cell(&self) -> CellIndex;
    /// The CSV row, in the order of [`Self::HEADER`].
    fn row(&self) -> Vec<String>;
}

/// Writes an analysis in `format`: as JSON, the view `view` makes of the cells; as GeoJSON, a
/// FeatureCollection of hexagons with each cell's fields as properties and, beside the
/// features, `no_data`, the view's other members (partnership, settings, study area) and
/// `metadata` (see [`metadata`]); as CSV, the cells' rows, each with its hexagon as WKT, in an
/// attachment named `file_name`. The cells are streamed ([`CellBody`]): `view` is given none
/// and places its (empty) `cells` member where they go, so it must work nothing out from them
/// and must always write that member.
///
/// # Errors
/// [`ApiError::Internal`] when the JSON or the CSV cannot be written.
pub fn answer<C: CellRow + Unpin + 'static, V: Serialize>(
    format: Format,
    cells: Vec<C>,
    no_data: bool,
    view: impl FnOnce(Vec<C>) -> V,
    file_name: &str,
) -> Result<HttpResponse, ApiError> {
    let written = |err: serde_json::Error| ApiError::Internal(format!("writing the answer: {err}"));
    match format {
        Format::Json => {
            let around = serde_json::to_vec(&view(Vec::new())).map_err(written)?;
            streamed(&around, "cells", cells, Encoding::Json, "application/json")
        }
        Format::GeoJson => {
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
            collection.insert("features".to_owned(), json!([]));
            let around = serde_json::to_vec(&collection).map_err(written)?;
            streamed(&around, "features", cells, Encoding::GeoJson, GEO_JSON)
        }
        Format::Csv => {
            let mut head = csv::Writer::from_writer(Vec::new());
            head.write_record(C::HEADER.iter().copied().chain(["wkt"]))
                .map_err(|err| ApiError::Internal(err.to_string()))?;
            let head = head
                .into_inner()
                .map_err(|err| ApiError::Internal(err.to_string()))?;
            Ok(csv_attachment(file_name).body(CellBody::new(
                Bytes::from(head),
                cells,
                None,
                Encoding::Csv,
            )))
        }
    }
}

/// The hexagon of `cell` as WKT: `POLYGON ((lng lat, …))`, closed, WGS84.
pub fn wkt(cell: CellIndex) -> String {
    let ring: Vec<String> = ring(cell)
        .iter()
        .map(|[lng, lat]| format!("{lng} {lat}"))
        .collect();
    format!("POLYGON (({}))", ring.join(", "))
}

/// The hexagon of `cell` as a closed ring of `[longitude, latitude]` (WGS84).
fn ring(cell: CellIndex) -> Vec<[f64; 2]> {
    let boundary = cell.boundary();
    boundary
        .iter()
        .chain(boundary.iter().take(1))
        .map(|vertex| [vertex.lng(), vertex.lat()])
        .collect()
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
    Ok(csv_attachment(file_name).body(body))
}

/// A 200 answer of CSV to be saved as `file_name`.
fn csv_attachment(file_name: &str) -> actix_web::HttpResponseBuilder {
    let mut response = HttpResponse::Ok();
    response
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "content-disposition",
            format!("attachment; filename=\"{file_name}\""),
        ));
    response
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

    #[derive(Serialize)]
    struct Spot {
        #[serde(serialize_with = "hex")]
        cell: CellIndex,
        near: String,
    }

    impl CellRow for Spot {
        const HEADER: &'static [&'static str] = &["hex_id", "near"];
        const VALUE: &'static str = "a spot";
        const METHOD: &'static str = "by hand";
        fn cell(&self) -> CellIndex {
            self.cell
        }
        fn row(&self) -> Vec<String> {
            vec![self.cell.to_string(), self.near.clone()]
        }
    }

    #[derive(Serialize)]
    struct Spots {
        note: String,
        areas: Vec<Spots>,
        cells: Vec<Spot>,
        after: u32,
    }

    fn spots(count: usize) -> Vec<Spot> {
        let origin = h3o::LatLng::new(53.8, -2.2)
            .unwrap()
            .to_cell(h3o::Resolution::Nine);
        origin
            .grid_disk::<Vec<_>>(40)
            .into_iter()
            .take(count)
            .enumerate()
            .map(|(at, cell)| Spot {
                cell,
                near: format!("place \"{at}\", \"cells\":[] \\"),
            })
            .collect()
    }

    /// The view of `spots`, with a nested member of the same name and text that looks like it.
    fn view(cells: Vec<Spot>) -> Spots {
        Spots {
            note: "\"cells\":[] in a string \\".to_owned(),
            areas: vec![Spots {
                note: String::new(),
                areas: Vec::new(),
                cells: Vec::new(),
                after: 1,
            }],
            cells,
            after: 2,
        }
    }

    async fn body_of(response: HttpResponse) -> Vec<u8> {
        let mut body = Box::pin(response.into_body());
        let mut bytes = Vec::new();
        while let Some(piece) =
            std::future::poll_fn(|context| body.as_mut().poll_next(context)).await
        {
            bytes.extend_from_slice(&piece.unwrap());
        }
        bytes
    }

    /// A streamed JSON answer is, byte for byte, the view written whole, whatever the number
    /// of pieces and wherever else a member called `cells` appears.
    #[actix_web::test]
    async fn a_streamed_answer_is_the_view_written_whole() {
        for count in [
            0,
            1,
            CELLS_PER_PIECE,
            CELLS_PER_PIECE + 1,
            2 * CELLS_PER_PIECE + 7,
        ] {
            let response = answer(Format::Json, spots(count), false, view, "x.csv").unwrap();
            let whole = serde_json::to_vec(&view(spots(count))).unwrap();
            assert_eq!(body_of(response).await, whole, "{count} cells");
        }
    }

    /// The GeoJSON answer is a FeatureCollection of closed hexagons with the view's other
    /// members beside them, and the CSV answer a header and a row with WKT per cell.
    #[actix_web::test]
    async fn geojson_and_csv_answers_hold_every_cell() {
        let count = CELLS_PER_PIECE + 3;
        let response = answer(Format::GeoJson, spots(count), false, view, "x.csv").unwrap();
        let collection: Value = serde_json::from_slice(&body_of(response).await).unwrap();
        assert_eq!(collection["type"], "FeatureCollection");
        assert_eq!(collection["after"], 2);
        assert_eq!(collection["metadata"]["value"], "a spot");
        let features = collection["features"].as_array().unwrap();
        assert_eq!(features.len(), count);
        for (feature, spot) in features.iter().zip(spots(count)) {
            assert_eq!(feature["id"], spot.cell.to_string());
            assert_eq!(feature["properties"]["near"], spot.near);
            let ring = feature["geometry"]["coordinates"][0].as_array().unwrap();
            assert_eq!(ring.len(), 7);
            assert_eq!(ring.first(), ring.last());
        }

        let response = answer(Format::Csv, spots(count), false, view, "x.csv").unwrap();
        let body = body_of(response).await;
        let mut reader = csv::Reader::from_reader(body.as_slice());
        assert_eq!(reader.headers().unwrap(), vec!["hex_id", "near", "wkt"]);
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), count);
        for (row, spot) in rows.iter().zip(spots(count)) {
            assert_eq!(&row[0], spot.cell.to_string());
            assert_eq!(&row[1], spot.near);
            assert_eq!(&row[2], wkt(spot.cell));
        }
    }
}
