//! Hot spot areas: the cells hot at 95 % or more grouped into contiguous areas (cells sharing an
//! edge), each named from the nearest place ("Burnley centre", "3 km south-west of Burnley"),
//! counted (distinct children and records) from the records the analysis used, with the trend
//! of its children month by month. The map's summary and area table and the problem profile's
//! "where" section both use them.

use std::collections::{HashMap, HashSet};

use atlas_analytics::grid::Filter;
use atlas_analytics::hashing::{KeyMap, KeySet};
use atlas_domain::CaseRecord;

use atlas_analytics::emerging::mann_kendall;
use atlas_analytics::gate::{Keyed, child_key};
use atlas_domain::GssCode;
use chrono::{Datelike as _, NaiveDate};
use h3o::{CellIndex, LatLng, Resolution};

use super::{Analyses, AnalysisError, HotspotAnalysis, HotspotQuestion, blocking};
use crate::places::PlaceNames;

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
    /// Whether its children month by month rise or fall over the period.
    pub trend: AreaTrend,
}

/// The fewest months a trend is told from.
pub const TREND_MONTHS: usize = 6;

/// The most months a trend is told from (the latest, when a period is longer).
const MOST_TREND_MONTHS: usize = 240;

/// Whether an area's distinct children month by month rise or fall over the analysis's period:
/// the Mann–Kendall test at 95 % (as emerging hot spots use it for each cell).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AreaTrend {
    /// "rising", "falling", "no clear trend", or "too few months to tell" (fewer than
    /// [`TREND_MONTHS`]).
    pub direction: &'static str,
    /// The test's two-sided p-value (none when too few months).
    pub p: Option<f64>,
    /// The months the series covers.
    pub months: usize,
}

impl AreaTrend {
    /// The trend of `monthly` (distinct children per month, oldest first).
    #[must_use]
    pub fn of(monthly: &[f64]) -> Self {
        if monthly.len() < TREND_MONTHS {
            return Self {
                direction: "too few months to tell",
                p: None,
                months: monthly.len(),
            };
        }
        let trend = mann_kendall(monthly);
        let direction = match (trend.p < 0.05, trend.z) {
            (true, z) if z > 0.0 => "rising",
            (true, z) if z < 0.0 => "falling",
            _ => "no clear trend",
        };
        Self {
            direction,
            p: Some(trend.p),
            months: monthly.len(),
        }
    }
}

/// The first and last month (see [`month_number`]) of an area's trend: the whole months the
/// question's period (`from`, `to`) and its records (`earliest`, `latest`) share, up to the
/// last month complete `today`. A month the period cuts short is left out, as is the month
/// still running: either would read as a fall. Records starting or ending within a month stand
/// for that whole month.
fn trend_months(
    (from, to): (Option<NaiveDate>, Option<NaiveDate>),
    (earliest, latest): (NaiveDate, NaiveDate),
    today: NaiveDate,
) -> (i64, i64) {
    let cut_at_start =
        from.is_some_and(|from| month_number(from) == month_number(earliest) && from.day() != 1);
    let first = month_number(earliest) + i64::from(cut_at_start);
    let last_complete = month_number(today) - 1;
    let cut_at_end = to.is_some_and(|to| {
        month_number(to) == month_number(latest)
            && to.succ_opt().is_some_and(|next| next.day() != 1)
    });
    let last = (month_number(latest) - i64::from(cut_at_end)).min(last_complete);
    (first, last)
}

/// Months since the year 0: a month's position in a series.
fn month_number(day: NaiveDate) -> i64 {
    i64::from(day.year()) * 12 + i64::from(day.month0())
}

/// Groups the cells of `analysis` hot at 95 % or more into contiguous areas named from
/// `places` (uncounted, without a trend), in cell order.
#[must_use]
pub fn group(analysis: &HotspotAnalysis, places: &PlaceNames) -> Vec<HotspotArea> {
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
            name: places
                .describe(centre.0, centre.1)
                .unwrap_or_else(|| cells[0].to_string()),
            cells,
            confidence,
            children: Keyed::default(),
            records: Keyed::default(),
            centre,
            trend: AreaTrend::of(&[]),
        });
    }
    areas
}

impl Analyses {
    /// The hot spot areas of `analysis`, the answer to `question` about `code`: grouped,
    /// named from `places`, counted from the records the question used (its scope and filter)
    /// with the trend of their children month by month over the question's period (the
    /// records' first to last month when the period is open); most children first.
    ///
    /// # Errors
    /// [`AnalysisError::NotFound`]; [`AnalysisError::Store`].
    pub async fn hotspot_areas(
        &self,
        code: &GssCode,
        question: &HotspotQuestion,
        analysis: &HotspotAnalysis,
        places: &PlaceNames,
    ) -> Result<Vec<HotspotArea>, AnalysisError> {
        let mut areas = group(analysis, places);
        if areas.is_empty() {
            return Ok(areas);
        }
        let records = self.records(code, question.scope).await?;
        let h3 = question.grid.resolution.h3();
        let filter = question.grid.filter.clone();
        let today = chrono::Utc::now().date_naive();
        blocking("hotspot areas", move || {
            count(&mut areas, &records.records, h3, &filter, today);
            areas
        })
        .await
    }

