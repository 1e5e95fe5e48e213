//! Reference geography: ONS-style boundary GeoJSON and neighbour tables.

use std::collections::{BTreeSet, HashSet};
use std::io::Read;

use atlas_domain::{GssCode, StoredResolution};
use geo::{Centroid as _, MultiPolygon};
use geojson::{Feature, FeatureReader};
use h3o::geom::{ContainmentMode, TilerBuilder};
use h3o::{CellIndex, LatLng, Resolution};

/// The property names that hold an area's GSS code and name in a boundary file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundaryFields {
    /// Property holding the GSS code (ONS files often use `UTLA23CD` or `CTYUA23CD`).
    pub code: String,
    /// Property holding the name (for example `UTLA23NM`).
    pub name: String,
}

impl Default for BoundaryFields {
    fn default() -> Self {
        Self {
            code: "code".to_owned(),
            name: "name".to_owned(),
        }
    }
}

/// One area read from a boundary file, with its H3 coverage.
#[derive(Debug, Clone)]
pub struct ReferenceArea {
    /// The area's GSS code.
    pub code: GssCode,
    /// The area's name as published.
    pub name: String,
    /// The boundary as a GeoJSON geometry (Polygon or MultiPolygon, WGS84).
    pub boundary: geojson::Geometry,
    /// The H3 cells covering the boundary.
    pub coverage: Coverage,
}

/// The H3 cells that cover an area at every stored resolution.
///
/// At the finest resolution a cell belongs to the area when its centre lies inside the boundary,
/// so areas that tile the country without overlap get disjoint coverages. Each coarser
/// resolution holds the parents of the finest cells, so a coarse cell on a border belongs to
/// every area that has a fine cell inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    /// Sorted, distinct cells per resolution, coarsest first.
    by_resolution: Vec<(StoredResolution, Vec<u64>)>,
}

impl Coverage {
    /// Builds a coverage from the cells at the finest resolution.
    #[must_use]
    pub fn from_finest_cells(cells: impl IntoIterator<Item = CellIndex>) -> Self {
        let finest: BTreeSet<CellIndex> = cells.into_iter().collect();
        let by_resolution = StoredResolution::all()
            .map(|resolution| {
                let h3_resolution = h3_resolution(resolution);
                let cells: BTreeSet<u64> = finest
                    .iter()
                    .filter_map(|cell| cell.parent(h3_resolution))
                    .map(u64::from)
                    .collect();
                (resolution, cells.into_iter().collect())
            })
            .collect();
        Self { by_resolution }
    }

    /// The cells at one resolution, sorted.
    #[must_use]
    pub fn cells(&self, resolution: StoredResolution) -> &[u64] {
        self.by_resolution
            .iter()
            .find(|(stored, _)| *stored == resolution)
            .map_or(&[], |(_, cells)| cells.as_slice())
    }

    /// Every (resolution, cell) pair, coarsest resolution first.
    pub fn iter(&self) -> impl Iterator<Item = (StoredResolution, u64)> + '_ {
        self.by_resolution
            .iter()
            .flat_map(|(resolution, cells)| cells.iter().map(move |cell| (*resolution, *cell)))
    }
}

/// Converts a stored resolution into h3o's type.
#[must_use]
pub fn h3_resolution(resolution: StoredResolution) -> Resolution {
    Resolution::try_from(resolution.get()).unwrap_or(Resolution::Nine)
}

/// Why reference data was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    /// One feature of a boundary file is unusable; features are numbered from 1.
    #[error("feature {number}{code}: {reason}", code = code_suffix(.code.as_ref()))]
    Feature {
        /// Position of the feature in the file, from 1.
        number: usize,
        /// The feature's code when it could be read.
        code: Option<String>,
        /// What is wrong with it.
        reason: String,
    },
    /// The boundary file is not a GeoJSON FeatureCollection.
    #[error("not a GeoJSON FeatureCollection: {0}")]
    NotFeatureCollection(String),
    /// A row of a neighbours table is unusable; lines are numbered from 1 including the header.
    #[error("neighbours line {line}: {reason}")]
    Neighbour {
        /// Line in the file, from 1, counting the header.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
}

fn code_suffix(code: Option<&String>) -> String {
    code.map(|code| format!(" ({code})")).unwrap_or_default()
}

/// Reads every feature of a boundary FeatureCollection, validating its properties and geometry
/// and computing its coverage. Stops at the first bad feature: a partial import would leave the
/// country with holes.
///
/// # Errors
/// [`ReferenceError`] naming the first bad feature and why.
pub fn read_boundaries(
    reader: impl Read,
    fields: &BoundaryFields,
) -> Result<Vec<ReferenceArea>, ReferenceError> {
    let mut seen = HashSet::new();
    let mut areas = Vec::new();
    for (index, feature) in FeatureReader::from_reader(reader).features().enumerate() {
        let number = index + 1;
        let feature = feature.map_err(|err| {
            if number == 1 {
                ReferenceError::NotFeatureCollection(err.to_string())
            } else {
                ReferenceError::Feature {
                    number,
                    code: None,
                    reason: err.to_string(),
                }
            }
        })?;
        let area =
            read_area(feature, fields).map_err(|(code, reason)| ReferenceError::Feature {
                number,
                code,
                reason,
            })?;
        if !seen.insert(area.code.clone()) {
            return Err(ReferenceError::Feature {
                number,
                code: Some(area.code.to_string()),
                reason: "the same code appears in an earlier feature".to_owned(),
            });
        }
        areas.push(area);
    }
    if areas.is_empty() {
        return Err(ReferenceError::NotFeatureCollection(
            "the file holds no features".to_owned(),
        ));
    }
    Ok(areas)
}

type FeatureProblem = (Option<String>, String);

