//! The publication gate: the one place where a figure derived from a partnership's records is
//! made fit to leave it (docs/privacy.md, "The publication gate").
//!
//! Every figure another partnership, an administrator or the national export sees is produced
//! here, and only here:
//!
//! 1. **Closed, fixed periods** ([`closed_window`]): whole calendar quarters or months that have
//!    ended, never a day-level window, never a period still running.
//! 2. **Threshold suppression**: a count from 1 to the threshold is `c`; tables get secondary
//!    suppression as well (`disclosure::protect`, without rounding: perturbation takes
//!    its place).
//! 3. **Perturbation with record keys** (the ONS cell-key method of Census 2021, as the ABS
//!    TableBuilder does it): every stored record carries a random key from 0 to 255, drawn at
//!    ingest and never shown; every child a key that is a fixed function of its keyed
//!    pseudonym ([`child_key`]). A published count's cell key is the sum of the keys of the
//!    records (or children) it counts, modulo 256, and its noise is a fixed function of the
//!    count and the cell key ([`noise`], the p-table). The same records always give the same
//!    answer, so repeating or overlapping questions average nothing away, and one record more
//!    changes the cell key, so the difference of two answers is not the difference of the
//!    counts.
//!
//! The p-table is symmetric for every count, so the noise is exactly unbiased over uniformly
//! distributed cell keys, and it never moves a count above the threshold to the threshold or
//! below: a published value is 0, `c`, or above the threshold.

use std::collections::BTreeMap;
use std::fmt;

use atlas_domain::{AgencyKind, Indicator};
use chrono::NaiveDate;
use h3o::{CellIndex, Resolution};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use crate::disclosure::Published;
use crate::disclosure::{Policy, ProtectedTable, protect};
use crate::emerging::Step;
use crate::hashing::{KeyMap, KeySet};
use atlas_domain::CaseRecord;

/// The threshold of the gate: counts from 1 to this are suppressed (the children's statistics
/// convention).
pub const THRESHOLD: u32 = 5;

/// Days after its end before a period may leave a partnership: agencies upload in arrears, and a
/// product frozen the day a period ends would miss their records for good.
pub const SETTLE_DAYS: u64 = 30;

/// The suppression the gate applies before perturbing: the threshold, no rounding.
const SUPPRESSION: Policy = Policy {
    threshold: THRESHOLD,
    rounding: 1,
};

/// A count with its cell key: how many records (or children) and the sum of their keys modulo
/// 256.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Keyed {
    /// How many.
    pub count: u32,
    /// The sum of their keys, modulo 256.
    pub key: u8,
}

impl Keyed {
    /// Counts one more record or child with `key`.
    pub const fn add(&mut self, key: u8) {
        self.count += 1;
        self.key = self.key.wrapping_add(key);
    }

    /// The two counts together (their records are distinct).
    #[must_use]
    pub const fn plus(self, other: Self) -> Self {
        Self {
            count: self.count + other.count,
            key: self.key.wrapping_add(other.key),
        }
    }
}

/// A child's key: a fixed function of its keyed pseudonym, which never leaves the server, so
/// the key is as unpredictable as a drawn one and the same child always brings the same key.
#[must_use]
pub const fn child_key(subject: u64) -> u8 {
    // The SplitMix64 finaliser: every bit of the pseudonym reaches the top byte.
    let mut x = subject ^ 0x9e37_79b9_7f4a_7c15;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    x.to_be_bytes()[0]
}

/// The p-table: the noise added to `count` given its cell key, when no published value may be
/// below `floor` (the threshold plus one for published figures; 1 for values that only feed a
/// statistic). How far a count may move is `min(2, count - floor)`:
///
/// | reach | cell keys → noise | variance |
/// |---|---|---|
/// | 0 (`count ≤ floor`) | all → 0 | 0 |
/// | 1 | 0–63 → −1, 64–191 → 0, 192–255 → +1 | 0.5 |
/// | 2 | 0–25 → −2, 26–76 → −1, 77–178 → 0, 179–229 → +1, 230–255 → +2 | 1.21 |
///
/// Each row is symmetric, so the noise has mean exactly 0 over uniform cell keys.
#[must_use]
pub fn noise(count: u32, key: u8, floor: u32) -> i32 {
    match count.saturating_sub(floor) {
        0 => 0,
        1 => match key {
            0..=63 => -1,
            64..=191 => 0,
            _ => 1,
        },
        _ => match key {
            0..=25 => -2,
            26..=76 => -1,
            77..=178 => 0,
            179..=229 => 1,
            _ => 2,
        },
    }
}