    /// The places that name `code`'s points: those within its local authorities, or every
    /// place when none of them has one.
    ///
    /// # Errors
    /// [`AnalysisError::NotFound`]; [`AnalysisError::Store`].
    pub async fn place_names(&self, code: &GssCode) -> Result<PlaceNames, AnalysisError> {
        let mut conn = self.database.connection().await?;
        let partnership = atlas_store::partnerships::find(&mut conn, code)
            .await?
            .ok_or_else(|| {
                AnalysisError::NotFound(format!("no partnership has the code {code}"))
            })?;
        let authorities: Vec<String> = partnership
            .local_authorities
            .iter()
            .map(ToString::to_string)
            .collect();
        let gazetteer = atlas_store::places::within(&mut conn, &authorities).await?;
        Ok(PlaceNames::new(gazetteer))
    }
}

/// Counts `areas`' children and records from the `records` passing `filter` (cells at `h3`),
/// with the trend of their children month by month over the filter's period (the records'
/// first to last month when the period is open) up to the last month complete `today`; most
/// children first.
fn count(
    areas: &mut [HotspotArea],
    records: &[CaseRecord],
    h3: Resolution,
    filter: &Filter,
    today: NaiveDate,
) {
    let area_of: KeyMap<CellIndex, usize> = areas
        .iter()
        .enumerate()
        .flat_map(|(index, area)| area.cells.iter().map(move |cell| (*cell, index)))
        .collect();
    let matching: Vec<&CaseRecord> = records
        .iter()
        .filter(|record| filter.matches(record))
        .collect();
    let days = || matching.iter().map(|record| record.occurred_on);
    let (Some(earliest), Some(latest)) = (days().min(), days().max()) else {
        return;
    };
    let (first, last) = trend_months((filter.from, filter.to), (earliest, latest), today);
    let first = first.max(last - i64::try_from(MOST_TREND_MONTHS).unwrap_or(i64::MAX) + 1);
    let months = usize::try_from(last - first + 1).unwrap_or(0);
    let mut seen: Vec<KeySet<u64>> = vec![KeySet::default(); areas.len()];
    let mut monthly: Vec<KeySet<(usize, u64)>> = vec![KeySet::default(); areas.len()];
    for record in matching {
        let Some(&index) = record.cell.parent(h3).and_then(|cell| area_of.get(&cell)) else {
            continue;
        };
        areas[index].records.add(record.record_key);
        if seen[index].insert(record.subject) {
            areas[index].children.add(child_key(record.subject));
        }
        if let Ok(month) = usize::try_from(month_number(record.occurred_on) - first)
            && month < months
        {
            monthly[index].insert((month, record.subject));
        }
    }
    for (area, children) in areas.iter_mut().zip(monthly) {
        let mut series = vec![0.0; months];
        for (month, _) in children {
            series[month] += 1.0;
        }
        area.trend = AreaTrend::of(&series);
    }
    areas.sort_by(|a, b| {
        b.children
            .count
            .cmp(&a.children.count)
            .then_with(|| a.name.cmp(&b.name))
    });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trend_is_told_from_six_months_or_more() {
        assert_eq!(
            AreaTrend::of(&[1.0, 2.0, 3.0]).direction,
            "too few months to tell"
        );
        let rising = AreaTrend::of(&[0.0, 1.0, 1.0, 2.0, 3.0, 3.0, 4.0, 6.0]);
        assert_eq!(rising.direction, "rising");
        assert!(rising.p.unwrap() < 0.05);
        let falling = AreaTrend::of(&[6.0, 5.0, 5.0, 3.0, 2.0, 1.0, 1.0, 0.0]);
        assert_eq!(falling.direction, "falling");
        let flat = AreaTrend::of(&[2.0, 3.0, 2.0, 3.0, 2.0, 3.0, 2.0, 3.0]);
        assert_eq!(flat.direction, "no clear trend");
        assert_eq!(flat.months, 8);
    }

    #[test]
    fn a_trend_covers_the_whole_months_of_data_up_to_the_last_complete_one() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let months = |from, to, earliest, latest, today| {
            let (first, last) = trend_months((from, to), (earliest, latest), today);
            (
                first - month_number(day(2025, 1, 1)),
                last - month_number(day(2025, 1, 1)),
            )
        };
        // Open period: the records' first to last month, whole.
        assert_eq!(
            months(
                None,
                None,
                day(2025, 1, 9),
                day(2025, 12, 20),
                day(2026, 6, 1)
            ),
            (0, 11)
        );
        // A period cutting January and December short leaves both out.
        assert_eq!(
            months(
                Some(day(2025, 1, 15)),
                Some(day(2025, 12, 15)),
                day(2025, 1, 15),
                day(2025, 12, 14),
                day(2026, 6, 1)
            ),
            (1, 10)
        );
        // A period reaching beyond the data adds no empty months at either end.
        assert_eq!(
            months(
                Some(day(2020, 1, 1)),
                Some(day(2030, 12, 31)),
                day(2025, 3, 2),
                day(2025, 8, 30),
                day(2026, 6, 1)
            ),
            (2, 7)
        );
        // The month still running is left out.
        assert_eq!(
            months(
                None,
                None,
                day(2025, 1, 1),
                day(2025, 6, 3),
                day(2025, 6, 10)
            ),
            (0, 4)
        );
    }

    #[test]
    fn months_are_numbered_across_years() {
        let day = |y, m| NaiveDate::from_ymd_opt(y, m, 15).unwrap();
        assert_eq!(month_number(day(2025, 1)) - month_number(day(2024, 12)), 1);
        assert_eq!(month_number(day(2025, 12)) - month_number(day(2025, 1)), 11);
    }
}
