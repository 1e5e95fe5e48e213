//! A partnership's figures beside its neighbours': records and distinct children per period, by
//! agency kind and indicator, and rates per 10,000 children aged 0 to 17. The counting is here;
//! which figures are disclosure-controlled is the caller's (docs/privacy.md).

use atlas_domain::{AgencyKind, Indicator};
use chrono::NaiveDate;

use crate::hashing::KeySet;
use atlas_domain::CaseRecord;

/// One partnership's counts over consecutive periods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counts {
    /// Records per period (rows) and agency kind (columns, as [`AgencyKind::ALL`]): an additive
    /// table, protected as a whole when it leaves the partnership.
    pub records: Vec<Vec<u32>>,
    /// Distinct children per period.
    pub children: Vec<u32>,
    /// Distinct children over all the periods (not the sum: a child may appear in several).
    pub children_overall: u32,
    /// Records over all the periods carrying each indicator (as [`Indicator::ALL`]); a record
    /// may carry several, so these do not add up to the records.
    pub indicators: Vec<u32>,
}

/// Counts `records` in the periods starting on `starts` (ascending; each ends the day before
/// the next starts, the last on `end`). Records outside them are left out.
#[must_use]
pub fn count<'a>(
    records: impl IntoIterator<Item = &'a CaseRecord>,
    starts: &[NaiveDate],
    end: NaiveDate,
) -> Counts {
    let periods = starts.len();
    let mut counts = Counts {
        records: vec![vec![0; AgencyKind::ALL.len()]; periods],
        children: vec![0; periods],
        children_overall: 0,
        indicators: vec![0; Indicator::ALL.len()],
    };
    let mut seen: Vec<KeySet<u64>> = vec![KeySet::default(); periods];
    let mut overall: KeySet<u64> = KeySet::default();
    for record in records {
        if record.occurred_on > end {
            continue;
        }
        let Some(period) = starts
            .partition_point(|start| *start <= record.occurred_on)
            .checked_sub(1)
        else {
            continue;
        };
        if let Some(kind) = AgencyKind::ALL
            .iter()
            .position(|kind| *kind == record.agency_kind)
        {
            counts.records[period][kind] += 1;
        }
        if seen[period].insert(record.subject) {
            counts.children[period] += 1;
        }
        overall.insert(record.subject);
        for (position, indicator) in Indicator::ALL.iter().enumerate() {
            if record.indicators.contains(*indicator) {
                counts.indicators[position] += 1;
            }
        }
    }
    counts.children_overall = u32::try_from(overall.len()).unwrap_or(u32::MAX);
    counts
}

/// Children per 10,000 children aged 0 to 17, to one decimal place; `None` without a
/// population.
#[must_use]
pub fn rate_per_10000(children: u32, population: i64) -> Option<f64> {
    #[expect(clippy::cast_precision_loss, reason = "populations are far below 2^52")]
    (population > 0)
        .then(|| (f64::from(children) * 10_000.0 / population as f64 * 10.0).round() / 10.0)
}

/// Quarters in a year: a quarter's rate is annualised by this factor, so that rates of quarters
/// and months (times 12) compare, and every product's `rate_per_10000` means the same.
pub const QUARTERS_A_YEAR: u32 = 4;

/// A quarter's annualised rate, in words.
pub const ANNUALISED_QUARTER: &str =
    "distinct children in the quarter per 10,000 children aged 0-17, annualised (times 4)";

/// Which way a rate moved from one period to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The rate rose by more than chance explains.
    Up,
    /// The rate fell by more than chance explains.
    Down,
    /// The change is within what chance explains at the test's level.
    NoClearChange,
}

impl Direction {
    /// Every direction.
    pub const ALL: [Self; 3] = [Self::Up, Self::Down, Self::NoClearChange];
}

/// The significance level at which a change of rate is called up or down.
pub const DIRECTION_ALPHA: f64 = 0.05;

/// Whether `now` children out of `now_population` differ from `before` out of
/// `before_population` by more than chance: the exact conditional test of two Poisson rates
/// (given the total, `now` is binomial with the share of `now_population`; Przyborowski and
/// Wilenski, 1940), two-sided at [`DIRECTION_ALPHA`], the p-value summing every outcome no more
/// likely than the observed one (as R's `binom.test`). `None` without both populations.
#[must_use]
pub fn direction(
    before: u32,
    before_population: i64,
    now: u32,
    now_population: i64,
) -> Option<Direction> {
    if before_population <= 0 || now_population <= 0 {
        return None;
    }
    #[expect(clippy::cast_precision_loss, reason = "populations are far below 2^52")]
    let share = now_population as f64 / (now_population as f64 + before_population as f64);
    let p_value = binomial_two_sided(now, before + now, share);
    if p_value >= DIRECTION_ALPHA {
        return Some(Direction::NoClearChange);
    }
    #[expect(clippy::cast_precision_loss, reason = "populations are far below 2^52")]
    let rising =
        f64::from(now) / now_population as f64 > f64::from(before) / before_population as f64;
    Some(if rising {
        Direction::Up
    } else {
        Direction::Down
    })
}