/// `count` moved by its noise.
fn perturbed(figure: Keyed, floor: u32) -> u32 {
    figure
        .count
        .saturating_add_signed(noise(figure.count, figure.key, floor))
}

/// A count about requests rather than records (such as the rows an audited answer returned),
/// as auditors see it: 1 to the threshold is `c`, so that the audit trail does not repeat a
/// small figure the answer itself would have withheld; 0 and larger counts are exact, since no
/// record's key enters them.
#[must_use]
pub const fn suppress_small(count: u32) -> Shown {
    if count >= 1 && count <= THRESHOLD {
        Shown(Published::Suppressed)
    } else {
        Shown(Published::Value(count))
    }
}

/// A count that stands alone (no other published figure adds up with it), as published:
/// 0 stays 0, 1 to the threshold is `c`, above it the count is perturbed.
#[must_use]
pub fn publish(figure: Keyed) -> Shown {
    Shown(match figure.count {
        0 => Published::Value(0),
        count if count <= THRESHOLD => Published::Suppressed,
        _ => Published::Value(perturbed(figure, THRESHOLD + 1)),
    })
}

/// A table (`cells[row][column]`, rows of one length) published with its row, column and
/// grand totals: primary and secondary suppression as `protect` decides them on the exact
/// counts, then every published non-zero entry perturbed by its own cell key (a total's key is
/// the sum of its cells' keys).
#[must_use]
pub fn publish_table(cells: &[Vec<Keyed>]) -> ShownTable {
    let counts: Vec<Vec<u32>> = cells
        .iter()
        .map(|row| row.iter().map(|figure| figure.count).collect())
        .collect();
    let mut table = protect(&counts, SUPPRESSION);
    let columns = cells.first().map_or(0, Vec::len);
    let mut column_totals = vec![Keyed::default(); columns];
    let mut grand_total = Keyed::default();
    for (r, row) in cells.iter().enumerate() {
        let mut row_total = Keyed::default();
        for (c, figure) in row.iter().enumerate().take(columns) {
            row_total = row_total.plus(*figure);
            column_totals[c] = column_totals[c].plus(*figure);
            settle(&mut table.cells[r][c], *figure);
        }
        grand_total = grand_total.plus(row_total);
        settle(&mut table.row_totals[r], row_total);
    }
    for (published, figure) in table.column_totals.iter_mut().zip(column_totals) {
        settle(published, figure);
    }
    settle(&mut table.grand_total, grand_total);
    ShownTable(table)
}

/// Perturbs a published entry of a protected table.
fn settle(published: &mut Published, figure: Keyed) {
    if let Published::Value(value) = published
        && *value > 0
    {
        *value = perturbed(figure, THRESHOLD + 1);
    }
}

/// A figure that passed the gate: only this module makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shown(Published);

impl Shown {
    /// The published value.
    #[must_use]
    pub const fn value(self) -> Published {
        self.0
    }

    /// The number, or `None` where suppressed.
    #[must_use]
    pub const fn number(self) -> Option<u32> {
        match self.0 {
            Published::Value(value) => Some(value),
            Published::Suppressed => None,
        }
    }

    /// The sum of published figures: `c` when any is suppressed (summing published values
    /// reveals nothing they do not).
    #[must_use]
    pub fn sum(figures: impl IntoIterator<Item = Self>) -> Self {
        figures
            .into_iter()
            .try_fold(0_u32, |sum, figure| figure.number().map(|n| sum + n))
            .map_or(Self(Published::Suppressed), |sum| {
                Self(Published::Value(sum))
            })
    }
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Shown {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Published::Value(value) => serializer.serialize_u32(value),
            Published::Suppressed => serializer.serialize_str("c"),
        }
    }
}

