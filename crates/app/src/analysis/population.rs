//! The children living in each cell of a partnership's study area: the expectation a
//! population-adjusted hotspot analysis sets counts against (docs/analytics.md,
//! "Population-adjusted hotspots").

use std::collections::HashMap;
use std::sync::Arc;

use atlas_analytics::rates::{SmallArea, allocate};
use atlas_domain::{GssCode, StoredResolution};
use atlas_store::{partnerships, populations};
use h3o::{CellIndex, LatLng};

use super::{Analyses, AnalysisError, blocking, cells};

/// Why an analysis asked to adjust for population is on raw counts.
pub(super) const UNADJUSTED: &str = "no small-area child populations are loaded for this \
    partnership (or, in a regional analysis, for one of the partnerships merged), so the \
    analysis is on raw counts: a hot spot may only be where many children live (import them \
    with `atlas reference import --small-area-population`)";

/// Where a study area's child populations come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PopulationBasis {
    /// The small areas (LSOAs or output areas) whose reference point lies in the coverage.
    pub small_areas: usize,
    /// The latest year of their figures.
    pub year: i16,
    /// Whether any figure is an approximation (the shipped LSOA reference points, each
    /// standing for the same number of children).
    pub approximate: bool,
    /// Where the figures come from, each source once.
    pub sources: Vec<String>,
    /// How the children are placed in cells.
    pub placement: Placement,
}

/// How a study area's children are placed in its cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// The approximation with the postcode directory loaded: the small areas' children in all,
    /// shared among cells in proportion to their postcodes (people live where postcodes are).
    Postcodes,
    /// Each small area's children shared among the cells nearest its point, in proportion to
    /// their postcodes.
    SmallAreasByPostcode,
    /// Each small area's children spread evenly over the cells nearest its point (no postcode
    /// directory loaded there).
    SmallAreasEvenly,
}

impl Placement {
    /// The name answers use.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Postcodes => "postcodes",
            Self::SmallAreasByPostcode => "small_areas_by_postcode",
            Self::SmallAreasEvenly => "small_areas_evenly",
        }
    }
}

/// Children per cell of a study area, and where the figures come from.
#[derive(Debug, Clone)]
pub struct CellPopulations {
    /// Where the figures come from.
    pub basis: PopulationBasis,
    /// Children per cell at the analysis resolution (cells where none live left out).
    pub children: HashMap<CellIndex, f64>,
}

impl CellPopulations {
    /// The children of each of `cells`, in order (0 where none live).
    #[must_use]
    pub fn of(&self, cells: &[CellIndex]) -> Vec<f64> {
        cells
            .iter()
            .map(|cell| self.children.get(cell).copied().unwrap_or(0.0))
            .collect()
    }
}

impl Analyses {
    /// The children living in each cell of `code`'s coverage at `resolution`: its small areas'
    /// populations shared among its resolution-9 cells ([`allocate`]) — or, when the figures
    /// are the approximation (every LSOA alike) and the postcode directory is loaded, their sum
    /// shared in proportion to postcodes, which says more about where people live than equal
    /// LSOAs do — summed into their parents. Official figures, where a partnership has any,
    /// replace the approximation; with none imported, the LSOAs shipped with Atlas stand in.
    /// `None` when no small area lies in the coverage (outside England). Kept between requests
    /// until the coverage or the population sources change (see the `kept` module).
    ///
    /// # Errors
    /// [`AnalysisError::Store`].
    pub async fn cell_populations(
        &self,
        code: &GssCode,
        resolution: StoredResolution,
    ) -> Result<Option<Arc<CellPopulations>>, AnalysisError> {
        let mut conn = self.database.connection().await?;
        // Read before the figures: figures newer than their versions are only worked out again.
        let Some(coverage) = partnerships::coverage_version(&mut conn, code).await? else {
            return Ok(None);
        };
        let version = (coverage, populations::sources_version(&mut conn).await?);
        if let Some(kept) = self.populations.fresh(code, resolution, &version) {
            return Ok(kept);
        }
        let areas = populations::small_areas_of(&mut conn, code).await?;
        let postcodes = populations::postcodes_per_cell(&mut conn, code).await?;
        drop(conn);
        let worked_out = self
            .place_children(code, resolution, areas, postcodes)
            .await?;
        let bytes = worked_out.as_ref().map_or(0, |populations| {
            populations.children.capacity() * KEPT_BYTES_PER_CELL
        });
        self.populations
            .keep(code, resolution, version, worked_out.clone(), bytes);
        Ok(worked_out)
    }

