//! A stored case record as the analyses hold it in memory: its cell, its subject's pseudonym
//! shortened, its never-shown key, and its vocabulary values.

use chrono::NaiveDate;
use h3o::CellIndex;

use crate::{AgeBand, AgencyKind, Indicator, LocationRole, RecordKind, Sex};

/// One stored case record, as the grid needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseRecord {
    /// The resolution-9 cell.
    pub cell: CellIndex,
    /// The subject's pseudonym, shortened to 64 bits (collisions among a partnership's subjects
    /// are vanishingly rare: about 1 in 10^7 for a million subjects).
    pub subject: u64,
    /// The record's key, drawn at random from 0 to 255 at ingest and never shown: the
    /// publication gate's perturbation is a function of the keys of the records a figure counts
    /// (the publication gate of `atlas_analytics`).
    pub record_key: u8,
    /// The contributing agency (an index into the caller's agency list).
    pub agency: u32,
    /// The contributing agency's kind.
    pub agency_kind: AgencyKind,
    /// What the record is.
    pub record_kind: RecordKind,
    /// When it happened.
    pub occurred_on: NaiveDate,
    /// What the location is.
    pub location_role: LocationRole,
    /// Risk indicators.
    pub indicators: Indicators,
    /// The subject's age band then.
    pub age_band: Option<AgeBand>,
    /// The subject's recorded sex.
    pub sex: Option<Sex>,
}

/// A set of risk indicators, as bits of their positions in [`Indicator::ALL`] (a record is
/// kept in memory for every analysis, so it stays small).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Indicators(u16);

// Every indicator has a bit of a u16.
const _: () = assert!(Indicator::ALL.len() <= 16);

impl Indicators {
    fn bit(indicator: Indicator) -> u16 {
        Indicator::ALL
            .iter()
            .position(|known| *known == indicator)
            .map_or(0, |position| 1 << position)
    }

    /// Whether the set holds no indicator.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether it holds `indicator`.
    #[must_use]
    pub fn contains(self, indicator: Indicator) -> bool {
        self.0 & Self::bit(indicator) != 0
    }

    /// Whether the two sets share no indicator.
    #[must_use]
    pub const fn is_disjoint(self, other: Self) -> bool {
        self.0 & other.0 == 0
    }

    /// Whether every indicator of this set is in `other`.
    #[must_use]
    pub const fn is_subset(self, other: Self) -> bool {
        self.0 & !other.0 == 0
    }

    /// The set as bits of the indicators' positions in [`Indicator::ALL`].
    #[must_use]
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// The set whose bits are `bits` (see [`Indicators::bits`]); `None` when a bit names no
    /// indicator.
    #[must_use]
    pub const fn from_bits(bits: u16) -> Option<Self> {
        match bits.checked_shr(Indicator::ALL.len() as u32) {
            Some(0) | None => Some(Self(bits)),
            Some(_) => None,
        }
    }

    /// The indicators, in the order of [`Indicator::ALL`].
    pub fn iter(self) -> impl Iterator<Item = Indicator> {
        Indicator::ALL
            .iter()
            .copied()
            .filter(move |indicator| self.contains(*indicator))
    }
}

impl FromIterator<Indicator> for Indicators {
    fn from_iter<I: IntoIterator<Item = Indicator>>(indicators: I) -> Self {
        Self(
            indicators
                .into_iter()
                .fold(0, |bits, indicator| bits | Self::bit(indicator)),
        )
    }
}

impl<const N: usize> From<[Indicator; N]> for Indicators {
    fn from(indicators: [Indicator; N]) -> Self {
        indicators.into_iter().collect()
    }
}
