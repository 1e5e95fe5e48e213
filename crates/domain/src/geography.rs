//! Reference geography as the store keeps it: an area's boundary and H3 coverage, and the
//! cell and authority of a postcode.

use std::collections::BTreeSet;

use h3o::CellIndex;

use crate::{GssCode, StoredResolution};

/// One area read from a boundary file, with its H3 coverage.
#[derive(Debug, Clone)]
pub struct ReferenceArea {
    /// The area's GSS code.
    pub code: GssCode,
    /// The area's name as published.
    pub name: String,
    /// The boundary as a GeoJSON geometry (Polygon or MultiPolygon, WGS84), as stored.
    pub boundary: serde_json::Value,
    /// The H3 cells covering the boundary.
    pub coverage: Coverage,
}

/// The H3 cells that cover an area at every stored resolution.
///
/// At the finest resolution a cell belongs to the area when any part of it lies inside the
/// boundary, so every point of the area is in a covered cell and a cell on a border belongs to
/// both areas (each counts only the records placed in it, `atlas_ingest::placement`). Cells lying
/// wholly inside the boundary are marked, so most records are placed without geometry. Each
/// coarser resolution holds the parents of the finest cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    /// Sorted, distinct cells per resolution, coarsest first.
    by_resolution: Vec<(StoredResolution, Vec<u64>)>,
    /// The finest cells wholly inside the boundary, sorted.
    whole: Vec<u64>,
}

impl Coverage {
    /// Builds a coverage from the cells at the finest resolution and those of them lying wholly
    /// inside the boundary.
    #[must_use]
    pub fn from_finest_cells(
        cells: impl IntoIterator<Item = CellIndex>,
        whole: impl IntoIterator<Item = CellIndex>,
    ) -> Self {
        let finest: BTreeSet<CellIndex> = cells.into_iter().collect();
        let by_resolution = StoredResolution::all()
            .map(|resolution| {
                let h3_resolution = resolution.h3();
                let cells: BTreeSet<u64> = finest
                    .iter()
                    .filter_map(|cell| cell.parent(h3_resolution))
                    .map(u64::from)
                    .collect();
                (resolution, cells.into_iter().collect())
            })
            .collect();
        let whole: BTreeSet<u64> = whole.into_iter().map(u64::from).collect();
        Self {
            by_resolution,
            whole: whole.into_iter().collect(),
        }
    }

    /// Whether a finest-resolution cell lies wholly inside the boundary.
    #[must_use]
    pub fn is_whole(&self, cell: u64) -> bool {
        self.whole.binary_search(&cell).is_ok()
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

/// A small area's children (an ONS LSOA or output area), placed at its reference point: the
/// weights that turn counts into excess risk (docs/analytics.md, "Population-adjusted hotspots").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmallAreaPopulation {
    /// The area's code (`E01000001`).
    pub code: String,
    /// The resolution-9 H3 cell of its reference point.
    pub cell: u64,
    /// The year of the estimate.
    pub year: i16,
    /// Children aged 0 to 17.
    pub children: u32,
}

/// A named place (a town or village) with its point: what names hot spot areas and labels maps.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Place {
    /// Its name.
    pub name: String,
    /// Latitude, degrees (WGS84).
    pub lat: f64,
    /// Longitude, degrees (WGS84).
    pub lon: f64,
    /// Its population as its source gives it (0 where unknown).
    pub population: u64,
    /// The upper-tier local authority (GSS code) holding it.
    pub authority: GssCode,
}

/// One postcode of the ONS Postcode Directory: the resolution-9 cell of its grid reference and
/// its upper-tier local authority when the directory gives one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostcodeCell {
    /// The postcode, upper case without spaces (`FY11AA`).
    pub postcode: String,
    /// The H3 cell at resolution 9.
    pub cell: u64,
    /// The postcode's upper-tier local authority (column `utla`), which decides its partnership
    /// whichever side of a generalised boundary its grid reference falls.
    pub authority: Option<GssCode>,
}