    /// The children of `areas` placed in the cells of `code`'s coverage at `resolution`, by
    /// `postcodes` where they say where people live ([`Self::cell_populations`]).
    async fn place_children(
        &self,
        code: &GssCode,
        resolution: StoredResolution,
        areas: Vec<populations::StoredSmallArea>,
        postcodes: Vec<(i64, i64)>,
    ) -> Result<Option<Arc<CellPopulations>>, AnalysisError> {
        let fine = cells(&self.study_area(code, StoredResolution::FINEST).await?).to_vec();
        let covered: std::collections::HashSet<i64> = fine
            .iter()
            .filter_map(|cell| i64::try_from(u64::from(*cell)).ok())
            .collect();
        // Each area's latest figure counts where its point lies in the coverage; official
        // figures, where there are any, replace the approximation whole (the two would count
        // the same children twice where their areas overlap).
        let mut areas: Vec<_> = areas
            .into_iter()
            .filter(|area| covered.contains(&area.cell))
            .collect();
        if areas.iter().any(|area| !area.approximate) {
            areas.retain(|area| !area.approximate);
        }
        if areas.is_empty() {
            // None imported: the approximation Atlas ships, labelled as such.
            areas = shipped_lsoas()
                .iter()
                .filter(|area| covered.contains(&area.cell))
                .cloned()
                .collect();
        }
        if areas.is_empty() {
            return Ok(None);
        }
        let mut sources: Vec<String> = areas.iter().map(|area| area.source.clone()).collect();
        sources.sort();
        sources.dedup();
        let approximate = areas.iter().all(|area| area.approximate);
        let placement = match (postcodes.is_empty(), approximate) {
            (true, _) => Placement::SmallAreasEvenly,
            (false, true) => Placement::Postcodes,
            (false, false) => Placement::SmallAreasByPostcode,
        };
        let basis = PopulationBasis {
            small_areas: areas.len(),
            year: areas.iter().map(|area| area.year).max().unwrap_or_default(),
            approximate: areas.iter().any(|area| area.approximate),
            sources,
            placement,
        };
        let target = resolution.h3();
        let children = blocking("cell populations", move || {
            let cell = |raw: i64| {
                u64::try_from(raw)
                    .ok()
                    .and_then(|raw| CellIndex::try_from(raw).ok())
            };
            let small: Vec<SmallArea> = areas
                .iter()
                .filter_map(|area| {
                    Some(SmallArea {
                        location: LatLng::from(cell(area.cell)?),
                        children: f64::from(area.population_0_17.max(0)),
                    })
                })
                .collect();
            let postcodes: HashMap<CellIndex, u32> = postcodes
                .into_iter()
                .filter_map(|(raw, count)| Some((cell(raw)?, u32::try_from(count).ok()?)))
                .collect();
            let placed = if placement == Placement::Postcodes {
                let total: f64 = small.iter().map(|area| area.children).sum();
                let listed: u32 = postcodes.values().sum();
                fine.iter()
                    .map(|cell| {
                        total * f64::from(postcodes.get(cell).copied().unwrap_or(0))
                            / f64::from(listed.max(1))
                    })
                    .collect()
            } else {
                allocate(&fine, &small, &postcodes)
            };
            let mut children: HashMap<CellIndex, f64> = HashMap::new();
            for (fine, people) in fine.iter().zip(placed) {
                if people > 0.0
                    && let Some(parent) = fine.parent(target)
                {
                    *children.entry(parent).or_default() += people;
                }
            }
            children
        })
        .await?;
        Ok(Some(Arc::new(CellPopulations { basis, children })))
    }
}

/// An upper bound of the bytes one cell of kept populations takes: a cell, its children and the
/// hash table's control byte, with room to spare.
const KEPT_BYTES_PER_CELL: usize = 24;

/// The reference point of every English 2011 LSOA, shipped with Atlas.
const LSOA_CENTROIDS: &str = include_str!("../../../../data/reference/lsoa_centroids_england.csv");

