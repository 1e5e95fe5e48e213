//! The grid: case records counted per H3 cell at a chosen resolution, after filters.
//!
//! Per cell: records, distinct subjects (a child known to three agencies counts once), the
//! agencies and agency kinds contributing, the first and last date, and the multi-agency
//! overlap (subjects known there to two or more agency kinds).

use std::collections::BTreeSet;

use atlas_domain::{AgeBand, AgencyKind, CaseRecord, Indicators, LocationRole, RecordKind, Sex};
use chrono::NaiveDate;
use h3o::{CellIndex, Resolution};

use crate::hashing::{KeyMap, KeySet, SmallMap};

/// How several indicators combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IndicatorMatch {
    /// A record with any of them.
    #[default]
    Any,
    /// A record with all of them.
    All,
}

/// Which records count. Empty sets mean "no restriction".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filter {
    /// First day included.
    pub from: Option<NaiveDate>,
    /// Last day included.
    pub to: Option<NaiveDate>,
    /// Agency kinds.
    pub agency_kinds: BTreeSet<AgencyKind>,
    /// Record kinds.
    pub record_kinds: BTreeSet<RecordKind>,
    /// Indicators, combined by `indicator_match`.
    pub indicators: Indicators,
    /// Any or all of `indicators`.
    pub indicator_match: IndicatorMatch,
    /// Age bands (records without one are excluded when set).
    pub age_bands: BTreeSet<AgeBand>,
    /// Sexes (records without one are excluded when set).
    pub sexes: BTreeSet<Sex>,
    /// Location roles.
    pub location_roles: BTreeSet<LocationRole>,
}

impl Filter {
    /// Whether `record` counts.
    #[must_use]
    pub fn matches(&self, record: &CaseRecord) -> bool {
        fn within<T: Ord>(set: &BTreeSet<T>, value: &T) -> bool {
            set.is_empty() || set.contains(value)
        }
        fn optional<T: Ord>(set: &BTreeSet<T>, value: Option<&T>) -> bool {
            set.is_empty() || value.is_some_and(|value| set.contains(value))
        }
        self.from.is_none_or(|from| record.occurred_on >= from)
            && self.to.is_none_or(|to| record.occurred_on <= to)
            && within(&self.agency_kinds, &record.agency_kind)
            && within(&self.record_kinds, &record.record_kind)
            && within(&self.location_roles, &record.location_role)
            && optional(&self.age_bands, record.age_band.as_ref())
            && optional(&self.sexes, record.sex.as_ref())
            && (self.indicators.is_empty()
                || match self.indicator_match {
                    IndicatorMatch::Any => !self.indicators.is_disjoint(record.indicators),
                    IndicatorMatch::All => self.indicators.is_subset(record.indicators),
                })
    }
}

/// How many distinct subjects have a record passing `filter` within the neighbourhood of each
/// of `cells` (at `resolution`, coarser than or equal to the records' 9): its `k` rings, those
/// of `within` only (the study area), in the order given, counted up to `enough` (a hot spot's
/// minimum support asks only whether there are that many). The support of a hot spot, which
/// one child's many records cannot give.
#[must_use]
pub fn subjects_nearby<'a>(
    records: impl IntoIterator<Item = &'a CaseRecord>,
    resolution: Resolution,
    filter: &Filter,
    cells: &[CellIndex],
    k: u32,
    within: &impl Fn(CellIndex) -> bool,
    enough: u32,
) -> Vec<u32> {
    let mut members: KeyMap<CellIndex, Vec<usize>> = KeyMap::default();
    for (position, cell) in cells.iter().enumerate() {
        for member in cell.grid_disk::<Vec<_>>(k) {
            if within(member) {
                members.entry(member).or_default().push(position);
            }
        }
    }
    let enough = usize::try_from(enough).unwrap_or(usize::MAX);
    // Hash sets that stop growing at `enough`: a dense neighbourhood holds tens of thousands of
    // records, each of which would otherwise be inserted into every hot cell whose ring holds it.
    let mut subjects: Vec<KeySet<u64>> = vec![KeySet::default(); cells.len()];
    for record in records.into_iter().filter(|record| filter.matches(record)) {
        if let Some(positions) = record
            .cell
            .parent(resolution)
            .and_then(|cell| members.get(&cell))
        {
            for position in positions {
                let set = &mut subjects[*position];
                if set.len() < enough {
                    set.insert(record.subject);
                }
            }
        }
    }
    subjects
        .iter()
        .map(|set| u32::try_from(set.len()).unwrap_or(u32::MAX))
        .collect()
}

