//! Hot spot areas: the cells hot at 95 % or more grouped into contiguous areas (cells sharing an
//! edge), each named from the nearest place ("Burnley centre", "3 km south-west of Burnley") and
//! counted (distinct children and records) from the records the analysis used. The map's summary
//! and area table and the problem profile's "where" section both use them.

use std::collections::{HashMap, HashSet};

use atlas_analytics::gate::{Keyed, child_key};
use atlas_domain::GssCode;
use h3o::{CellIndex, LatLng};

use super::{Analyses, AnalysisError, HotspotAnalysis, HotspotQuestion};
use crate::places;

/// The lowest Gi* bin of a hot spot area's cells: hot at 95 % confidence or more.
pub const AREA_BIN: i8 = 2;

/// A hot spot area.
#[derive(Debug, Clone)]
pub struct HotspotArea {
    /// Where it is, in words, from the nearest place (its first cell when no place is known).
    pub name: String,
    /// Its cells, sorted.
    pub cells: Vec<CellIndex>,
    /// 99 when any cell is hot at 99 %, else 95.
    pub confidence: u8,
    /// Distinct children with a record in it (with their keys, for the publication gate).
    pub children: Keyed,
    /// Records in it.
    pub records: Keyed,
    /// The mean of its cells' centres: (latitude, longitude).
    pub centre: (f64, f64),
}

/// Groups the cells of `analysis` hot at 95 % or more into contiguous areas named from the
/// places of `authorities` (uncounted), in cell order.
#[must_use]
pub fn group(analysis: &HotspotAnalysis, authorities: &[String]) -> Vec<HotspotArea> {
    let bins: HashMap<CellIndex, i8> = analysis
        .cells
        .iter()
        .filter(|cell| cell.bin >= AREA_BIN)
        .map(|cell| (cell.cell, cell.bin))
        .collect();
    let mut hot: Vec<CellIndex> = bins.keys().copied().collect();
    hot.sort_unstable();
    let mut unvisited: HashSet<CellIndex> = hot.iter().copied().collect();
    let mut areas = Vec::new();
    for start in &hot {
        if !unvisited.remove(start) {
            continue;
        }
        let mut cells = Vec::new();
        let mut stack = vec![*start];
        while let Some(cell) = stack.pop() {
            cells.push(cell);
            for next in cell.grid_disk::<Vec<_>>(1) {
                if unvisited.remove(&next) {
                    stack.push(next);
                }
            }
        }
        cells.sort_unstable();
        let confidence = if cells
            .iter()
            .any(|cell| bins.get(cell).is_some_and(|bin| *bin >= 3))
        {
            99
        } else {
            95
        };
        // The area's centre: the mean of its cells' centres (an area spans a few km).
        #[expect(clippy::cast_precision_loss, reason = "a few cells")]
        let count = cells.len() as f64;
        let centre = cells
            .iter()
            .map(|cell| LatLng::from(*cell))
            .fold((0.0, 0.0), |(lat, lng), point| {
                (lat + point.lat() / count, lng + point.lng() / count)
            });
        areas.push(HotspotArea {
            name: places::describe(centre.0, centre.1, authorities)
                .unwrap_or_else(|| cells[0].to_string()),
            cells,
            confidence,
            children: Keyed::default(),
            records: Keyed::default(),
            centre,
        });
    }
    areas
}

impl Analyses {
    /// The hot spot areas of `analysis`, the answer to `question` about `code`: grouped,
    /// named from the places of the partnership's authorities, and counted from the records the
    /// question used (its scope and filter); most children first.
    ///
    /// # Errors
    /// [`AnalysisError::NotFound`]; [`AnalysisError::Store`].
    pub async fn hotspot_areas(
        &self,
        code: &GssCode,
        question: &HotspotQuestion,
        analysis: &HotspotAnalysis,
    ) -> Result<Vec<HotspotArea>, AnalysisError> {
        let authorities = self.authorities(code).await?;
        let mut areas = group(analysis, &authorities);
        if areas.is_empty() {
            return Ok(areas);
        }
        let records = self.records(code, question.scope).await?;
        let h3 = question.grid.resolution.h3();
        let area_of: HashMap<CellIndex, usize> = areas
            .iter()
            .enumerate()
            .flat_map(|(index, area)| area.cells.iter().map(move |cell| (*cell, index)))
            .collect();
        let mut seen: Vec<HashSet<u64>> = vec![HashSet::new(); areas.len()];
        for record in records
            .records
            .iter()
            .filter(|record| question.grid.filter.matches(record))
        {
            let Some(&index) = record.cell.parent(h3).and_then(|cell| area_of.get(&cell)) else {
                continue;
            };
            areas[index].records.add(record.record_key);
            if seen[index].insert(record.subject) {
                areas[index].children.add(child_key(record.subject));
            }
        }
        areas.sort_by(|a, b| {
            b.children
                .count
                .cmp(&a.children.count)
                .then_with(|| a.name.cmp(&b.name))
        });
        Ok(areas)
    }

    /// The local authorities a partnership covers (GSS codes), for naming places.
    ///
    /// # Errors
    /// [`AnalysisError::NotFound`]; [`AnalysisError::Store`].
    pub async fn authorities(&self, code: &GssCode) -> Result<Vec<String>, AnalysisError> {
        let mut conn = self.database.connection().await?;
        let partnership = atlas_store::partnerships::find(&mut conn, code)
            .await?
            .ok_or_else(|| {
                AnalysisError::NotFound(format!("no partnership has the code {code}"))
            })?;
        Ok(partnership
            .local_authorities
            .iter()
            .map(ToString::to_string)
            .collect())
    }
}

/// The sentence the map opens with: how many hot spot areas at 95 % or more, and the first few
/// (most children first), in words.
#[must_use]
pub fn summary(areas: &[HotspotArea]) -> String {
    const NAMED: usize = 3;
    let plural = |count: usize, one: &str, many: &str| {
        format!("{count} {}", if count == 1 { one } else { many })
    };
    if areas.is_empty() {
        return "No hot spot areas: no cell is a hot spot at 95 % confidence or more.".to_owned();
    }
    let named: Vec<String> = areas
        .iter()
        .take(NAMED)
        .map(|area| {
            format!(
                "{} ({} % confidence; {}, {}, {})",
                area.name,
                area.confidence,
                plural(area.cells.len(), "cell", "cells"),
                plural(area.children.count as usize, "child", "children"),
                plural(area.records.count as usize, "record", "records"),
            )
        })
        .collect();
    let more = areas.len().saturating_sub(NAMED);
    format!(
        "{} at 95 % confidence or more: {}{}.",
        plural(areas.len(), "hot spot area", "hot spot areas"),
        named.join("; "),
        if more > 0 {
            format!("; and {more} more")
        } else {
            String::new()
        }
    )
}