impl<'de> Deserialize<'de> for Shown {
    /// Reads a figure the gate wrote into a frozen product (a number, or `"c"`).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Number(u32),
            Text(String),
        }
        match Stored::deserialize(deserializer)? {
            Stored::Number(value) => Ok(Self(Published::Value(value))),
            Stored::Text(text) if text == "c" => Ok(Self(Published::Suppressed)),
            Stored::Text(text) => Err(serde::de::Error::custom(format!(
                "`{text}` is not a published figure"
            ))),
        }
    }
}

/// A protected and perturbed table: only this module makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownTable(ProtectedTable);

impl ShownTable {
    /// Published cells, row by row.
    pub fn cells(&self) -> impl Iterator<Item = impl Iterator<Item = Shown> + '_> + '_ {
        self.0
            .cells
            .iter()
            .map(|row| row.iter().copied().map(Shown))
    }

    /// Published row totals.
    pub fn row_totals(&self) -> impl Iterator<Item = Shown> + '_ {
        self.0.row_totals.iter().copied().map(Shown)
    }

    /// Published column totals.
    pub fn column_totals(&self) -> impl Iterator<Item = Shown> + '_ {
        self.0.column_totals.iter().copied().map(Shown)
    }

    /// The published grand total.
    #[must_use]
    pub const fn grand_total(&self) -> Shown {
        Shown(self.0.grand_total)
    }

    /// How many entries were suppressed: (primary, secondary).
    #[must_use]
    pub fn suppressed(&self) -> (usize, usize) {
        self.0.suppressed()
    }
}

/// One partnership's figures for one closed period, as they may leave it: records by agency
/// kind (one table with its total), distinct children, and records per indicator (each
/// standing alone). Computed once per period and frozen by the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodSummary {
    /// Records per agency kind, in the order of [`AgencyKind::ALL`].
    pub records_by_agency_kind: Vec<Shown>,
    /// All records: the table's total.
    pub records: Shown,
    /// Distinct children.
    pub children: Shown,
    /// Records carrying each indicator, in the order of [`Indicator::ALL`].
    pub records_by_indicator: Vec<Shown>,
    /// Entries suppressed (small counts, and secondary).
    pub suppressed: usize,
    /// Whether these figures revise an earlier frozen version (set by whoever reads them from
    /// storage; never stored).
    #[serde(skip)]
    pub revised: bool,
}

/// The [`PeriodSummary`] of `records` on the days from `first` to `last`.
#[must_use]
pub fn summarise<'a>(
    records: impl IntoIterator<Item = &'a CaseRecord>,
    first: NaiveDate,
    last: NaiveDate,
) -> PeriodSummary {
    let mut by_kind = vec![Keyed::default(); AgencyKind::ALL.len()];
    let mut indicators = vec![Keyed::default(); Indicator::ALL.len()];
    let mut children = Keyed::default();
    let mut seen: KeySet<u64> = KeySet::default();
    for record in records
        .into_iter()
        .filter(|record| (first..=last).contains(&record.occurred_on))
    {
        if let Some(kind) = AgencyKind::ALL
            .iter()
            .position(|kind| *kind == record.agency_kind)
        {
            by_kind[kind].add(record.record_key);
        }
        for (position, indicator) in Indicator::ALL.iter().enumerate() {
            if record.indicators.contains(*indicator) {
                indicators[position].add(record.record_key);
            }
        }
        if seen.insert(record.subject) {
            children.add(child_key(record.subject));
        }
    }
    let table = publish_table(std::slice::from_ref(&by_kind));
    let children = publish(children);
    let records_by_indicator: Vec<Shown> = indicators.into_iter().map(publish).collect();
    let (primary, secondary) = table.suppressed();
    let suppressed = primary
        + secondary
        + usize::from(children.number().is_none())
        + records_by_indicator
            .iter()
            .filter(|figure| figure.number().is_none())
            .count();
    PeriodSummary {
        records_by_agency_kind: table
            .cells()
            .next()
            .map(Iterator::collect)
            .unwrap_or_default(),
        records: table.grand_total(),
        children,
        records_by_indicator,
        suppressed,
        revised: false,
    }
}