fn read_area(feature: Feature, fields: &BoundaryFields) -> Result<ReferenceArea, FeatureProblem> {
    let property = |name: &str| -> Result<String, FeatureProblem> {
        match feature.property(name) {
            Some(serde_json::Value::String(text)) if !text.trim().is_empty() => {
                Ok(text.trim().to_owned())
            }
            Some(_) => Err((None, format!("property `{name}` is not a non-empty string"))),
            None => Err((None, format!("property `{name}` is missing"))),
        }
    };
    let raw_code = property(&fields.code)?;
    let code = GssCode::parse(&raw_code).map_err(|err| (None, err.to_string()))?;
    let with_code = |reason: String| (Some(code.to_string()), reason);
    let name = property(&fields.name).map_err(|(_, reason)| with_code(reason))?;
    let boundary = feature
        .geometry
        .clone()
        .ok_or_else(|| with_code("the feature has no geometry".to_owned()))?;
    let polygons = to_multipolygon(&boundary).map_err(with_code)?;
    let coverage = cover(&polygons).map_err(with_code)?;
    Ok(ReferenceArea {
        code,
        name,
        boundary,
        coverage,
    })
}

fn to_multipolygon(geometry: &geojson::Geometry) -> Result<MultiPolygon, String> {
    let converted = geo::Geometry::<f64>::try_from(geometry.clone())
        .map_err(|err| format!("unreadable geometry: {err}"))?;
    let polygons = match converted {
        geo::Geometry::Polygon(polygon) => MultiPolygon::new(vec![polygon]),
        geo::Geometry::MultiPolygon(polygons) => polygons,
        other => {
            return Err(format!(
                "geometry is a {}, expected Polygon or MultiPolygon",
                geometry_kind(&other)
            ));
        }
    };
    for polygon in &polygons {
        for ring in std::iter::once(polygon.exterior()).chain(polygon.interiors()) {
            if ring.0.len() < 4 {
                return Err("a ring has fewer than four positions".to_owned());
            }
            if let Some(coord) = ring.coords().find(|c| {
                !(c.x.is_finite() && c.y.is_finite())
                    || !(-180.0..=180.0).contains(&c.x)
                    || !(-90.0..=90.0).contains(&c.y)
            }) {
                return Err(format!(
                    "position ({}, {}) is not a WGS84 longitude and latitude",
                    coord.x, coord.y
                ));
            }
        }
    }
    Ok(polygons)
}

fn geometry_kind(geometry: &geo::Geometry<f64>) -> &'static str {
    match geometry {
        geo::Geometry::Point(_) => "Point",
        geo::Geometry::Line(_) | geo::Geometry::LineString(_) => "LineString",
        geo::Geometry::MultiPoint(_) => "MultiPoint",
        geo::Geometry::MultiLineString(_) => "MultiLineString",
        geo::Geometry::GeometryCollection(_) => "GeometryCollection",
        _ => "geometry of another kind",
    }
}

/// Computes the coverage of a boundary: cells at the finest resolution whose centres lie inside
/// it, and their parents. A boundary too small to hold any cell centre is covered by the cell
/// holding its centroid, so every area has at least one cell.
///
/// # Errors
/// A message when h3o finds the geometry invalid (for example a ring that is not closed).
pub fn cover(polygons: &MultiPolygon) -> Result<Coverage, String> {
    let mut tiler = TilerBuilder::new(Resolution::Nine)
        .containment_mode(ContainmentMode::ContainsCentroid)
        .build();
    tiler
        .add_batch(polygons.clone())
        .map_err(|err| format!("invalid geometry: {err}"))?;
    let mut cells: Vec<CellIndex> = tiler.into_coverage().collect();
    if cells.is_empty() {
        let centroid = polygons
            .centroid()
            .ok_or_else(|| "the geometry has no area".to_owned())?;
        let point = LatLng::new(centroid.y(), centroid.x())
            .map_err(|err| format!("invalid centroid: {err}"))?;
        cells.push(point.to_cell(Resolution::Nine));
    }
    Ok(Coverage::from_finest_cells(cells))
}

/// Reads a `code,neighbour_code` table (header required, extra columns ignored). Every code must
/// be a GSS code and no area may neighbour itself; duplicate rows are merged.
///
/// # Errors
/// [`ReferenceError::Neighbour`] naming the first bad line.
pub fn read_neighbours(reader: impl Read) -> Result<Vec<(GssCode, GssCode)>, ReferenceError> {
    let mut csv = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(reader);
    let header_error = |reason: String| ReferenceError::Neighbour { line: 1, reason };
    let headers = csv
        .headers()
        .map_err(|err| header_error(err.to_string()))?
        .clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|header| header.eq_ignore_ascii_case(name))
            .ok_or_else(|| header_error(format!("the header has no `{name}` column")))
    };
    let (code_column, neighbour_column) = (column("code")?, column("neighbour_code")?);
    let mut pairs = BTreeSet::new();
    for record in csv.records() {
        let record = record.map_err(|err| ReferenceError::Neighbour {
            line: err.position().map_or(0, csv::Position::line),
            reason: err.to_string(),
        })?;
        let line = record.position().map_or(0, csv::Position::line);
        let field = |index: usize| {
            GssCode::parse(record.get(index).unwrap_or_default()).map_err(|err| {
                ReferenceError::Neighbour {
                    line,
                    reason: err.to_string(),
                }
            })
        };
        let (code, neighbour) = (field(code_column)?, field(neighbour_column)?);
        if code == neighbour {
            return Err(ReferenceError::Neighbour {
                line,
                reason: format!("{code} is listed as its own neighbour"),
            });
        }
        pairs.insert((code, neighbour));
    }
    Ok(pairs.into_iter().collect())
}
