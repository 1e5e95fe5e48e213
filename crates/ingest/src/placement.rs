//! Placing a record in a partnership by where it really is, before its location is coarsened.
//!
//! A partnership's coverage holds every resolution-9 cell its boundary touches
//! ([`crate::reference::cover`]), so a cell on a border can belong to two partnerships. The cell
//! therefore cannot decide which partnership a record belongs to; the record's own position can:
//!
//! - a point inside a boundary belongs to that partnership (cells wholly inside one boundary are
//!   decided without any geometry);
//! - a point inside no imported boundary (the sea beyond a coastline clipped to high water, a
//!   harbour, a pier) belongs to the nearest boundary within [`SEA_MARGIN_METRES`], and is moved
//!   onto it;
//! - a postcode belongs to the authority the Postcode Directory gives it, whichever side of a
//!   generalised boundary its grid reference falls.
//!
//! The record is then stored under a cell of its partnership's coverage: its own cell, or the
//! nearest covered cell within [`SNAP_RINGS`] rings when a generalised boundary leaves its cell
//! outside (a postcode whose grid reference lies just across the line, say).
//!
//! The coverage is read a tile at a time ([`Coverage`], tiles of [`TILE_RESOLUTION`]) as records
//! reach it, so an agency serving every partnership in England reads the cells near its records,
//! not the country's.

use std::cell::RefCell;
use std::collections::HashMap;

use geo::{BoundingRect, ClosestPoint, Contains, Coord, MapCoords, MultiPolygon, Point, Rect};
use h3o::{CellIndex, LatLng, Resolution};

/// How far outside every boundary a point may lie and still belong to the nearest one, in metres
/// (approximately: distances use a flat projection centred on each area, within 8 % across
/// England). Boundaries clipped to the coastline and generalised to about 200 m leave promenades,
/// harbours and piers just outside.
pub const SEA_MARGIN_METRES: f64 = 1_000.0;

/// How many rings of neighbouring cells are searched for a covered cell of the record's own
/// partnership when its cell lies outside that partnership's coverage (about 2 km at
/// resolution 9).
pub const SNAP_RINGS: u32 = 6;

/// The resolution of the tiles coverage is read by: about 36 km², 343 resolution-9 cells.
pub const TILE_RESOLUTION: Resolution = Resolution::Six;

/// Metres per degree of latitude, and of longitude at the equator.
const METRES_PER_DEGREE: f64 = 111_320.0;

/// Other partnerships' boundaries are kept when their boxes come this close to a served one's
/// (0.05° is 3 to 5.5 km in England, well beyond the sea margin).
const NEARBY_DEGREES: f64 = 0.05;

/// Where a row says an event happened, before it is placed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Location {
    /// A position: a latitude and longitude, a grid reference, or the centre of a given H3 cell.
    Point(LatLng),
    /// A postcode from the imported directory.
    Postcode(PostcodePlace),
}

/// A postcode's resolution-9 cell and, when the directory says, the partnership it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostcodePlace {
    /// The cell of the postcode's grid reference.
    pub cell: CellIndex,
    /// The postcode's own partnership, as an index into [`Territory::codes`].
    pub area: Option<usize>,
}

/// A record placed: its partnership (an index into [`Territory::codes`]) and the covered cell it
/// is stored under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    /// Index of the partnership in [`Territory::codes`].
    pub area: usize,
    /// A resolution-9 cell of that partnership's coverage.
    pub cell: CellIndex,
}

/// Why a record could not be placed in a partnership the agency serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unplaced {
    /// The location is in another partnership's area, or in none and far from every boundary.
    #[error("outside the area of every partnership your agency serves")]
    Outside,
    /// The location belongs to a served partnership but lies too far from its coverage.
    #[error("more than about 2 km from the coverage of its partnership")]
    TooFar,
}

/// One resolution-9 cell of a served partnership's coverage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoveredCell {
    /// The cell.
    pub cell: u64,
    /// Index of the partnership in [`Territory::codes`].
    pub area: usize,
    /// Whether the cell lies wholly inside the boundary (no geometry needed to place in it).
    pub whole: bool,
}

/// A boundary, flattened into metres around its own centre so that containment is exact and
/// distances are close to true ones.
#[derive(Debug, Clone)]
struct Shape {
    polygons: MultiPolygon<f64>,
    /// The bounding box in the flat projection, metres.
    bounds: Rect<f64>,
    /// The bounding box in degrees.
    degrees: Rect<f64>,
    /// Metres per degree of longitude at the shape's middle latitude.
    x_scale: f64,
}

impl Shape {
    fn new(polygons: &MultiPolygon<f64>) -> Option<Self> {
        let degrees = polygons.bounding_rect()?;
        let middle = degrees.center().y;
        let x_scale = METRES_PER_DEGREE * middle.to_radians().cos();
        let polygons = polygons.map_coords(|c| Coord {
            x: c.x * x_scale,
            y: c.y * METRES_PER_DEGREE,
        });
        let bounds = polygons.bounding_rect()?;
        Some(Self {
            polygons,
            bounds,
            degrees,
            x_scale,
        })
    }

