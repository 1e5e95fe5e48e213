//! What the analyses keep between requests, per partnership and resolution: study areas (a
//! coverage with the k-ring neighbourhoods its analyses build) and the children living in each
//! of their cells, each reused until what it was worked out from changes.
//!
//! Reading a coverage (88,496 cells for North Yorkshire at resolution 9) and walking every
//! cell's k-ring took a fifth of a hotspot answer; placing its small areas' children in cells
//! took three quarters of a population-adjusted one. An entry is fresh while the versions it was
//! read at are current: the partnership's `coverage_version` (raised with every rewrite of its
//! coverage, in the same transaction) and, for populations, the version of the population
//! sources (raised by every change to small-area populations or postcodes), so a changed
//! boundary or a new import is analysed from the next request on. Entries are budgeted by an
//! upper bound of their bytes, and the least recently used leave first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use atlas_analytics::gistar::StudyArea;
use atlas_domain::{GssCode, StoredResolution};
use h3o::CellIndex;

/// The memory the study areas may take: 256 MiB, the largest study area in England (North
/// Yorkshire at resolution 9, 88,496 cells: 31 MiB with every neighbourhood built) eight times over.
pub const STUDY_AREA_BUDGET_BYTES: usize = 256 * 1024 * 1024;

/// The memory the kept child populations may take: 64 MiB, the largest study area's (about
/// 3 MiB at resolution 9) twenty times over.
pub const POPULATION_BUDGET_BYTES: usize = 64 * 1024 * 1024;

/// A partnership's coverage at one resolution as a study area; `None` when it has no cells there.
pub type Coverage = Option<Arc<StudyArea>>;

/// The cells of `area`, none when there is no coverage.
#[must_use]
pub fn cells(area: &Coverage) -> &[CellIndex] {
    area.as_deref().map_or(&[], StudyArea::cells)
}

struct Entry<T, V> {
    version: V,
    value: T,
    bytes: usize,
    used: u64,
}

struct Entries<T, V> {
    clock: u64,
    bytes: usize,
    by_key: HashMap<(GssCode, StoredResolution), Entry<T, V>>,
}

/// Values kept per partnership and resolution, each with the version it was worked out at,
/// shared by every worker.
pub(crate) struct Kept<T, V> {
    budget: usize,
    entries: Mutex<Entries<T, V>>,
}

impl<T: Clone, V: PartialEq> Kept<T, V> {
    /// A cache of at most `budget` bytes.
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            budget,
            entries: Mutex::new(Entries {
                clock: 0,
                bytes: 0,
                by_key: HashMap::new(),
            }),
        }
    }

    /// The value kept for `code` at `resolution` when it was worked out at `version`.
    pub(crate) fn fresh(
        &self,
        code: &GssCode,
        resolution: StoredResolution,
        version: &V,
    ) -> Option<T> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.clock += 1;
        let clock = entries.clock;
        let entry = entries.by_key.get_mut(&(code.clone(), resolution))?;
        (entry.version == *version).then(|| {
            entry.used = clock;
            entry.value.clone()
        })
    }

    /// Keeps `value`, worked out at `version` and taking at most `bytes`, evicting the least
    /// recently used entries beyond the budget (a value larger than the whole budget is not kept).
    pub(crate) fn keep(
        &self,
        code: &GssCode,
        resolution: StoredResolution,
        version: V,
        value: T,
        bytes: usize,
    ) {
        if bytes > self.budget {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.clock += 1;
        let used = entries.clock;
        let entry = Entry {
            version,
            value,
            bytes,
            used,
        };
        if let Some(replaced) = entries.by_key.insert((code.clone(), resolution), entry) {
            entries.bytes -= replaced.bytes;
        }
        entries.bytes += bytes;
        while entries.bytes > self.budget {
            let Some(oldest) = entries
                .by_key
                .iter()
                .min_by_key(|(_, entry)| entry.used)
                .map(|(key, _)| key.clone())
            else {
                break;
            };
            if let Some(evicted) = entries.by_key.remove(&oldest) {
                entries.bytes -= evicted.bytes;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use h3o::{LatLng, Resolution};

    fn area(radius: u32) -> Coverage {
        let centre = LatLng::new(54.0, -1.5).unwrap().to_cell(Resolution::Nine);
        Some(Arc::new(
            StudyArea::new(centre.grid_disk::<Vec<_>>(radius)).unwrap(),
        ))
    }

    fn code(text: &str) -> GssCode {
        text.parse().unwrap()
    }

    #[test]
    fn an_area_is_fresh_at_its_version_only_and_the_least_recently_used_leave_first() {
        let nine = StoredResolution::FINEST;
        let one = area(10).unwrap().max_heap_bytes();
        let areas = Kept::new(2 * one + one / 2);
        let (york, leeds, hull) = (code("E06000014"), code("E08000035"), code("E06000010"));
        areas.keep(&york, nine, 1, area(10), one);
        assert!(areas.fresh(&york, nine, &1).is_some());
        assert!(
            areas.fresh(&york, nine, &2).is_none(),
            "a rewritten coverage"
        );
        areas.keep(&leeds, nine, 1, area(10), one);
        // York was used last: Leeds leaves when Hull arrives.
        assert!(areas.fresh(&york, nine, &1).is_some());
        areas.keep(&hull, nine, 1, area(10), one);
        assert!(areas.fresh(&leeds, nine, &1).is_none());
        assert!(areas.fresh(&york, nine, &1).is_some());
        assert!(areas.fresh(&hull, nine, &1).is_some());
        // No coverage at a resolution is kept as such.
        areas.keep(&hull, StoredResolution::try_from(5).unwrap(), 1, None, 0);
        assert_eq!(
            areas
                .fresh(&hull, StoredResolution::try_from(5).unwrap(), &1)
                .map(|area| area.is_none()),
            Some(true)
        );
    }

    #[test]
    fn an_area_larger_than_the_budget_is_not_kept() {
        let areas = Kept::new(1024);
        let york = code("E06000014");
        let one = area(10).unwrap().max_heap_bytes();
        areas.keep(&york, StoredResolution::FINEST, 1, area(10), one);
        assert!(areas.fresh(&york, StoredResolution::FINEST, &1).is_none());
    }
}
