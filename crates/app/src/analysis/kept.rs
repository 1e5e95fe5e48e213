//! Study areas kept between requests: a partnership's coverage at one resolution, with the
//! k-ring neighbourhoods its analyses build, reused until its coverage changes.
//!
//! Reading a coverage (88,496 cells for North Yorkshire at resolution 9) and walking every
//! cell's k-ring took a fifth of a hotspot answer. An entry is fresh while the partnership's
//! `coverage_version` (raised with every rewrite of its coverage, in the same transaction) is the
//! one it was read at, so a changed boundary is analysed from the next request on. Entries are
//! budgeted by [`StudyArea::max_heap_bytes`], an upper bound, and the least recently used leave
//! first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use atlas_analytics::gistar::StudyArea;
use atlas_domain::{GssCode, StoredResolution};
use h3o::CellIndex;

/// The memory the study areas may take: 256 MiB, the largest study area in England (North
/// Yorkshire at resolution 9, 88,496 cells: 31 MiB with every neighbourhood built) eight times over.
pub const STUDY_AREA_BUDGET_BYTES: usize = 256 * 1024 * 1024;

/// A partnership's coverage at one resolution as a study area; `None` when it has no cells there.
pub type Coverage = Option<Arc<StudyArea>>;

/// The cells of `area`, none when there is no coverage.
#[must_use]
pub fn cells(area: &Coverage) -> &[CellIndex] {
    area.as_deref().map_or(&[], StudyArea::cells)
}

struct Entry {
    version: i64,
    area: Coverage,
    bytes: usize,
    used: u64,
}

#[derive(Default)]
struct Entries {
    clock: u64,
    bytes: usize,
    by_key: HashMap<(GssCode, StoredResolution), Entry>,
}

/// The cached study areas, shared by every worker.
pub(crate) struct StudyAreas {
    budget: usize,
    entries: Mutex<Entries>,
}

impl StudyAreas {
    /// A cache of at most `budget` bytes of study areas.
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            budget,
            entries: Mutex::new(Entries::default()),
        }
    }

    /// The study area of `code` at `resolution` when it was read at coverage `version`.
    pub(crate) fn fresh(
        &self,
        code: &GssCode,
        resolution: StoredResolution,
        version: i64,
    ) -> Option<Coverage> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.clock += 1;
        let clock = entries.clock;
        let entry = entries.by_key.get_mut(&(code.clone(), resolution))?;
        (entry.version == version).then(|| {
            entry.used = clock;
            entry.area.clone()
        })
    }

    /// Keeps `area`, read at coverage `version`, evicting the least recently used entries
    /// beyond the budget (an area larger than the whole budget is not kept).
    pub(crate) fn keep(
        &self,
        code: &GssCode,
        resolution: StoredResolution,
        version: i64,
        area: &Coverage,
    ) {
        let bytes = area.as_ref().map_or(0, |area| area.max_heap_bytes());
        if bytes > self.budget {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.clock += 1;
        let used = entries.clock;
        let entry = Entry {
            version,
            area: area.clone(),
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
        let areas = StudyAreas::new(2 * one + one / 2);
        let (york, leeds, hull) = (code("E06000014"), code("E08000035"), code("E06000010"));
        areas.keep(&york, nine, 1, &area(10));
        assert!(areas.fresh(&york, nine, 1).is_some());
        assert!(
            areas.fresh(&york, nine, 2).is_none(),
            "a rewritten coverage"
        );
        areas.keep(&leeds, nine, 1, &area(10));
        // York was used last: Leeds leaves when Hull arrives.
        assert!(areas.fresh(&york, nine, 1).is_some());
        areas.keep(&hull, nine, 1, &area(10));
        assert!(areas.fresh(&leeds, nine, 1).is_none());
        assert!(areas.fresh(&york, nine, 1).is_some());
        assert!(areas.fresh(&hull, nine, 1).is_some());
        // No coverage at a resolution is kept as such.
        areas.keep(&hull, StoredResolution::try_from(5).unwrap(), 1, &None);
        assert_eq!(
            areas
                .fresh(&hull, StoredResolution::try_from(5).unwrap(), 1)
                .map(|area| area.is_none()),
            Some(true)
        );
    }

    #[test]
    fn an_area_larger_than_the_budget_is_not_kept() {
        let areas = StudyAreas::new(1024);
        let york = code("E06000014");
        areas.keep(&york, StoredResolution::FINEST, 1, &area(10));
        assert!(areas.fresh(&york, StoredResolution::FINEST, 1).is_none());
    }
}
