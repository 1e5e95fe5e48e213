//! The tables of a partnership's problem profile of one quarter, counted from its case records
//! with their keys, so that the same tallies give the partnership's own (exact) edition and,
//! through the publication gate, the board edition for circulation.

use atlas_domain::{
    AgeBand, AgencyKind, CaseRecord, Indicator, Indicators, LocationRole, RecordKind, Sex,
};
use chrono::NaiveDate;

use crate::gate::{Keyed, child_key};
use crate::hashing::KeyMap;

/// How many indicator combinations a profile lists.
pub const COMBINATIONS_LISTED: usize = 5;

/// The tallies of one quarter's records: every count with its cell key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuarterTally {
    /// Distinct children with a record in the quarter.
    pub children: Keyed,
    /// Records in the quarter.
    pub records: Keyed,
    /// Children whose first record of all falls in the quarter.
    pub new_children: Keyed,
    /// Children with a record before the quarter too.
    pub known_children: Keyed,
    /// Children by age band (rows: [`AgeBand::ALL`], then not recorded) and sex (columns:
    /// [`Sex::ALL`]), each child once, by its latest record of the quarter.
    pub children_by_age_and_sex: Vec<Vec<Keyed>>,
    /// Children with each indicator on some record of the quarter, in the order of
    /// [`Indicator::ALL`].
    pub children_with_indicator: Vec<Keyed>,
    /// The most common combinations of two or more indicators among children (each child's
    /// indicators of the quarter together), most children first, at most
    /// [`COMBINATIONS_LISTED`].
    pub combinations: Vec<(Indicators, Keyed)>,
    /// Children with no indicator on any record of the quarter.
    pub children_without_indicator: Keyed,
    /// Records by record kind, in the order of [`RecordKind::ALL`].
    pub records_by_kind: Vec<Keyed>,
    /// Records by location role, in the order of [`LocationRole::ALL`].
    pub records_by_location_role: Vec<Keyed>,
    /// Records by agency kind, in the order of [`AgencyKind::ALL`].
    pub records_by_agency_kind: Vec<Keyed>,
    /// Children with two or more records in the quarter.
    pub children_with_repeated_records: Keyed,
    /// Children known in the quarter to one, two, and three or more agency kinds.
    pub children_by_agency_kinds: [Keyed; 3],
    /// Children known in the quarter to one agency only, by that agency's kind (in the order
    /// of [`AgencyKind::ALL`]): possible missed referrals.
    pub children_known_to_one_agency: Vec<Keyed>,
    /// Children known in the quarter to several agencies, all of one kind (two police forces),
    /// by that kind: with `children_known_to_one_agency`, the children known to one kind of
    /// agency.
    pub children_known_to_several_agencies_of_one_kind: Vec<Keyed>,
}

/// How a record ranks as the one describing its child: the later, then the one with an age
/// band, then the one with a sex recorded.
type Recency = (NaiveDate, bool, bool);

/// What the quarter's records say of one child.
#[derive(Default)]
struct Child {
    records: u32,
    indicators: Indicators,
    latest: Option<(Recency, Option<AgeBand>, Option<Sex>)>,
    agencies: Vec<u32>,
    kinds: Vec<AgencyKind>,
    known_before: bool,
}

/// The position of `value` in `all` (every vocabulary value has one).
fn position<T: PartialEq>(all: &[T], value: &T) -> usize {
    all.iter().position(|known| known == value).unwrap_or(0)
}