    fn project(&self, point: LatLng) -> Point<f64> {
        Point::new(point.lng() * self.x_scale, point.lat() * METRES_PER_DEGREE)
    }

    fn unproject(&self, point: Point<f64>) -> Option<LatLng> {
        LatLng::new(point.y() / METRES_PER_DEGREE, point.x() / self.x_scale).ok()
    }

    /// Whether the point lies within `margin` metres of the bounding box.
    fn near(&self, point: Point<f64>, margin: f64) -> bool {
        let (min, max) = (self.bounds.min(), self.bounds.max());
        point.x() >= min.x - margin
            && point.x() <= max.x + margin
            && point.y() >= min.y - margin
            && point.y() <= max.y + margin
    }

    fn contains(&self, point: LatLng) -> bool {
        let projected = self.project(point);
        self.near(projected, 0.0) && self.polygons.contains(&projected)
    }

    /// The nearest point of the boundary and its distance in metres, when within `margin`.
    fn nearest(&self, point: LatLng, margin: f64) -> Option<(f64, LatLng)> {
        let projected = self.project(point);
        if !self.near(projected, margin) {
            return None;
        }
        let closest = match self.polygons.closest_point(&projected) {
            geo::Closest::Intersection(found) | geo::Closest::SinglePoint(found) => found,
            geo::Closest::Indeterminate => return None,
        };
        let distance = (closest - projected).0.x.hypot((closest - projected).0.y);
        (distance <= margin).then(|| self.unproject(closest).map(|at| (distance, at)))?
    }
}

/// Where a territory reads its served partnerships' coverage, one tile at a time.
pub trait Coverage {
    /// Every resolution-9 cell of a served partnership's coverage inside `tile` (a cell at
    /// [`TILE_RESOLUTION`]). A source that cannot be read answers nothing and reports its
    /// failure its own way (the caller then abandons what it placed).
    fn tile(&mut self, tile: CellIndex) -> Vec<CoveredCell>;
}

/// A coverage held whole in memory, by tile.
#[derive(Debug, Clone, Default)]
pub struct FixedCoverage(HashMap<CellIndex, Vec<CoveredCell>>);

impl FromIterator<CoveredCell> for FixedCoverage {
    fn from_iter<I: IntoIterator<Item = CoveredCell>>(cells: I) -> Self {
        let mut tiles: HashMap<CellIndex, Vec<CoveredCell>> = HashMap::new();
        for covered in cells {
            if let Some(tile) = tile_of(covered.cell) {
                tiles.entry(tile).or_default().push(covered);
            }
        }
        Self(tiles)
    }
}

impl Coverage for FixedCoverage {
    fn tile(&mut self, tile: CellIndex) -> Vec<CoveredCell> {
        self.0.get(&tile).cloned().unwrap_or_default()
    }
}

/// The tile a resolution-9 cell lies in.
fn tile_of(cell: u64) -> Option<CellIndex> {
    CellIndex::try_from(cell).ok()?.parent(TILE_RESOLUTION)
}

/// The first and last resolution-9 cells of a tile, as 64-bit indexes: every resolution-9 cell
/// inside it lies between them, and no other does (a cell's index orders its digits from the
/// coarsest resolution down).
#[must_use]
pub fn tile_span(tile: CellIndex) -> Option<(u64, u64)> {
    let last = tile.children_count(Resolution::Nine).checked_sub(1)?;
    Some((
        u64::from(tile.child_at(0, Resolution::Nine)?),
        u64::from(tile.child_at(last, Resolution::Nine)?),
    ))
}

/// The partnerships an agency serves, with every other boundary nearby: what placing a record
/// needs. Its coverage is read a tile at a time and kept for the territory's life.
pub struct Territory {
    codes: Vec<String>,
    coverage: RefCell<Box<dyn Coverage>>,
    /// The cells of the tiles read so far, and which tiles those are.
    cells: RefCell<HashMap<u64, Owners>>,
    tiles: RefCell<std::collections::HashSet<CellIndex>>,
    served: Vec<Option<Shape>>,
    others: Vec<Shape>,
}

/// The served partnerships covering one cell.
#[derive(Debug, Clone, Default)]
struct Owners {
    /// The partnership whose boundary holds the whole cell, if any.
    whole: Option<usize>,
    /// Every served partnership whose coverage holds the cell.
    areas: Vec<usize>,
}

impl Territory {
    /// Builds a territory from the served partnerships (`codes`, with their boundaries, `None`
    /// when a partnership has no stored boundary), where their covered cells are read
    /// ([`CoveredCell::area`] indexes `served`), and the boundaries of the partnerships the
    /// agency does not serve (only those near a served one matter).
    #[must_use]
    pub fn new(
        served: Vec<(String, Option<MultiPolygon<f64>>)>,
        coverage: impl Coverage + 'static,
        others: &[MultiPolygon<f64>],
    ) -> Self {
        let (codes, shapes): (Vec<String>, Vec<Option<Shape>>) = served
            .into_iter()
            .map(|(code, polygons)| (code, polygons.as_ref().and_then(Shape::new)))
            .unzip();
        let near_served = |shape: &Shape| {
            shapes
                .iter()
                .flatten()
                .any(|served| within(served.degrees, shape.degrees, NEARBY_DEGREES))
        };
        let others = others
            .iter()
            .filter_map(Shape::new)
            .filter(near_served)
            .collect();
        Self {
            codes,
            coverage: RefCell::new(Box::new(coverage)),
            cells: RefCell::new(HashMap::new()),
            tiles: RefCell::new(std::collections::HashSet::new()),
            served: shapes,
            others,
        }
    }

