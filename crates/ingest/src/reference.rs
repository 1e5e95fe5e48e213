//! Reference geography: ONS-style boundary GeoJSON and neighbour tables.

use std::collections::{BTreeSet, HashSet};
use std::io::Read;

use atlas_domain::{Coverage, GssCode, Place, PostcodeCell, ReferenceArea, SmallAreaPopulation};
use geo::{Centroid as _, MultiPolygon};
use geojson::{Feature, FeatureCollection, GeoJson};
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
    /// A row of a postcode directory is unusable; lines are numbered from 1 including the header.
    #[error("postcodes line {line}: {reason}")]
    Postcode {
        /// Line in the file, from 1, counting the header.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A row of a neighbours table is unusable; lines are numbered from 1 including the header.
    #[error("neighbours line {line}: {reason}")]
    Neighbour {
        /// Line in the file, from 1, counting the header.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A row of a comparator table is unusable; lines are numbered from 1 including the header.
    #[error("comparators line {line}: {reason}")]
    Comparator {
        /// Line in the file, from 1, counting the header.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A row of a regional group table is unusable; lines are numbered from 1 including the
    /// header.
    #[error("regional groups line {line}: {reason}")]
    RegionalGroup {
        /// Line in the file, from 1, counting the header.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A row of a place table is unusable; lines are numbered from 1 including the header.
    #[error("places line {line}: {reason}")]
    Place {
        /// Line in the file, from 1, counting the header.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A row of a small-area population table is unusable; lines are numbered from 1 including
    /// the header.
    #[error("small-area population line {line}: {reason}")]
    SmallArea {
        /// Line in the file, from 1, counting the header.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A row of a child population table is unusable; lines are numbered from 1 including the
    /// header.
    #[error("population line {line}: {reason}")]
    Population {
        /// Line in the file, from 1, counting the header.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
}

/// Children aged 0 to 17 in one local authority in one year (an ONS mid-year estimate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildPopulation {
    /// GSS code of the local authority.
    pub code: GssCode,
    /// The year of the estimate (mid-year).
    pub year: i16,
    /// Children aged 0 to 17.
    pub population_0_17: u32,
}

/// Reads a child population table: CSV with columns `code,year,population_0_17` (any order,
/// more columns ignored), as ONS mid-year estimates are published. Refuses the whole file on
/// the first bad row, naming its line: an unknown code format, a year outside 1990 to 2100, a
/// count that is not a whole number, or a (code, year) given twice.
///
/// # Errors
/// [`ReferenceError::Population`].
pub fn read_populations(reader: impl Read) -> Result<Vec<ChildPopulation>, ReferenceError> {
    let error = |line, reason| ReferenceError::Population { line, reason };
    let (mut csv, columns) = open_table(
        reader,
        &["code", "year", "population_0_17"],
        |line, reason| ReferenceError::Population { line, reason },
    )?;
    let mut seen = BTreeSet::new();
    let mut rows = Vec::new();
    for record in csv.records() {
        let record = record.map_err(|err| {
            error(
                err.position().map_or(0, csv::Position::line),
                err.to_string(),
            )
        })?;
        let line = record.position().map_or(0, csv::Position::line);
        let field = |index: usize| record.get(columns[index]).unwrap_or_default();
        let code = GssCode::parse(field(0)).map_err(|err| error(line, err.to_string()))?;
        let year: i16 = field(1)
            .parse()
            .ok()
            .filter(|year| (1990..=2100).contains(year))
            .ok_or_else(|| {
                error(
                    line,
                    format!("year `{}` is not a year from 1990 to 2100", field(1)),
                )
            })?;
        let population_0_17: u32 = field(2).replace(',', "").parse().map_err(|_| {
            error(
                line,
                format!(
                    "population_0_17 `{}` is not a whole number of children",
                    field(2)
                ),
            )
        })?;
        if !seen.insert((code.clone(), year)) {
            return Err(error(line, format!("{code} {year} is given twice")));
        }
        rows.push(ChildPopulation {
            code,
            year,
            population_0_17,
        });
    }
    Ok(rows)
}

/// Children aged 0-17 per 2011 LSOA in England (mid-2011: 11.3 million children over 32,844
/// LSOAs): the approximation a small-area table without populations stands for.
pub const CHILDREN_PER_LSOA: u32 = 344;
/// The year of the approximation's figures.
const APPROXIMATION_YEAR: i16 = 2011;
/// What figures built on [`CHILDREN_PER_LSOA`] say they are, wherever they are shown.
pub const APPROXIMATION: &str = "approximation: 344 children aged 0-17 per 2011 LSOA \
    (England mid-2011), not an ONS estimate";

/// What reading a small-area population table found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmallAreaFile {
    /// The small areas, each at its reference point's resolution-9 cell.
    pub areas: Vec<SmallAreaPopulation>,
    /// True when the table has no `population_0_17` column: every area stands for
    /// [`CHILDREN_PER_LSOA`] children (LSOAs are drawn to hold similar populations), an
    /// approximation to be labelled as such.
    pub approximate: bool,
}

/// Reads small-area child populations, CSV or GeoJSON (told apart by the first character).
///
/// **CSV**: columns `code,lat,lon` (the area's reference point, WGS84) and
/// `population_0_17,year` (any order, more columns ignored), as ONS mid-year estimates by LSOA
/// or output area joined to their centroids are. **GeoJSON**: a FeatureCollection whose
/// features carry the same properties (`code`, and `population_0_17` with `year`, numbers or
/// text) and a Point (the reference point) or a Polygon or MultiPolygon (a boundary, placed at
/// a point inside it). Without population and year every area stands for
/// [`CHILDREN_PER_LSOA`] children of 2011 ([`SmallAreaFile::approximate`]); a file gives them
/// for every area or for none. Refuses the whole file on the first bad row or feature, naming
/// it: an empty code, a point off the globe, a count that is not a whole number, a year
/// outside 1990 to 2100, or a (code, year) given twice.
///
/// # Errors
/// [`ReferenceError::SmallArea`] (CSV), [`ReferenceError::Feature`] or
/// [`ReferenceError::NotFeatureCollection`] (GeoJSON).
pub fn read_small_area_populations(mut reader: impl Read) -> Result<SmallAreaFile, ReferenceError> {
    let mut text = Vec::new();
    reader
        .read_to_end(&mut text)
        .map_err(|err| ReferenceError::SmallArea {
            line: 0,
            reason: err.to_string(),
        })?;
    if text.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'{') {
        small_areas_from_geojson(&text)
    } else {
        small_areas_from_csv(text.as_slice())
    }
}

/// Small areas from a GeoJSON FeatureCollection ([`read_small_area_populations`]).
fn small_areas_from_geojson(text: &[u8]) -> Result<SmallAreaFile, ReferenceError> {
    use geo::InteriorPoint as _;
    let collection = match serde_json::from_slice::<GeoJson>(text) {
        Ok(GeoJson::FeatureCollection(collection)) => collection,
        Ok(_) => {
            return Err(ReferenceError::NotFeatureCollection(
                "the small areas must be a FeatureCollection".to_owned(),
            ));
        }
        Err(err) => return Err(ReferenceError::NotFeatureCollection(err.to_string())),
    };
    let mut areas = Vec::with_capacity(collection.features.len());
    let mut seen = BTreeSet::new();
    let mut approximate = None;
    for (index, feature) in collection.features.iter().enumerate() {
        let error = |code: Option<&str>, reason: String| ReferenceError::Feature {
            number: index + 1,
            code: code.map(str::to_owned),
            reason,
        };
        let property = |name: &str| -> Option<String> {
            match feature.property(name)? {
                serde_json::Value::String(text) => Some(text.trim().to_owned()),
                serde_json::Value::Number(number) => Some(number.to_string()),
                _ => None,
            }
        };
        let code = property("code")
            .filter(|code| !code.is_empty())
            .ok_or_else(|| error(None, "property `code` is missing or empty".to_owned()))?;
        let location = match feature
            .geometry
            .as_ref()
            .map(|geometry| geo::Geometry::<f64>::try_from(geometry.clone()))
        {
            Some(Ok(geo::Geometry::Point(point))) => Some(point),
            Some(Ok(geometry @ (geo::Geometry::Polygon(_) | geo::Geometry::MultiPolygon(_)))) => {
                geometry.interior_point()
            }
            _ => None,
        }
        .and_then(|point| LatLng::new(point.y(), point.x()).ok())
        .filter(|point| point.lat().abs() <= 90.0 && point.lng().abs() <= 180.0)
        .ok_or_else(|| {
            error(
                Some(&code),
                "the geometry is not a Point, Polygon or MultiPolygon on the globe".to_owned(),
            )
        })?;
        let figures = match (property("population_0_17"), property("year")) {
            (Some(population), Some(year)) => Some((population, year)),
            (None, None) => None,
            _ => {
                return Err(error(
                    Some(&code),
                    "give both `population_0_17` and `year`, or neither (an approximation)"
                        .to_owned(),
                ));
            }
        };
        if *approximate.get_or_insert(figures.is_none()) != figures.is_none() {
            return Err(error(
                Some(&code),
                "some features give `population_0_17` and `year` and others do not".to_owned(),
            ));
        }
        let (children, year) = figures_of(figures.as_ref().map(|(p, y)| (p.as_str(), y.as_str())))
            .map_err(|reason| error(Some(&code), reason))?;
        if !seen.insert((code.clone(), year)) {
            return Err(error(Some(&code), format!("{code} {year} is given twice")));
        }
        areas.push(SmallAreaPopulation {
            code,
            cell: u64::from(location.to_cell(Resolution::Nine)),
            year,
            children,
        });
    }
    Ok(SmallAreaFile {
        areas,
        approximate: approximate.unwrap_or(true),
    })
}

/// The children and year of a small area from its `population_0_17` and `year` texts, or the
/// approximation's without them.
fn figures_of(figures: Option<(&str, &str)>) -> Result<(u32, i16), String> {
    let Some((population, year)) = figures else {
        return Ok((CHILDREN_PER_LSOA, APPROXIMATION_YEAR));
    };
    let children = population
        .replace(',', "")
        .parse()
        .map_err(|_| format!("population_0_17 `{population}` is not a whole number of children"))?;
    let year = year
        .parse()
        .ok()
        .filter(|year| (1990..=2100).contains(year))
        .ok_or_else(|| format!("year `{year}` is not a year from 1990 to 2100"))?;
    Ok((children, year))
}

/// Small areas from CSV ([`read_small_area_populations`]).
fn small_areas_from_csv(reader: impl Read) -> Result<SmallAreaFile, ReferenceError> {
    let error = |line, reason| ReferenceError::SmallArea { line, reason };
    let (mut csv, columns) = open_table(reader, &["code", "lat", "lon"], |line, reason| {
        ReferenceError::SmallArea { line, reason }
    })?;
    let headers = csv
        .headers()
        .map_err(|err| error(1, err.to_string()))?
        .clone();
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let figures = match (column("population_0_17"), column("year")) {
        (Some(population), Some(year)) => Some((population, year)),
        (None, None) => None,
        _ => {
            return Err(error(
                1,
                "give both `population_0_17` and `year`, or neither (an approximation)".to_owned(),
            ));
        }
    };
    let mut seen = BTreeSet::new();
    let mut areas = Vec::new();
    for record in csv.records() {
        let record = record.map_err(|err| {
            error(
                err.position().map_or(0, csv::Position::line),
                err.to_string(),
            )
        })?;
        let line = record.position().map_or(0, csv::Position::line);
        let field = |index: usize| record.get(index).unwrap_or_default();
        let code = field(columns[0]);
        if code.is_empty() {
            return Err(error(line, "the code is empty".to_owned()));
        }
        let location = match (field(columns[1]).parse(), field(columns[2]).parse()) {
            (Ok(lat), Ok(lon)) => LatLng::new(lat, lon).ok(),
            _ => None,
        }
        .filter(|point| point.lat().abs() <= 90.0 && point.lng().abs() <= 180.0)
        .ok_or_else(|| {
            error(
                line,
                format!(
                    "`{}, {}` is not a latitude and longitude",
                    field(columns[1]),
                    field(columns[2])
                ),
            )
        })?;
        let (children, year) =
            figures_of(figures.map(|(population, year)| (field(population), field(year))))
                .map_err(|reason| error(line, reason))?;
        if !seen.insert((code.to_owned(), year)) {
            return Err(error(line, format!("{code} {year} is given twice")));
        }
        areas.push(SmallAreaPopulation {
            code: code.to_owned(),
            cell: u64::from(location.to_cell(Resolution::Nine)),
            year,
            children,
        });
    }
    Ok(SmallAreaFile {
        areas,
        approximate: figures.is_none(),
    })
}

fn code_suffix(code: Option<&String>) -> String {
    code.map(|code| format!(" ({code})")).unwrap_or_default()
}

/// Reads every feature of a boundary FeatureCollection, validating its properties and geometry
/// and computing its coverage. The document is parsed whole: generalised boundary files are a
/// few megabytes. Stops at the first bad feature: a partial import would leave the
/// country with holes.
///
/// # Errors
/// [`ReferenceError`] naming the first bad feature and why.
pub fn read_boundaries(
    reader: impl Read,
    fields: &BoundaryFields,
) -> Result<Vec<ReferenceArea>, ReferenceError> {
    let collection: FeatureCollection = match GeoJson::from_reader(reader) {
        Ok(GeoJson::FeatureCollection(collection)) => collection,
        Ok(_) => {
            return Err(ReferenceError::NotFeatureCollection(
                "the document is GeoJSON of another type".to_owned(),
            ));
        }
        Err(err) => return Err(ReferenceError::NotFeatureCollection(err.to_string())),
    };
    let mut seen = HashSet::new();
    let mut areas = Vec::new();
    for (index, feature) in collection.features.into_iter().enumerate() {
        let number = index + 1;
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
    let boundary = serde_json::to_value(&boundary)
        .map_err(|err| with_code(format!("the geometry cannot be written as JSON: {err}")))?;
    Ok(ReferenceArea {
        code,
        name,
        boundary,
        coverage,
    })
}

/// The polygons of a boundary as stored ([`ReferenceArea::boundary`]: a GeoJSON geometry).
///
/// # Errors
/// A message naming what is wrong with the geometry.
pub fn boundary_polygons(boundary: &serde_json::Value) -> Result<MultiPolygon, String> {
    let geometry = serde_json::from_value::<geojson::Geometry>(boundary.clone())
        .map_err(|err| format!("unreadable geometry: {err}"))?;
    to_multipolygon(&geometry)
}

/// Converts a GeoJSON Polygon or MultiPolygon (WGS84) into polygons, checking every ring.
///
/// # Errors
/// A message naming what is wrong with the geometry.
pub fn to_multipolygon(geometry: &geojson::Geometry) -> Result<MultiPolygon, String> {
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
            if let Some(coord) = ring
                .coords()
                .find(|c| !((-180.0..=180.0).contains(&c.x) && (-90.0..=90.0).contains(&c.y)))
            {
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

/// Computes the coverage of a boundary: cells at the finest resolution that any part of it
/// touches, which of them lie wholly inside it, and their parents. A boundary smaller than a cell
/// is covered by the cell holding it.
///
/// # Errors
/// A message when h3o finds the geometry invalid (for example a ring that is not closed).
pub fn cover(polygons: &MultiPolygon) -> Result<Coverage, String> {
    let tile = |mode| {
        let mut tiler = TilerBuilder::new(Resolution::Nine)
            .containment_mode(mode)
            .build();
        tiler
            .add_batch(polygons.clone())
            .map_err(|err| format!("invalid geometry: {err}"))?;
        Ok::<Vec<CellIndex>, String>(tiler.into_coverage().collect())
    };
    let mut cells = tile(ContainmentMode::Covers)?;
    if cells.is_empty() {
        let centroid = polygons
            .centroid()
            .ok_or_else(|| "the geometry has no area".to_owned())?;
        let point = LatLng::new(centroid.y(), centroid.x())
            .map_err(|err| format!("invalid centroid: {err}"))?;
        cells.push(point.to_cell(Resolution::Nine));
    }
    Ok(Coverage::from_finest_cells(
        cells,
        tile(ContainmentMode::ContainsBoundary)?,
    ))
}

/// Reads a `code,neighbour_code` table (header required, extra columns ignored). Every code must
/// be a GSS code and no area may neighbour itself; duplicate rows are merged.
///
/// # Errors
/// [`ReferenceError::Neighbour`] naming the first bad line.
pub fn read_neighbours(reader: impl Read) -> Result<Vec<(GssCode, GssCode)>, ReferenceError> {
    read_pairs(reader, "neighbour", |line, reason| {
        ReferenceError::Neighbour { line, reason }
    })
}

/// Reads a comparator table (a partnership's statistical neighbours, say): CSV with columns
/// `code,comparator_code`, under the same rules as [`read_neighbours`].
///
/// # Errors
/// [`ReferenceError::Comparator`].
pub fn read_comparators(reader: impl Read) -> Result<Vec<(GssCode, GssCode)>, ReferenceError> {
    read_pairs(reader, "comparator", |line, reason| {
        ReferenceError::Comparator { line, reason }
    })
}

/// Reads a regional group table: CSV with columns `group,code` (a group's name, 1 to 100
/// characters, and one member's GSS code per row; header required, extra columns ignored,
/// duplicate rows merged).
///
/// # Errors
/// [`ReferenceError::RegionalGroup`] naming the first bad line.
pub fn read_regional_groups(reader: impl Read) -> Result<Vec<(String, GssCode)>, ReferenceError> {
    let error = |line, reason| ReferenceError::RegionalGroup { line, reason };
    let (mut csv, columns) = open_table(reader, &["group", "code"], error)?;
    let mut members = BTreeSet::new();
    for record in csv.records() {
        let record = record.map_err(|err| {
            error(
                err.position().map_or(0, csv::Position::line),
                err.to_string(),
            )
        })?;
        let line = record.position().map_or(0, csv::Position::line);
        let name = record.get(columns[0]).unwrap_or_default().trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(error(
                line,
                "a group's name has 1 to 100 characters".to_owned(),
            ));
        }
        let code = GssCode::parse(record.get(columns[1]).unwrap_or_default())
            .map_err(|err| error(line, err.to_string()))?;
        members.insert((name.to_owned(), code));
    }
    Ok(members.into_iter().collect())
}

/// The most places one import takes: every populated place of the United Kingdom in GeoNames
/// is fewer than 60,000.
pub const MAX_PLACES: usize = 200_000;

/// Reads a place table: CSV with columns `name,lat,lon,population,utla_code` (a town or
/// village, its point in WGS84 degrees, its population, blank when unknown, and the upper-tier
/// local authority holding it), as `data/reference/england_places.csv` (GeoNames); header
/// required, extra columns ignored, duplicate rows merged.
///
/// # Errors
/// [`ReferenceError::Place`] naming the first bad line, or when the table holds more than
/// [`MAX_PLACES`] places.
pub fn read_places(reader: impl Read) -> Result<Vec<Place>, ReferenceError> {
    let error = |line, reason| ReferenceError::Place { line, reason };
    let (mut csv, columns) = open_table(
        reader,
        &["name", "lat", "lon", "population", "utla_code"],
        error,
    )?;
    let mut places: Vec<Place> = Vec::new();
    let mut seen = HashSet::new();
    for record in csv.records() {
        let record = record.map_err(|err| {
            error(
                err.position().map_or(0, csv::Position::line),
                err.to_string(),
            )
        })?;
        let line = record.position().map_or(0, csv::Position::line);
        if places.len() == MAX_PLACES {
            return Err(error(
                line,
                format!("a place table holds at most {MAX_PLACES} places"),
            ));
        }
        let field = |index: usize| record.get(columns[index]).unwrap_or_default();
        let name = field(0);
        if name.is_empty() || name.chars().count() > 200 {
            return Err(error(
                line,
                "a place's name has 1 to 200 characters".to_owned(),
            ));
        }
        let degrees = |index: usize, limit: f64| {
            field(index)
                .parse::<f64>()
                .ok()
                .filter(|value| value.is_finite() && value.abs() <= limit)
                .ok_or_else(|| {
                    error(
                        line,
                        format!(
                            "`{}` is not a {} in degrees (WGS84)",
                            field(index),
                            if index == 1 { "latitude" } else { "longitude" }
                        ),
                    )
                })
        };
        let (lat, lon) = (degrees(1, 90.0)?, degrees(2, 180.0)?);
        let population = match field(3) {
            "" => 0,
            text => text.parse::<u64>().map_err(|_| {
                error(
                    line,
                    format!("`{text}` is not a population (a whole number, or blank)"),
                )
            })?,
        };
        let authority = GssCode::parse(field(4)).map_err(|err| error(line, err.to_string()))?;
        if !seen.insert((
            name.to_owned(),
            lat.to_bits(),
            lon.to_bits(),
            authority.clone(),
        )) {
            continue;
        }
        places.push(Place {
            name: name.to_owned(),
            lat,
            lon,
            population,
            authority,
        });
    }
    Ok(places)
}

/// Reads pairs of GSS codes from the columns `code` and `<role>_code`.
fn read_pairs(
    reader: impl Read,
    role: &str,
    error: fn(u64, String) -> ReferenceError,
) -> Result<Vec<(GssCode, GssCode)>, ReferenceError> {
    let second = format!("{role}_code");
    let (mut csv, columns) = open_table(reader, &["code", second.as_str()], error)?;
    let (code_column, other_column) = (columns[0], columns[1]);
    let mut pairs = BTreeSet::new();
    for record in csv.records() {
        let record = record.map_err(|err| {
            error(
                err.position().map_or(0, csv::Position::line),
                err.to_string(),
            )
        })?;
        let line = record.position().map_or(0, csv::Position::line);
        let field = |index: usize| {
            GssCode::parse(record.get(index).unwrap_or_default())
                .map_err(|err| error(line, err.to_string()))
        };
        let (code, other) = (field(code_column)?, field(other_column)?);
        if code == other {
            return Err(error(line, format!("{code} is listed as its own {role}")));
        }
        pairs.insert((code, other));
    }
    Ok(pairs.into_iter().collect())
}

/// Opens a CSV table with a header and finds the named columns (ignoring case), or names the
/// first that is missing as an error on line 1.
fn open_table<R: Read>(
    reader: R,
    names: &[&str],
    error: fn(u64, String) -> ReferenceError,
) -> Result<(csv::Reader<R>, Vec<usize>), ReferenceError> {
    let mut csv = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(reader);
    let headers = csv
        .headers()
        .map_err(|err| error(1, err.to_string()))?
        .clone();
    let columns = names
        .iter()
        .map(|name| {
            headers
                .iter()
                .position(|header| header.eq_ignore_ascii_case(name))
                .ok_or_else(|| error(1, format!("the header has no `{name}` column")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((csv, columns))
}

/// What reading a postcode directory found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PostcodeFile {
    /// Postcodes with a grid reference.
    pub postcodes: Vec<PostcodeCell>,
    /// Rows without a grid reference (ONSPD leaves some blank), skipped.
    pub without_grid_reference: u64,
}

/// Reads ONS Postcode Directory rows (`pcd,oseast1m,osnrth1m,...`, and `utla` when present;
/// other columns ignored), converting each British National Grid reference to its resolution-9
/// cell.
///
/// # Errors
/// [`ReferenceError::Postcode`] naming the line of a missing column, a malformed postcode or a
/// malformed grid reference.
pub fn read_postcodes(reader: impl Read) -> Result<PostcodeFile, ReferenceError> {
    let (mut csv, columns) =
        open_table(reader, &["pcd", "oseast1m", "osnrth1m"], |line, reason| {
            ReferenceError::Postcode { line, reason }
        })?;
    let (pcd, easting, northing) = (columns[0], columns[1], columns[2]);
    let authority_column = csv
        .headers()
        .ok()
        .and_then(|headers| headers.iter().position(|h| h.eq_ignore_ascii_case("utla")));
    let mut file = PostcodeFile::default();
    for record in csv.records() {
        let record = record.map_err(|err| ReferenceError::Postcode {
            line: err.position().map_or(0, csv::Position::line),
            reason: err.to_string(),
        })?;
        let line = record.position().map_or(0, csv::Position::line);
        let error = |reason: String| ReferenceError::Postcode { line, reason };
        let postcode = crate::extract::normalise_postcode(record.get(pcd).unwrap_or_default());
        if !(5..=7).contains(&postcode.len())
            || !postcode.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(error(format!("`{postcode}` is not a postcode")));
        }
        let (east, north) = (
            record.get(easting).unwrap_or_default(),
            record.get(northing).unwrap_or_default(),
        );
        if east.is_empty() || north.is_empty() {
            file.without_grid_reference += 1;
            continue;
        }
        let (Ok(east), Ok(north)) = (east.parse::<f64>(), north.parse::<f64>()) else {
            return Err(error("the grid reference is not a number".to_owned()));
        };
        let (lat, lon) = crate::bng::to_wgs84(east, north);
        let cell = LatLng::new(lat, lon)
            .map_err(|err| error(format!("the grid reference is not usable: {err}")))?;
        let authority = match authority_column.and_then(|column| record.get(column)) {
            None | Some("") => None,
            Some(code) => Some(GssCode::parse(code).map_err(|err| error(format!("utla: {err}")))?),
        };
        file.postcodes.push(PostcodeCell {
            postcode,
            cell: u64::from(cell.to_cell(Resolution::Nine)),
            authority,
        });
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use atlas_domain::StoredResolution;
    use proptest::prelude::*;

    fn square(code: &str, name: &str, west: f64, south: f64, size: f64) -> String {
        let (east, north) = (west + size, south + size);
        format!(
            r#"{{"type":"Feature","properties":{{"code":"{code}","name":"{name}"}},"geometry":{{"type":"Polygon","coordinates":[[[{west},{south}],[{east},{south}],[{east},{north}],[{west},{north}],[{west},{south}]]]}}}}"#
        )
    }

    fn collection(features: &[String]) -> String {
        format!(
            r#"{{"type":"FeatureCollection","features":[{}]}}"#,
            features.join(",")
        )
    }

    fn read(text: &str) -> Result<Vec<ReferenceArea>, ReferenceError> {
        read_boundaries(text.as_bytes(), &BoundaryFields::default())
    }

    #[test]
    fn reads_areas_with_coverage_at_every_resolution() {
        let areas = read(&collection(&[
            square("E06000009", "Blackpool", -3.06, 53.78, 0.04),
            square("e10000017", "Lancashire", -2.70, 53.90, 0.05),
        ]))
        .unwrap();
        assert_eq!(areas.len(), 2);
        assert_eq!(areas[1].code.as_str(), "E10000017");
        assert_eq!(areas[1].name, "Lancashire");
        let coverage = &areas[0].coverage;
        let finest = coverage.cells(StoredResolution::FINEST);
        // About 0.04° x 0.04° at 54° N is about 11.7 km², and a resolution-9 cell about 0.105 km²:
        // about 110 cells inside, and the ring of cells the edges cross.
        assert!((130..180).contains(&finest.len()), "{} cells", finest.len());
        for resolution in StoredResolution::all() {
            let cells = coverage.cells(resolution);
            assert!(!cells.is_empty());
            assert!(
                cells.windows(2).all(|pair| pair[0] < pair[1]),
                "sorted and distinct"
            );
            for cell in finest {
                let parent = CellIndex::try_from(*cell)
                    .unwrap()
                    .parent(resolution.h3())
                    .unwrap();
                assert!(cells.binary_search(&u64::from(parent)).is_ok());
            }
        }
        assert_eq!(
            coverage.iter().count(),
            StoredResolution::all()
                .map(|r| coverage.cells(r).len())
                .sum::<usize>()
        );
    }

    #[test]
    fn a_missing_property_names_the_feature() {
        let text = collection(&[
            square("E06000009", "Blackpool", -3.06, 53.78, 0.04),
            r#"{"type":"Feature","properties":{"code":"E10000017"},"geometry":{"type":"Polygon","coordinates":[[[0,50],[1,50],[1,51],[0,50]]]}}"#.to_owned(),
        ]);
        let err = read(&text).unwrap_err().to_string();
        assert_eq!(err, "feature 2 (E10000017): property `name` is missing");
    }

    #[test]
    fn configurable_field_names_are_used() {
        let text = collection(&[square("E06000009", "Blackpool", -3.06, 53.78, 0.04)])
            .replace("\"code\"", "\"UTLA23CD\"")
            .replace("\"name\"", "\"UTLA23NM\"");
        assert!(read(&text).is_err());
        let fields = BoundaryFields {
            code: "UTLA23CD".to_owned(),
            name: "UTLA23NM".to_owned(),
        };
        assert_eq!(
            read_boundaries(text.as_bytes(), &fields).unwrap()[0].name,
            "Blackpool"
        );
    }

    #[test]
    fn bad_geometries_are_refused_with_their_feature_number() {
        let cases = [
            (
                r#"{"type":"Feature","properties":{"code":"E06000009","name":"B"},"geometry":{"type":"Point","coordinates":[-3.0,53.8]}}"#,
                "feature 1 (E06000009): geometry is a Point, expected Polygon or MultiPolygon",
            ),
            (
                r#"{"type":"Feature","properties":{"code":"E06000009","name":"B"},"geometry":null}"#,
                "feature 1 (E06000009): the feature has no geometry",
            ),
            (
                r#"{"type":"Feature","properties":{"code":"E06000009","name":"B"},"geometry":{"type":"Polygon","coordinates":[[[0,95],[1,95],[1,96],[0,95]]]}}"#,
                "feature 1 (E06000009): position (0, 95) is not a WGS84 longitude and latitude",
            ),
            (
                r#"{"type":"Feature","properties":{"code":"E06000009","name":"B"},"geometry":{"type":"Polygon","coordinates":[[[0,50],[1,50],[0,50]]]}}"#,
                "feature 1 (E06000009): a ring has fewer than four positions",
            ),
            (
                r#"{"type":"Feature","properties":{"code":"Blackpool","name":"B"},"geometry":null}"#,
                "feature 1: `Blackpool` is not a GSS code: expected a letter and eight digits, such as E10000017",
            ),
            (
                r#"{"type":"Feature","properties":{"code":17,"name":"B"},"geometry":null}"#,
                "feature 1: property `code` is not a non-empty string",
            ),
        ];
        for (feature, expected) in cases {
            let err = read(&collection(&[feature.to_owned()]))
                .unwrap_err()
                .to_string();
            assert_eq!(err, expected);
        }
    }

    #[test]
    fn duplicate_codes_and_empty_files_are_refused() {
        let square = square("E06000009", "Blackpool", -3.06, 53.78, 0.04);
        let err = read(&collection(&[square.clone(), square]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "feature 2 (E06000009): the same code appears in an earlier feature"
        );
        let empty = read(&collection(&[])).unwrap_err().to_string();
        assert!(empty.contains("no features"), "{empty}");
        assert!(read("{ not json").is_err());
        assert!(read(r#"{"type":"Point","coordinates":[0,0]}"#).is_err());
    }

    #[test]
    fn a_boundary_smaller_than_a_cell_is_covered_by_the_cell_of_its_centroid() {
        let areas = read(&collection(&[square(
            "E06000053",
            "Tiny",
            -6.3,
            49.9,
            0.0001,
        )]))
        .unwrap();
        assert_eq!(areas[0].coverage.cells(StoredResolution::FINEST).len(), 1);
    }

    #[test]
    fn england_tiles_into_coverages_sharing_only_border_cells() {
        let text = include_str!("../../../data/reference/utla_boundaries_england.geojson");
        let areas = read(text).unwrap();
        assert_eq!(areas.len(), 153);
        let mut owners: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
        let mut whole = HashSet::new();
        for area in &areas {
            let cells = area.coverage.cells(StoredResolution::FINEST);
            assert!(!cells.is_empty(), "{} has no cells", area.code);
            for cell in cells {
                *owners.entry(*cell).or_default() += 1;
                if area.coverage.is_whole(*cell) {
                    assert!(whole.insert(*cell), "a whole cell belongs to two areas");
                }
            }
        }
        assert!(
            whole.iter().all(|cell| owners[cell] == 1),
            "a cell wholly inside one area is in another's coverage"
        );
        let shared = owners.values().filter(|count| **count > 1).count();
        let total: usize = owners.values().sum();
        // England is about 130,000 km²; resolution-9 cells near 53° N are about 0.094 km²; the
        // cells along borders and coasts come on top.
        assert!((1_300_000..1_700_000).contains(&total), "{total} cells");
        assert!(
            shared > 10_000 && shared < total / 10,
            "{shared} shared cells"
        );
    }

    #[test]
    fn small_area_populations_are_read_with_their_figures_or_as_an_approximation() {
        let file = read_small_area_populations(
            "code,lat,lon,population_0_17,year\nE01012681,53.8175,-3.0357,\"1,204\",2022\n"
                .as_bytes(),
        )
        .unwrap();
        assert!(!file.approximate);
        assert_eq!(file.areas[0].children, 1_204);
        assert_eq!(file.areas[0].year, 2022);
        assert_eq!(
            file.areas[0].cell,
            u64::from(
                LatLng::new(53.8175, -3.0357)
                    .unwrap()
                    .to_cell(Resolution::Nine)
            )
        );
        let approximate = read_small_area_populations(
            "code,name,lat,lon\nE01012681,Blackpool 001A,53.8175,-3.0357\n".as_bytes(),
        )
        .unwrap();
        assert!(approximate.approximate);
        assert_eq!(approximate.areas[0].children, CHILDREN_PER_LSOA);
    }

    #[test]
    fn small_areas_are_read_from_geojson_points_and_boundaries() {
        let text = r#"{"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"code": "E01012681", "population_0_17": 310, "year": "2022"},
             "geometry": {"type": "Point", "coordinates": [-3.0357, 53.8175]}},
            {"type": "Feature", "properties": {"code": "E01012682", "population_0_17": "290", "year": 2022},
             "geometry": {"type": "Polygon", "coordinates": [[[-3.05, 53.80], [-3.03, 53.80], [-3.03, 53.81], [-3.05, 53.81], [-3.05, 53.80]]]}}
        ]}"#;
        let file = read_small_area_populations(text.as_bytes()).unwrap();
        assert!(!file.approximate);
        assert_eq!(file.areas.len(), 2);
        assert_eq!((file.areas[0].children, file.areas[0].year), (310, 2022));
        let inside = LatLng::from(CellIndex::try_from(file.areas[1].cell).unwrap());
        assert!((53.80..=53.81).contains(&inside.lat()) && (-3.05..=-3.03).contains(&inside.lng()));
        let mixed = text.replace(r#", "population_0_17": 310, "year": "2022""#, "");
        let refused = read_small_area_populations(mixed.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("feature 2") && refused.contains("others do not"),
            "{refused}"
        );
    }

    #[test]
    fn the_shipped_places_are_read_and_bad_rows_refused_naming_the_line() {
        let shipped = include_str!("../../../data/reference/england_places.csv");
        let places = read_places(shipped.as_bytes()).unwrap();
        assert_eq!(places.len(), 3314);
        let burnley = places.iter().find(|place| place.name == "Burnley").unwrap();
        assert_eq!(burnley.authority.as_str(), "E10000017");
        assert!(burnley.population > 70_000);
        let refused = |text: &str| read_places(text.as_bytes()).unwrap_err().to_string();
        assert!(refused("name,lat,lon\n").contains("`population`"));
        let header = "name,lat,lon,population,utla_code\n";
        assert!(refused(&format!("{header}Burnley,95,-2.2,1,E10000017\n")).contains("line 2"));
        assert!(refused(&format!("{header}Burnley,53.8,west,1,E10000017\n")).contains("longitude"));
        assert!(refused(&format!("{header},53.8,-2.2,1,E10000017\n")).contains("1 to 200"));
        assert!(
            refused(&format!("{header}Burnley,53.8,-2.2,many,E10000017\n")).contains("population")
        );
        assert!(refused(&format!("{header}Burnley,53.8,-2.2,1,Lancs\n")).contains("line 2"));
        let twice = read_places(
            format!("{header}Burnley,53.8,-2.2,,E10000017\nBurnley,53.8,-2.2,,E10000017\n")
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(twice.len(), 1);
        assert_eq!(twice[0].population, 0);
    }

    #[test]
    fn unusable_small_area_rows_are_refused_naming_the_line() {
        let refused = |text: &str| {
            read_small_area_populations(text.as_bytes())
                .unwrap_err()
                .to_string()
        };
        assert!(refused("code,lat\n").contains("`lon`"));
        assert!(refused("code,lat,lon,year\n").contains("or neither"));
        let header = "code,lat,lon,population_0_17,year\n";
        assert!(refused(&format!("{header}E01,91,0,5,2022\n")).contains("line 2"));
        assert!(refused(&format!("{header}E01,53,-3,many,2022\n")).contains("whole number"));
        assert!(refused(&format!("{header}E01,53,-3,5,1850\n")).contains("1990 to 2100"));
        assert!(refused(&format!("{header},53,-3,5,2022\n")).contains("empty"));
        assert!(
            refused(&format!("{header}E01,53,-3,5,2022\nE01,53,-3,6,2022\n"))
                .contains("line 3: E01 2022 is given twice")
        );
    }

    #[test]
    fn the_postcode_directory_sample_is_read_into_cells() {
        let sample = include_str!("../../../data/reference/onspd_sample_lancashire_cluster.csv");
        let file = read_postcodes(sample.as_bytes()).unwrap();
        assert_eq!(
            file.postcodes.len() as u64 + file.without_grid_reference,
            60_770
        );
        assert!(file.postcodes.len() > 55_000);
        let blackpool = file.postcodes.iter().find(|p| p.postcode == "FY11AA");
        assert!(
            blackpool.is_some_and(
                |p| CellIndex::try_from(p.cell).unwrap().resolution() == Resolution::Nine
            )
        );
        let err = read_postcodes("pcd,oseast1m\nFY1 1AA,1\n".as_bytes())
            .unwrap_err()
            .to_string();
        assert_eq!(err, "postcodes line 1: the header has no `osnrth1m` column");
        let err = read_postcodes("pcd,oseast1m,osnrth1m\nFY1 1AA,x,1\n".as_bytes())
            .unwrap_err()
            .to_string();
        assert_eq!(err, "postcodes line 2: the grid reference is not a number");
    }

    #[test]
    fn neighbours_are_read_validated_and_deduplicated() {
        let pairs = read_neighbours(
            "code,neighbour_code\nE06000009,E10000017\nE10000017,E06000009\nE06000009,E10000017\n"
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(pairs.len(), 2);
        let err = read_neighbours(
            "code,neighbour_code\nE06000009,E10000017\nE06000009,E06000009\n".as_bytes(),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "neighbours line 3: E06000009 is listed as its own neighbour"
        );
        let err = read_neighbours("code,neighbour_code\nE06000009,nope\n".as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("neighbours line 2: `nope` is not a GSS code"),
            "{err}"
        );
        let err = read_neighbours("code,other\nE06000009,E10000017\n".as_bytes())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "neighbours line 1: the header has no `neighbour_code` column"
        );
        let err = read_neighbours("code,neighbour_code\nE06000009\n".as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("neighbours line 2:"), "{err}");
    }

    #[test]
    fn regional_groups_are_read_validated_and_deduplicated() {
        let members = read_regional_groups(
            "group,code\nPan-Lancashire,E10000017\nPan-Lancashire,E06000009\nPan-Lancashire,E10000017\n"
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(members.len(), 2);
        assert_eq!(members[0].0, "Pan-Lancashire");
        let err = read_regional_groups("group,code\n,E10000017\n".as_bytes())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "regional groups line 2: a group's name has 1 to 100 characters"
        );
        let err = read_regional_groups("group,code\nNorth West,nope\n".as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("regional groups line 2: `nope` is not a GSS code"),
            "{err}"
        );
        let err = read_regional_groups("name,code\nNorth West,E10000017\n".as_bytes())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "regional groups line 1: the header has no `group` column"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn every_point_inside_a_boundary_lies_in_a_covered_cell(
            west in -5.0..1.0_f64,
            south in 50.0..55.0_f64,
            size in 0.005..0.05_f64,
            points in proptest::collection::vec((0.0..1.0_f64, 0.0..1.0_f64), 50),
        ) {
            let areas = read(&collection(&[square("E06000001", "Square", west, south, size)])).unwrap();
            let coverage = &areas[0].coverage;
            let finest = coverage.cells(StoredResolution::FINEST);
            for (x, y) in points {
                let cell = LatLng::new(south + y * size, west + x * size).unwrap().to_cell(Resolution::Nine);
                prop_assert!(finest.binary_search(&u64::from(cell)).is_ok());
            }
            for cell in finest.iter().filter(|cell| coverage.is_whole(**cell)) {
                for vertex in CellIndex::try_from(*cell).unwrap().boundary().iter() {
                    prop_assert!((west..=west + size).contains(&vertex.lng()));
                    prop_assert!((south..=south + size).contains(&vertex.lat()));
                }
            }
        }
    }

    #[test]
    fn child_populations_are_read_and_bad_rows_named() {
        let rows = read_populations(
            "year,code,population_0_17,notes\n2024,E06000009,\"29,512\",ons\n2023,E06000009,29400,\n"
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].population_0_17, 29_512);
        assert_eq!(rows[1].year, 2023);
        for (text, says) in [
            ("code,year\nE06000009,2024\n", "population_0_17"),
            (
                "code,year,population_0_17\nE06000009,1850,10\n",
                "line 2: year `1850`",
            ),
            (
                "code,year,population_0_17\nE06000009,2024,-3\n",
                "not a whole number",
            ),
            ("code,year,population_0_17\nBLACKPOOL,2024,3\n", "line 2"),
            (
                "code,year,population_0_17\nE06000009,2024,3\nE06000009,2024,4\n",
                "line 3: E06000009 2024 is given twice",
            ),
        ] {
            let err = read_populations(text.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(says), "{text:?}: {err}");
        }
    }
}