/// Tallies `records` on the days from `first` to `last`; records before `first` decide only
/// whether a child was known already.
#[must_use]
pub fn tally<'a>(
    records: impl IntoIterator<Item = &'a CaseRecord>,
    first: NaiveDate,
    last: NaiveDate,
) -> QuarterTally {
    let mut tally = QuarterTally {
        children_by_age_and_sex: vec![
            vec![Keyed::default(); Sex::ALL.len()];
            AgeBand::ALL.len() + 1
        ],
        children_with_indicator: vec![Keyed::default(); Indicator::ALL.len()],
        records_by_kind: vec![Keyed::default(); RecordKind::ALL.len()],
        records_by_location_role: vec![Keyed::default(); LocationRole::ALL.len()],
        records_by_agency_kind: vec![Keyed::default(); AgencyKind::ALL.len()],
        children_known_to_one_agency: vec![Keyed::default(); AgencyKind::ALL.len()],
        children_known_to_several_agencies_of_one_kind: vec![
            Keyed::default();
            AgencyKind::ALL.len()
        ],
        ..QuarterTally::default()
    };
    let mut children: KeyMap<u64, Child> = KeyMap::default();
    let mut earlier: Vec<u64> = Vec::new();
    for record in records {
        if record.occurred_on < first {
            earlier.push(record.subject);
            continue;
        }
        if record.occurred_on > last {
            continue;
        }
        tally.records.add(record.record_key);
        tally.records_by_kind[position(RecordKind::ALL, &record.record_kind)]
            .add(record.record_key);
        tally.records_by_location_role[position(LocationRole::ALL, &record.location_role)]
            .add(record.record_key);
        tally.records_by_agency_kind[position(AgencyKind::ALL, &record.agency_kind)]
            .add(record.record_key);
        let child = children.entry(record.subject).or_default();
        child.records += 1;
        child.indicators = child
            .indicators
            .iter()
            .chain(record.indicators.iter())
            .collect();
        // The latest record describes the child; on one day, the record with an age band, then
        // one with a sex recorded.
        let known_sex = record.sex.is_some_and(|sex| sex != Sex::Unknown);
        let rank = (record.occurred_on, record.age_band.is_some(), known_sex);
        if child.latest.is_none_or(|(latest, ..)| rank > latest) {
            child.latest = Some((rank, record.age_band, record.sex));
        }
        if !child.agencies.contains(&record.agency) {
            child.agencies.push(record.agency);
        }
        if !child.kinds.contains(&record.agency_kind) {
            child.kinds.push(record.agency_kind);
        }
    }
    for subject in earlier {
        if let Some(child) = children.get_mut(&subject) {
            child.known_before = true;
        }
    }
    let mut combinations: KeyMap<Indicators, Keyed> = KeyMap::default();
    for (subject, child) in &children {
        let key = child_key(*subject);
        tally.children.add(key);
        if child.known_before {
            tally.known_children.add(key);
        } else {
            tally.new_children.add(key);
        }
        let (age_band, sex) = child
            .latest
            .map_or((None, None), |(_, age_band, sex)| (age_band, sex));
        let row = age_band.map_or(AgeBand::ALL.len(), |band| position(AgeBand::ALL, &band));
        let column = position(Sex::ALL, &sex.unwrap_or(Sex::Unknown));
        tally.children_by_age_and_sex[row][column].add(key);
        for indicator in child.indicators.iter() {
            tally.children_with_indicator[position(Indicator::ALL, &indicator)].add(key);
        }
        match child.indicators.iter().count() {
            0 => tally.children_without_indicator.add(key),
            1 => {}
            _ => combinations.entry(child.indicators).or_default().add(key),
        }
        if child.records >= 2 {
            tally.children_with_repeated_records.add(key);
        }
        tally.children_by_agency_kinds[child.kinds.len().clamp(1, 3) - 1].add(key);
        match (child.agencies.as_slice(), child.kinds.as_slice()) {
            ([_], [kind]) => {
                tally.children_known_to_one_agency[position(AgencyKind::ALL, kind)].add(key);
            }
            (_, [kind]) => tally.children_known_to_several_agencies_of_one_kind
                [position(AgencyKind::ALL, kind)]
            .add(key),
            _ => {}
        }
    }
    let mut combinations: Vec<(Indicators, Keyed)> = combinations.into_iter().collect();
    // Most children first; equal counts in the order of the indicators, so the list is stable.
    combinations.sort_by(|(a, a_count), (b, b_count)| {
        b_count
            .count
            .cmp(&a_count.count)
            .then_with(|| order(*a).cmp(&order(*b)))
    });
    combinations.truncate(COMBINATIONS_LISTED);
    tally.combinations = combinations;
    tally
}