    /// What `read` makes of the served partnerships covering `cell`, its tile read first if
    /// need be.
    fn with_owners<R>(&self, cell: CellIndex, read: impl FnOnce(Option<&Owners>) -> R) -> R {
        if let Some(tile) = cell.parent(TILE_RESOLUTION)
            && self.tiles.borrow_mut().insert(tile)
        {
            let read = self.coverage.borrow_mut().tile(tile);
            let mut cells = self.cells.borrow_mut();
            for covered in read {
                if covered.area >= self.codes.len() {
                    continue;
                }
                let entry = cells.entry(covered.cell).or_default();
                if !entry.areas.contains(&covered.area) {
                    entry.areas.push(covered.area);
                }
                if covered.whole {
                    entry.whole = Some(covered.area);
                }
            }
        }
        read(self.cells.borrow().get(&u64::from(cell)))
    }

    /// How many tiles of coverage this territory has read.
    #[must_use]
    pub fn tiles_read(&self) -> usize {
        self.tiles.borrow().len()
    }

    /// The served partnerships' codes; [`Placed::area`] indexes into it.
    #[must_use]
    pub fn codes(&self) -> &[String] {
        &self.codes
    }

    /// Places a record's location, or says why it cannot be placed.
    ///
    /// # Errors
    /// [`Unplaced`] when the location is outside every served partnership.
    pub fn place(&self, location: Location) -> Result<Placed, Unplaced> {
        match location {
            Location::Postcode(PostcodePlace {
                cell,
                area: Some(area),
            }) if area < self.codes.len() => self.covered_cell(area, cell),
            Location::Postcode(PostcodePlace { cell, .. }) => self.place_point(LatLng::from(cell)),
            Location::Point(point) => self.place_point(point),
        }
    }

    fn place_point(&self, point: LatLng) -> Result<Placed, Unplaced> {
        let cell = point.to_cell(Resolution::Nine);
        if let Some(area) = self.with_owners(cell, |owners| owners.and_then(|owners| owners.whole))
        {
            return Ok(Placed { area, cell });
        }
        if let Some(area) = self
            .served
            .iter()
            .position(|shape| shape.as_ref().is_some_and(|shape| shape.contains(point)))
        {
            return self.covered_cell(area, cell);
        }
        // A boundary without geometry is decided by its coverage alone.
        if let Some(area) = self.with_owners(cell, |owners| {
            owners
                .into_iter()
                .flat_map(|owners| &owners.areas)
                .copied()
                .find(|&area| self.served[area].is_none())
        }) {
            return Ok(Placed { area, cell });
        }
        if self.others.iter().any(|shape| shape.contains(point)) {
            return Err(Unplaced::Outside);
        }
        // In no boundary at all: the nearest within the margin, if it is served.
        let nearest_served = self
            .served
            .iter()
            .enumerate()
            .filter_map(|(area, shape)| {
                let (distance, at) = shape.as_ref()?.nearest(point, SEA_MARGIN_METRES)?;
                Some((distance, area, at))
            })
            .min_by(|a, b| a.0.total_cmp(&b.0));
        let Some((distance, area, at)) = nearest_served else {
            return Err(Unplaced::Outside);
        };
        let nearer_other = self.others.iter().any(|shape| {
            shape
                .nearest(point, distance)
                .is_some_and(|(other, _)| other < distance)
        });
        if nearer_other {
            return Err(Unplaced::Outside);
        }
        self.covered_cell(area, at.to_cell(Resolution::Nine))
    }

    /// The cell itself when the partnership covers it, else the nearest covered cell within
    /// [`SNAP_RINGS`] rings (the lowest index among equally near ones).
    fn covered_cell(&self, area: usize, cell: CellIndex) -> Result<Placed, Unplaced> {
        let covers = |cell: CellIndex| {
            self.with_owners(cell, |owners| {
                owners.is_some_and(|owners| owners.areas.contains(&area))
            })
        };
        if covers(cell) {
            return Ok(Placed { area, cell });
        }
        (1..=SNAP_RINGS)
            .find_map(|ring| {
                cell.grid_ring_fast(ring)
                    .flatten()
                    .filter(|&candidate| covers(candidate))
                    .min()
            })
            .map(|cell| Placed { area, cell })
            .ok_or(Unplaced::TooFar)
    }
}

/// Whether two boxes, in degrees, come within `margin` degrees of each other.
fn within(a: Rect<f64>, b: Rect<f64>, margin: f64) -> bool {
    a.min().x <= b.max().x + margin
        && b.min().x <= a.max().x + margin
        && a.min().y <= b.max().y + margin
        && b.min().y <= a.max().y + margin
}

#[cfg(test)]
mod tests;