/// The shipped LSOAs as approximate small areas ([`atlas_ingest::reference::CHILDREN_PER_LSOA`]
/// children each): what a partnership without imported small-area populations is adjusted by.
fn shipped_lsoas() -> &'static [populations::StoredSmallArea] {
    static SHIPPED: std::sync::OnceLock<Vec<populations::StoredSmallArea>> =
        std::sync::OnceLock::new();
    SHIPPED.get_or_init(|| {
        atlas_ingest::reference::read_small_area_populations(LSOA_CENTROIDS.as_bytes())
            .map(|file| {
                file.areas
                    .into_iter()
                    .filter_map(|area| {
                        Some(populations::StoredSmallArea {
                            cell: i64::try_from(area.cell).ok()?,
                            population_0_17: i32::try_from(area.children).ok()?,
                            code: area.code,
                            year: area.year,
                            approximate: true,
                            source: format!(
                                "{} (shipped with Atlas: no small-area populations imported)",
                                atlas_ingest::reference::APPROXIMATION
                            ),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()
    })
}

/// How many children, on average, each cell where children live must hold for a resolution to
/// be fine enough: 5/7, so that a cell's k = 1 neighbourhood (7 cells) holds the
/// [`super::MIN_CHILDREN_NEARBY`] (5) a hot spot needs.
const CHILDREN_PER_CELL: (u64, u64) = (5, 7);
/// The coarsest resolution chosen: coarser cells (about 250 km²) say little about where.
const COARSEST_CHOSEN: u8 = 6;

/// The resolution an analysis uses when none is asked for, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChosenResolution {
    /// The resolution.
    pub resolution: StoredResolution,
    /// Distinct children with a record the caller may read, over all the data.
    pub children: u64,
    /// Cells where children live at that resolution (by the child populations, or every cell
    /// of the coverage without them).
    pub lived_in_cells: usize,
    /// Why, in a sentence.
    pub reason: String,
}

impl Analyses {
    /// The partnership's analysis resolution, chosen from its data rather than a map's zoom:
    /// the finest resolution (9 to 6) at which the cells where children live hold at least 5/7
    /// of a child each on average over all the records within `scope`, so that a k = 1
    /// neighbourhood holds the 5 children a hot spot needs; 6 when none does. It changes only
    /// as the data grow, not with the period, the filters or the zoom.
    ///
    /// # Errors
    /// [`AnalysisError::NotFound`]; [`AnalysisError::Store`].
    pub async fn analysis_resolution(
        &self,
        code: &GssCode,
        scope: atlas_access::RecordScope,
    ) -> Result<ChosenResolution, AnalysisError> {
        let records = self.records(code, scope).await?;
        let lived_in: Vec<CellIndex> = match self
            .cell_populations(code, StoredResolution::FINEST)
            .await?
        {
            Some(populations) => populations.children.keys().copied().collect(),
            None => cells(&self.study_area(code, StoredResolution::FINEST).await?).to_vec(),
        };
        let (children, counts) = blocking("analysis resolution", move || {
            let children = records
                .records
                .iter()
                .map(|record| record.subject)
                .collect::<std::collections::HashSet<u64>>()
                .len();
            let counts: Vec<(StoredResolution, usize)> = StoredResolution::all()
                .rev()
                .filter(|resolution| resolution.get() >= COARSEST_CHOSEN)
                .map(|resolution| {
                    let cells: std::collections::HashSet<CellIndex> = lived_in
                        .iter()
                        .filter_map(|cell| cell.parent(resolution.h3()))
                        .collect();
                    (resolution, cells.len())
                })
                .collect();
            (children as u64, counts)
        })
        .await?;
        let (wanted, per) = CHILDREN_PER_CELL;
        let fine_enough = counts
            .iter()
            .find(|(_, cells)| children * per >= wanted * *cells as u64);
        let ((resolution, cells), reason) = match fine_enough {
            Some(&(resolution, cells)) => (
                (resolution, cells),
                format!(
                    "the finest resolution at which the {cells} cells where children live hold \
                     at least 5 children per 7 cells on average ({children} children in all), \
                     so that a cell with its 6 neighbours holds the 5 children a hot spot needs"
                ),
            ),
            None => {
                let coarsest = counts
                    .last()
                    .copied()
                    .unwrap_or((StoredResolution::FINEST, 0));
                (
                    coarsest,
                    format!(
                        "too few children for any finer resolution ({children} children over the \
                         {} cells where children live at resolution {}): the coarsest offered",
                        coarsest.1, coarsest.0
                    ),
                )
            }
        };
        Ok(ChosenResolution {
            resolution,
            children,
            lived_in_cells: cells,
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_lsoa_is_read_as_the_labelled_approximation() {
        let shipped = shipped_lsoas();
        assert_eq!(shipped.len(), 32_844);
        assert!(shipped.iter().all(|area| area.approximate
            && area.population_0_17 == 344
            && area.source.contains("shipped with Atlas")));
    }
}