/// Records by cell (the parent at `resolution` of each record's cell, for `cells`) and agency
/// kind, on the days from `first` to `last`, published with totals: a release's table.
#[must_use]
pub fn cells_by_agency_kind<'a>(
    records: impl IntoIterator<Item = &'a CaseRecord>,
    cells: &[CellIndex],
    resolution: Resolution,
    first: NaiveDate,
    last: NaiveDate,
) -> ShownTable {
    let rows: KeyMap<CellIndex, usize> = cells
        .iter()
        .enumerate()
        .map(|(row, cell)| (*cell, row))
        .collect();
    let mut table = vec![vec![Keyed::default(); AgencyKind::ALL.len()]; cells.len()];
    for record in records
        .into_iter()
        .filter(|record| (first..=last).contains(&record.occurred_on))
    {
        let row = record
            .cell
            .parent(resolution)
            .and_then(|cell| rows.get(&cell));
        let column = AgencyKind::ALL
            .iter()
            .position(|kind| *kind == record.agency_kind);
        if let (Some(row), Some(column)) = (row, column) {
            table[*row][column].add(record.record_key);
        }
    }
    publish_table(&table)
}

/// A partnership's contribution to another's statistic (a regional Gi*): per cell at
/// `resolution`, its records (or distinct children, `by_subjects`) on the days from `first` to
/// `last`, each perturbed by its cell key (never below 1 for a non-zero count). The values are
/// never shown; the statistic built on them is published only as bins.
#[must_use]
pub fn contribution<'a>(
    records: impl IntoIterator<Item = &'a CaseRecord>,
    resolution: Resolution,
    first: NaiveDate,
    last: NaiveDate,
    by_subjects: bool,
) -> BTreeMap<CellIndex, u32> {
    let mut cells: KeyMap<CellIndex, (Keyed, KeySet<u64>)> = KeyMap::default();
    for record in records
        .into_iter()
        .filter(|record| (first..=last).contains(&record.occurred_on))
    {
        let Some(cell) = record.cell.parent(resolution) else {
            continue;
        };
        let (figure, seen) = cells.entry(cell).or_default();
        if !by_subjects {
            figure.add(record.record_key);
        } else if seen.insert(record.subject) {
            figure.add(child_key(record.subject));
        }
    }
    cells
        .into_iter()
        .map(|(cell, (figure, _))| (cell, perturbed(figure, 1)))
        .collect()
}

/// Whole closed periods: what a cross-boundary answer covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedWindow {
    /// Quarters or months.
    pub step: Step,
    /// The periods' first days, ascending.
    pub starts: Vec<NaiveDate>,
    /// The last day of the last period.
    pub last: NaiveDate,
    /// The first day of a period that was asked for but has not ended (or ended fewer than
    /// [`SETTLE_DAYS`] days ago), and was left out.
    pub left_out: Option<NaiveDate>,
}

impl ClosedWindow {
    /// The first and last day of each period.
    #[must_use]
    pub fn periods(&self) -> Vec<(NaiveDate, NaiveDate)> {
        self.starts
            .iter()
            .enumerate()
            .map(|(i, start)| {
                let last = self
                    .starts
                    .get(i + 1)
                    .and_then(|next| next.pred_opt())
                    .unwrap_or(self.last);
                (*start, last)
            })
            .collect()
    }

    /// The first day of the first period.
    #[must_use]
    pub fn first(&self) -> NaiveDate {
        self.starts.first().copied().unwrap_or(self.last)
    }
}

/// Why no closed window answers a question.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// `from` is after `to`.
    #[error("`from` ({from}) is after `to` ({to})")]
    Reversed {
        /// The asked first day.
        from: NaiveDate,
        /// The asked last day.
        to: NaiveDate,
    },
    /// Nothing asked for has ended yet.
    #[error(
        "no {step} from {from} has ended {SETTLE_DAYS} days ago yet: figures that leave a partnership cover closed periods only, from {SETTLE_DAYS} days after they end (when agencies' late records are in)"
    )]
    NothingClosed {
        /// `quarter` or `month`.
        step: &'static str,
        /// The first day asked for.
        from: NaiveDate,
    },
    /// More periods than allowed.
    #[error("{periods} periods is more than one answer covers (at most {max})")]
    TooMany {
        /// Periods asked for.
        periods: usize,
        /// The most allowed.
        max: usize,
    },
    /// A date outside the calendar chrono handles.
    #[error("the dates are out of range")]
    OutOfRange,
}