/// The value of each cell at `resolution` (coarser than or equal to the records' 9) holding a
/// record that passes `filter`: its distinct subjects when `by_subjects`, otherwise its records.
/// What a hotspot analysis counts, without the rest of the [`grid`].
#[must_use]
pub fn cell_values<'a>(
    records: impl IntoIterator<Item = &'a CaseRecord>,
    resolution: Resolution,
    filter: &Filter,
    by_subjects: bool,
) -> KeyMap<CellIndex, u32> {
    if !by_subjects {
        let mut values: KeyMap<CellIndex, u32> = KeyMap::default();
        for record in records.into_iter().filter(|record| filter.matches(record)) {
            if let Some(cell) = record.cell.parent(resolution) {
                *values.entry(cell).or_default() += 1;
            }
        }
        return values;
    }
    let mut children: KeyMap<CellIndex, SmallMap<u64, (), 4>> = KeyMap::default();
    for record in records.into_iter().filter(|record| filter.matches(record)) {
        if let Some(cell) = record.cell.parent(resolution) {
            children
                .entry(cell)
                .or_insert_with(SmallMap::new)
                .entry(record.subject);
        }
    }
    children
        .into_iter()
        .map(|(cell, children)| (cell, u32::try_from(children.len()).unwrap_or(u32::MAX)))
        .collect()
}

/// One cell of the grid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GridCell {
    /// The cell at the grid's resolution.
    pub cell: CellIndex,
    /// Records.
    pub records: u32,
    /// Distinct subjects.
    pub subjects: u32,
    /// Distinct agencies.
    pub agencies: u32,
    /// The kinds of the contributing agencies.
    pub agency_kinds: AgencyKinds,
    /// Subjects known in this cell to two or more agency kinds.
    pub multi_agency_subjects: u32,
    /// The earliest date.
    pub first: NaiveDate,
    /// The latest date.
    pub last: NaiveDate,
}

/// Counts the records that pass `filter` per cell at `resolution` (coarser than or equal to the
/// records' resolution 9), sorted by cell.
#[must_use]
pub fn grid<'a>(
    records: impl IntoIterator<Item = &'a CaseRecord>,
    resolution: Resolution,
    filter: &Filter,
) -> Vec<GridCell> {
    struct Accumulator {
        records: u32,
        /// Each child's agency kinds, as bits of their positions in `AgencyKind::ALL`.
        subjects: SmallMap<u64, u16, 4>,
        agencies: SmallMap<u32, (), 4>,
        first: NaiveDate,
        last: NaiveDate,
    }
    // The accumulators in a vector, found by a map of small entries: growing a map of the
    // accumulators themselves moved them all at every doubling.
    let mut position: KeyMap<CellIndex, usize> = KeyMap::default();
    let mut cells: Vec<Accumulator> = Vec::new();
    for record in records.into_iter().filter(|record| filter.matches(record)) {
        let Some(cell) = record.cell.parent(resolution) else {
            continue;
        };
        let at = *position.entry(cell).or_insert_with(|| {
            cells.push(Accumulator {
                records: 0,
                subjects: SmallMap::new(),
                agencies: SmallMap::new(),
                first: record.occurred_on,
                last: record.occurred_on,
            });
            cells.len() - 1
        });
        let accumulated = &mut cells[at];
        accumulated.records += 1;
        *accumulated.subjects.entry(record.subject) |= kind_bit(record.agency_kind);
        accumulated.agencies.entry(record.agency);
        accumulated.first = accumulated.first.min(record.occurred_on);
        accumulated.last = accumulated.last.max(record.occurred_on);
    }
    // Sorted by cell through (cell, position) pairs: sorting the accumulators moved them whole.
    let mut order: Vec<(CellIndex, usize)> = position.into_iter().collect();
    order.sort_unstable();
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    order
        .into_iter()
        .map(|(cell, at)| (cell, &cells[at]))
        .map(|(cell, accumulated)| GridCell {
            cell,
            records: accumulated.records,
            subjects: count(accumulated.subjects.len()),
            agencies: count(accumulated.agencies.len()),
            agency_kinds: AgencyKinds(
                accumulated
                    .subjects
                    .values()
                    .fold(0, |all, kinds| all | kinds),
            ),
            multi_agency_subjects: count(
                accumulated
                    .subjects
                    .values()
                    .filter(|kinds| kinds.count_ones() >= 2)
                    .count(),
            ),
            first: accumulated.first,
            last: accumulated.last,
        })
        .collect()
}

// Every agency kind has a bit of a u16.
const _: () = assert!(AgencyKind::ALL.len() <= 16);

/// The bit of an agency kind: its position in [`AgencyKind::ALL`].
fn kind_bit(kind: AgencyKind) -> u16 {
    AgencyKind::ALL
        .iter()
        .position(|known| *known == kind)
        .map_or(0, |position| 1 << position)
}

/// A set of agency kinds, as bits of their positions in [`AgencyKind::ALL`]: a grid cell holds
/// one, and a set allocated per cell cost more than the counting at resolution 9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AgencyKinds(u16);