/// A stable order of indicator sets: by their indicators' positions.
fn order(indicators: Indicators) -> Vec<usize> {
    indicators
        .iter()
        .map(|indicator| position(Indicator::ALL, &indicator))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use h3o::{LatLng, Resolution};
    use proptest::prelude::*;

    fn record(
        subject: u64,
        agency: u32,
        kind: AgencyKind,
        on: &str,
        indicators: &[Indicator],
        age_band: Option<AgeBand>,
    ) -> CaseRecord {
        CaseRecord {
            cell: LatLng::new(53.79, -2.24)
                .expect("valid")
                .to_cell(Resolution::Nine),
            subject,
            record_key: 7,
            agency,
            agency_kind: kind,
            record_kind: RecordKind::Referral,
            occurred_on: on.parse().expect("date"),
            location_role: LocationRole::Home,
            indicators: indicators.iter().copied().collect(),
            age_band,
            sex: Some(Sex::Female),
        }
    }

    fn quarter() -> (NaiveDate, NaiveDate) {
        (
            "2026-01-01".parse().expect("date"),
            "2026-03-31".parse().expect("date"),
        )
    }

    #[test]
    fn children_are_counted_once_with_their_latest_age_band_and_all_their_indicators() {
        use AgencyKind::{Police, SocialCare, Vcs};
        use Indicator::{Missing, OlderAssociate, SubstanceMisuse};
        let records = [
            // Child 1: known before, two records from two agency kinds, turned 13 in March.
            record(1, 0, Police, "2025-11-02", &[], Some(AgeBand::TenToTwelve)),
            record(
                1,
                0,
                Police,
                "2026-01-10",
                &[Missing],
                Some(AgeBand::TenToTwelve),
            ),
            record(
                1,
                1,
                SocialCare,
                "2026-03-02",
                &[SubstanceMisuse],
                Some(AgeBand::ThirteenToFifteen),
            ),
            // Child 2: new, one record from the voluntary sector only.
            record(2, 2, Vcs, "2026-02-14", &[Missing, SubstanceMisuse], None),
            // Child 3: new, two records from one police force, no indicator.
            record(
                3,
                0,
                Police,
                "2026-02-01",
                &[],
                Some(AgeBand::SixteenToSeventeen),
            ),
            record(
                3,
                0,
                Police,
                "2026-02-03",
                &[],
                Some(AgeBand::SixteenToSeventeen),
            ),
            // After the quarter: not counted.
            record(4, 0, Police, "2026-04-01", &[OlderAssociate], None),
        ];
        let (first, last) = quarter();
        let tally = tally(&records, first, last);
        assert_eq!(tally.children.count, 3);
        assert_eq!(tally.records.count, 5);
        assert_eq!(
            (tally.new_children.count, tally.known_children.count),
            (2, 1)
        );
        let band = |band: Option<AgeBand>| {
            let row = band.map_or(AgeBand::ALL.len(), |band| position(AgeBand::ALL, &band));
            tally.children_by_age_and_sex[row][position(Sex::ALL, &Sex::Female)].count
        };
        assert_eq!(band(Some(AgeBand::ThirteenToFifteen)), 1);
        assert_eq!(band(Some(AgeBand::TenToTwelve)), 0);
        assert_eq!(band(Some(AgeBand::SixteenToSeventeen)), 1);
        assert_eq!(band(None), 1);
        let with =
            |indicator| tally.children_with_indicator[position(Indicator::ALL, &indicator)].count;
        assert_eq!(
            (with(Missing), with(SubstanceMisuse), with(OlderAssociate)),
            (2, 2, 0)
        );
        assert_eq!(tally.combinations.len(), 1);
        assert_eq!(
            tally.combinations[0].0,
            Indicators::from([Missing, SubstanceMisuse])
        );
        assert_eq!(tally.combinations[0].1.count, 2);
        assert_eq!(tally.children_without_indicator.count, 1);
        assert_eq!(tally.children_with_repeated_records.count, 2);
        let kinds: Vec<u32> = tally
            .children_by_agency_kinds
            .iter()
            .map(|k| k.count)
            .collect();
        assert_eq!(kinds, [2, 1, 0]);
        let alone =
            |kind| tally.children_known_to_one_agency[position(AgencyKind::ALL, &kind)].count;
        assert_eq!((alone(Police), alone(Vcs), alone(SocialCare)), (1, 1, 0));
        assert_eq!(
            tally.records_by_agency_kind[position(AgencyKind::ALL, &Police)].count,
            3
        );
    }

    proptest! {
        #[test]
        fn partitions_of_the_children_add_up_to_the_children(
            rows in prop::collection::vec((0_u64..40, 0_u32..4, 0_i64..200, 0_u16..1024), 0..120)
        ) {
            let start: NaiveDate = "2025-12-01".parse().expect("date");
            let records: Vec<CaseRecord> = rows
                .iter()
                .map(|(subject, agency, day, bits)| CaseRecord {
                    occurred_on: start + chrono::Days::new(u64::try_from(*day).expect("positive")),
                    indicators: Indicator::ALL
                        .iter()
                        .enumerate()
                        .filter(|(bit, _)| bits & (1 << bit) != 0)
                        .map(|(_, indicator)| *indicator)
                        .collect(),
                    // An agency has one kind; two agencies share each kind.
                    ..record(*subject, *agency, AgencyKind::ALL[*agency as usize % 2], "2026-01-01", &[], None)
                })
                .collect();
            let (first, last) = quarter();
            let tally = tally(&records, first, last);
            let children = tally.children.count;
            prop_assert_eq!(tally.new_children.count + tally.known_children.count, children);
            let by_age: u32 = tally.children_by_age_and_sex.iter().flatten().map(|k| k.count).sum();
            prop_assert_eq!(by_age, children);
            let by_kinds: u32 = tally.children_by_agency_kinds.iter().map(|k| k.count).sum();
            prop_assert_eq!(by_kinds, children);
            let records_in = records.iter().filter(|r| (first..=last).contains(&r.occurred_on)).count();
            prop_assert_eq!(tally.records.count as usize, records_in);
            let by_kind: u32 = tally.records_by_kind.iter().map(|k| k.count).sum();
            prop_assert_eq!(by_kind, tally.records.count);
            let alone: u32 = tally.children_known_to_one_agency.iter().map(|k| k.count).sum();
            let several: u32 = tally
                .children_known_to_several_agencies_of_one_kind
                .iter()
                .map(|k| k.count)
                .sum();
            prop_assert_eq!(alone + several, tally.children_by_agency_kinds[0].count);
            prop_assert!(tally.children_with_repeated_records.count <= children);
            for (_, combination) in &tally.combinations {
                prop_assert!(combination.count <= children - tally.children_without_indicator.count);
            }
        }
    }
}