/// The name of a step as people write it.
const fn step_name(step: Step) -> &'static str {
    match step {
        Step::Quarter => "quarter",
        Step::Month => "month",
        Step::Week => "week",
    }
}

/// The whole closed periods (quarters or months) from the one holding `from` to the one
/// holding `to`. `to` snaps to the end of its period; periods not ended [`SETTLE_DAYS`] days
/// before `today` are left out (the first of them is named in [`ClosedWindow::left_out`]). Without `to`, the last closed
/// period; without `from`, `default_periods` periods back from `to`'s.
///
/// # Errors
/// [`WindowError`] when `from` is after `to`, nothing asked for has ended, or more than
/// `max_periods` periods are asked for.
pub fn closed_window(
    step: Step,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    today: NaiveDate,
    default_periods: u32,
    max_periods: usize,
) -> Result<ClosedWindow, WindowError> {
    let step = match step {
        Step::Week => Step::Month,
        other => other,
    };
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(WindowError::Reversed { from, to });
    }
    let settled = today
        .checked_sub_days(chrono::Days::new(SETTLE_DAYS))
        .ok_or(WindowError::OutOfRange)?;
    let open = step.start_of(settled);
    let last_closed = open.pred_opt().ok_or(WindowError::OutOfRange)?;
    let asked_end = match to {
        Some(to) => next_start(step, step.start_of(to))?
            .pred_opt()
            .ok_or(WindowError::OutOfRange)?,
        None => last_closed,
    };
    let left_out = (asked_end > last_closed).then_some(open);
    let last = asked_end.min(last_closed);
    let first = match from {
        Some(from) => step.start_of(from),
        None => {
            let mut start = step.start_of(last);
            for _ in 1..default_periods.max(1) {
                start = previous_start(step, start)?;
            }
            start
        }
    };
    if first > last {
        return Err(WindowError::NothingClosed {
            step: step_name(step),
            from: first,
        });
    }
    let mut starts = Vec::new();
    let mut start = first;
    while start <= last {
        if starts.len() == max_periods {
            let periods = periods_between(step, first, last);
            return Err(WindowError::TooMany {
                periods,
                max: max_periods,
            });
        }
        starts.push(start);
        start = next_start(step, start)?;
    }
    Ok(ClosedWindow {
        step,
        starts,
        last,
        left_out,
    })
}

/// How many periods of `step` from `first` to `last` (both period starts or within).
fn periods_between(step: Step, first: NaiveDate, last: NaiveDate) -> usize {
    use chrono::Datelike as _;
    let months = (last.year() - first.year()) * 12 + last.month0().cast_signed()
        - first.month0().cast_signed();
    let per = if step == Step::Quarter { 3 } else { 1 };
    usize::try_from(months / per + 1).unwrap_or(usize::MAX)
}

fn next_start(step: Step, start: NaiveDate) -> Result<NaiveDate, WindowError> {
    let months = if step == Step::Quarter { 3 } else { 1 };
    start
        .checked_add_months(chrono::Months::new(months))
        .ok_or(WindowError::OutOfRange)
}

fn previous_start(step: Step, start: NaiveDate) -> Result<NaiveDate, WindowError> {
    let months = if step == Step::Quarter { 3 } else { 1 };
    start
        .checked_sub_months(chrono::Months::new(months))
        .ok_or(WindowError::OutOfRange)
}

/// The label of a period: `2026-Q1` or `2026-01`.
#[must_use]
pub fn label(step: Step, start: NaiveDate) -> String {
    use chrono::Datelike as _;
    match step {
        Step::Quarter => format!("{}-Q{}", start.year(), start.month0() / 3 + 1),
        _ => start.format("%Y-%m").to_string(),
    }
}

#[cfg(test)]
mod tests;