impl AgencyKinds {
    /// The kinds, in the order of [`AgencyKind::ALL`].
    pub fn iter(self) -> impl Iterator<Item = AgencyKind> {
        AgencyKind::ALL
            .iter()
            .enumerate()
            .filter(move |(position, _)| self.0 & (1 << position) != 0)
            .map(|(_, kind)| *kind)
    }

    /// How many kinds.
    #[must_use]
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether there are none.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl FromIterator<AgencyKind> for AgencyKinds {
    fn from_iter<I: IntoIterator<Item = AgencyKind>>(kinds: I) -> Self {
        Self(
            kinds
                .into_iter()
                .fold(0, |bits, kind| bits | kind_bit(kind)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atlas_domain::Indicator;
    use proptest::prelude::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn record(
        cell: CellIndex,
        subject: u64,
        agency: u32,
        kind: AgencyKind,
        on: &str,
    ) -> CaseRecord {
        CaseRecord {
            cell,
            subject,
            record_key: 0,
            agency,
            agency_kind: kind,
            record_kind: RecordKind::Incident,
            occurred_on: day(on),
            location_role: LocationRole::Incident,
            indicators: [Indicator::Missing].into(),
            age_band: Some(AgeBand::ThirteenToFifteen),
            sex: Some(Sex::Female),
        }
    }

    fn blackpool() -> CellIndex {
        h3o::LatLng::new(53.8175, -3.0357)
            .unwrap()
            .to_cell(Resolution::Nine)
    }

    #[test]
    fn a_child_known_to_two_agencies_counts_once_and_as_overlap() {
        let cell = blackpool();
        let records = [
            record(cell, 1, 0, AgencyKind::Police, "2024-01-05"),
            record(cell, 1, 1, AgencyKind::SocialCare, "2024-03-01"),
            record(cell, 2, 0, AgencyKind::Police, "2024-02-10"),
        ];
        let grid = grid(&records, Resolution::Eight, &Filter::default());
        assert_eq!(grid.len(), 1);
        let only = &grid[0];
        assert_eq!(only.cell, cell.parent(Resolution::Eight).unwrap());
        assert_eq!((only.records, only.subjects, only.agencies), (3, 2, 2));
        assert_eq!(only.multi_agency_subjects, 1);
        assert_eq!(
            (only.first, only.last),
            (day("2024-01-05"), day("2024-03-01"))
        );
        assert_eq!(
            only.agency_kinds.iter().collect::<Vec<_>>(),
            [AgencyKind::Police, AgencyKind::SocialCare]
        );
    }

    #[test]
    fn one_child_in_many_nearby_cells_is_one_child_nearby() {
        let centre = blackpool();
        let ring: Vec<CellIndex> = centre.grid_disk(1);
        let mut records: Vec<CaseRecord> = ring
            .iter()
            .map(|cell| record(*cell, 7, 0, AgencyKind::Police, "2024-01-05"))
            .collect();
        records.push(record(centre, 8, 0, AgencyKind::Police, "2024-01-06"));
        let far = centre.grid_disk::<Vec<_>>(5).into_iter().last().unwrap();
        records.push(record(far, 9, 0, AgencyKind::Police, "2024-01-07"));
        let everywhere = |_| true;
        let nearby = subjects_nearby(
            &records,
            Resolution::Nine,
            &Filter::default(),
            &[centre, far],
            1,
            &everywhere,
            u32::MAX,
        );
        assert_eq!(nearby, vec![2, 1]);
        // Counted up to what is enough.
        let capped = subjects_nearby(
            &records,
            Resolution::Nine,
            &Filter::default(),
            &[centre, far],
            1,
            &everywhere,
            1,
        );
        assert_eq!(capped, vec![1, 1]);
        // Outside the study area a record is not in the neighbourhood.
        let centre_only = |cell| cell == centre;
        let inside = subjects_nearby(
            &records,
            Resolution::Nine,
            &Filter::default(),
            &[centre],
            1,
            &centre_only,
            u32::MAX,
        );
        assert_eq!(inside, vec![2]);
    }

    #[test]
    fn filters_combine_and_indicators_match_any_or_all() {
        let cell = blackpool();
        let mut with_both = record(cell, 1, 0, AgencyKind::Police, "2024-01-05");
        with_both.indicators = [Indicator::Missing, Indicator::GiftsMoney].into();
        let mut unknown_age = record(cell, 2, 0, AgencyKind::Health, "2024-06-01");
        unknown_age.age_band = None;
        let records = [with_both, unknown_age];
        let total = |filter: &Filter| -> u32 {
            grid(&records, Resolution::Nine, filter)
                .iter()
                .map(|cell| cell.records)
                .sum()
        };
        let mut filter = Filter {
            indicators: [Indicator::GiftsMoney, Indicator::Missing].into(),
            indicator_match: IndicatorMatch::All,
            ..Filter::default()
        };
        assert_eq!(total(&filter), 1);
        filter.indicator_match = IndicatorMatch::Any;
        assert_eq!(total(&filter), 2);
        let by_age = Filter {
            age_bands: [AgeBand::ThirteenToFifteen].into(),
            ..Filter::default()
        };
        assert_eq!(
            total(&by_age),
            1,
            "a record without an age band is excluded"
        );
        let by_period = Filter {
            from: Some(day("2024-02-01")),
            to: Some(day("2024-12-31")),
            agency_kinds: [AgencyKind::Health].into(),
            ..Filter::default()
        };
        assert_eq!(total(&by_period), 1);
    }

    /// Records in the cells within `rings` of Blackpool's centre, one per (cell, subject,
    /// agency) offset, the agency of one of four kinds.
    fn records_around(rings: u32, offsets: &[(u32, u64, u32)]) -> Vec<CaseRecord> {
        let disk: Vec<CellIndex> = blackpool().grid_disk(rings);
        let kinds = [
            AgencyKind::Police,
            AgencyKind::SocialCare,
            AgencyKind::Health,
            AgencyKind::Education,
        ];
        offsets
            .iter()
            .map(|(cell, subject, agency)| {
                record(
                    disk[*cell as usize % disk.len()],
                    *subject,
                    *agency,
                    kinds[*agency as usize % kinds.len()],
                    "2024-05-01",
                )
            })
            .collect()
    }

    proptest! {
        /// Whatever the resolution, every passing record is counted once, subjects never
        /// exceed records, and coarser grids merge finer ones.
        #[test]
        fn grids_account_for_every_record(
            offsets in prop::collection::vec((0_u32..400, 0_u64..30, 0_u32..4), 1..200),
        ) {
            let records = records_around(10, &offsets);
            let fine = grid(&records, Resolution::Nine, &Filter::default());
            let coarse = grid(&records, Resolution::Seven, &Filter::default());
            let sum = |grid: &[GridCell]| grid.iter().map(|cell| cell.records).sum::<u32>();
            prop_assert_eq!(sum(&fine) as usize, records.len());
            prop_assert_eq!(sum(&coarse) as usize, records.len());
            for cell in fine.iter().chain(&coarse) {
                prop_assert!(cell.subjects <= cell.records);
                prop_assert!(cell.multi_agency_subjects <= cell.subjects);
                prop_assert!(cell.agencies as usize >= cell.agency_kinds.len());
            }
            prop_assert!(coarse.len() <= fine.len());
        }

        /// The grid's counts are those of counting each cell's records by hand, and a hotspot
        /// analysis's values are the grid's.
        #[test]
        fn grids_count_as_by_hand_and_cell_values_agree(
            offsets in prop::collection::vec((0_u32..40, 0_u64..12, 0_u32..4), 1..300),
        ) {
            let records = records_around(3, &offsets);
            for resolution in [Resolution::Nine, Resolution::Eight] {
                let counted = grid(&records, resolution, &Filter::default());
                for cell in &counted {
                    let here: Vec<&CaseRecord> = records
                        .iter()
                        .filter(|record| record.cell.parent(resolution) == Some(cell.cell))
                        .collect();
                    let subjects: BTreeSet<u64> = here.iter().map(|record| record.subject).collect();
                    let agencies: BTreeSet<u32> = here.iter().map(|record| record.agency).collect();
                    let multi = subjects
                        .iter()
                        .filter(|subject| {
                            here.iter()
                                .filter(|record| record.subject == **subject)
                                .map(|record| record.agency_kind)
                                .collect::<BTreeSet<_>>()
                                .len()
                                >= 2
                        })
                        .count();
                    let agency_kinds: AgencyKinds = here.iter().map(|record| record.agency_kind).collect();
                    prop_assert_eq!(cell.records as usize, here.len());
                    prop_assert_eq!(cell.subjects as usize, subjects.len());
                    prop_assert_eq!(cell.agencies as usize, agencies.len());
                    prop_assert_eq!(cell.multi_agency_subjects as usize, multi);
                    prop_assert_eq!(&cell.agency_kinds, &agency_kinds);
                }
                prop_assert_eq!(counted.iter().map(|cell| cell.records as usize).sum::<usize>(), records.len());
                for by_subjects in [true, false] {
                    let values = cell_values(&records, resolution, &Filter::default(), by_subjects);
                    prop_assert_eq!(values.len(), counted.len());
                    for cell in &counted {
                        let expected = if by_subjects { cell.subjects } else { cell.records };
                        prop_assert_eq!(values.get(&cell.cell).copied(), Some(expected));
                    }
                }
            }
        }
    }
}