/// The two-sided exact binomial p-value of `observed` successes in `trials` with probability
/// `share`: the total probability of outcomes no more likely than the observed one.
fn binomial_two_sided(observed: u32, trials: u32, share: f64) -> f64 {
    if trials == 0 {
        return 1.0;
    }
    let n = f64::from(trials);
    let (ln_p, ln_q) = (share.ln(), (1.0 - share).ln());
    let ln_pmf = |k: u32| {
        let k = f64::from(k);
        libm::lgamma(n + 1.0) - libm::lgamma(k + 1.0) - libm::lgamma(n - k + 1.0)
            + k * ln_p
            + (n - k) * ln_q
    };
    // Outcomes as likely as the observed one up to rounding count as no more likely.
    let threshold = ln_pmf(observed) + 1e-7;
    let p_value: f64 = (0..=trials)
        .map(ln_pmf)
        .filter(|ln| *ln <= threshold)
        .map(f64::exp)
        .sum();
    p_value.min(1.0)
}

/// Ranks of rates, highest first (1 for the highest; equal rates share a rank); `None` where
/// there is no rate.
#[must_use]
pub fn ranks(rates: &[Option<f64>]) -> Vec<Option<usize>> {
    rates
        .iter()
        .map(|rate| {
            rate.map(|rate| {
                1 + rates
                    .iter()
                    .flatten()
                    .filter(|other| **other > rate)
                    .count()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exact_binomial_p_value_matches_r() {
        // R's binom.test: 0.04138947 for 15 of 20 and 0.2631760 for 7 of 20 at 0.5; 3 of 10 at 0.2
        // (asymmetric) is 0.4295747, the sum of the outcomes no more likely than 3 (computed
        // exactly with Python's math.comb the same way).
        assert!((binomial_two_sided(15, 20, 0.5) - 0.041_389_47).abs() < 1e-7);
        assert!((binomial_two_sided(7, 20, 0.5) - 0.263_176_0).abs() < 1e-6);
        assert!((binomial_two_sided(3, 10, 0.2) - 0.429_574_7).abs() < 1e-6);
        assert!((binomial_two_sided(0, 0, 0.5) - 1.0).abs() < f64::EPSILON);
    }

    #[test]
    fn a_change_is_called_only_when_chance_does_not_explain_it() {
        // 40 then 30 children in the same population: well within noise.
        assert_eq!(
            direction(40, 100_000, 30, 100_000),
            Some(Direction::NoClearChange)
        );
        // 40 then 80: p < 0.001.
        assert_eq!(direction(40, 100_000, 80, 100_000), Some(Direction::Up));
        assert_eq!(direction(80, 100_000, 40, 100_000), Some(Direction::Down));
        // The same count in a population half the size is a doubled rate.
        assert_eq!(direction(60, 100_000, 60, 50_000), Some(Direction::Up));
        assert_eq!(
            direction(0, 100_000, 0, 100_000),
            Some(Direction::NoClearChange)
        );
        assert_eq!(direction(5, 0, 5, 100), None);
    }
    use atlas_domain::Indicators;
    use atlas_domain::{LocationRole, RecordKind};
    use h3o::{LatLng, Resolution};

    fn record(subject: u64, kind: AgencyKind, on: &str, indicators: &[Indicator]) -> CaseRecord {
        CaseRecord {
            cell: LatLng::new(53.8, -3.0).unwrap().to_cell(Resolution::Nine),
            subject,
            record_key: 0,
            agency: 0,
            agency_kind: kind,
            record_kind: RecordKind::Incident,
            occurred_on: on.parse().unwrap(),
            location_role: LocationRole::Incident,
            indicators: indicators.iter().copied().collect::<Indicators>(),
            age_band: None,
            sex: None,
        }
    }

    #[test]
    fn periods_count_records_by_kind_children_once_and_indicators_per_record() {
        let day = |text: &str| text.parse::<NaiveDate>().unwrap();
        let records = [
            record(1, AgencyKind::Police, "2024-01-05", &[Indicator::Missing]),
            record(
                1,
                AgencyKind::Health,
                "2024-02-05",
                &[Indicator::Missing, Indicator::GiftsMoney],
            ),
            record(2, AgencyKind::Police, "2024-04-05", &[]),
            record(1, AgencyKind::Police, "2024-05-05", &[Indicator::Missing]),
            record(3, AgencyKind::Police, "2023-12-31", &[Indicator::Missing]),
            record(4, AgencyKind::Police, "2024-07-01", &[Indicator::Missing]),
        ];
        let counts = count(
            &records,
            &[day("2024-01-01"), day("2024-04-01")],
            day("2024-06-30"),
        );
        let police = AgencyKind::ALL
            .iter()
            .position(|k| *k == AgencyKind::Police)
            .unwrap();
        let health = AgencyKind::ALL
            .iter()
            .position(|k| *k == AgencyKind::Health)
            .unwrap();
        assert_eq!(counts.records[0][police], 1);
        assert_eq!(counts.records[0][health], 1);
        assert_eq!(counts.records[1][police], 2);
        assert_eq!(
            counts.children,
            vec![1, 2],
            "child 1 once in the first quarter"
        );
        assert_eq!(
            counts.children_overall, 2,
            "children 1 and 2; 3 and 4 fall outside"
        );
        let missing = Indicator::ALL
            .iter()
            .position(|i| *i == Indicator::Missing)
            .unwrap();
        assert_eq!(counts.indicators[missing], 3);
    }

    #[test]
    fn rates_are_per_ten_thousand_children_to_one_decimal_place() {
        assert_eq!(rate_per_10000(94, 29_512), Some(31.9));
        assert_eq!(rate_per_10000(0, 29_512), Some(0.0));
        assert_eq!(rate_per_10000(5, 0), None);
    }

    #[test]
    fn ranks_put_the_highest_rate_first_and_share_ties() {
        assert_eq!(
            ranks(&[Some(3.0), None, Some(7.5), Some(3.0)]),
            vec![Some(2), None, Some(1), Some(2)]
        );
    }
}
