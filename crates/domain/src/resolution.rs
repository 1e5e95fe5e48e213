//! The H3 resolutions Atlas stores and analyses.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The finest H3 resolution ever stored (about 0.1 km² per cell): exact locations are reduced
/// to a cell of this resolution at ingest and never kept.
pub const FINEST_RESOLUTION: u8 = 9;

/// The coarsest H3 resolution for which coverage and grids are kept (about 250 km² per cell).
pub const COARSEST_RESOLUTION: u8 = 5;

/// An H3 resolution from [`COARSEST_RESOLUTION`] to [`FINEST_RESOLUTION`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct StoredResolution(u8);

/// The resolution is outside the stored range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("resolution {0} is not stored: choose {COARSEST_RESOLUTION} to {FINEST_RESOLUTION}")]
pub struct InvalidResolution(pub u8);

impl StoredResolution {
    /// The finest stored resolution.
    pub const FINEST: Self = Self(FINEST_RESOLUTION);

    /// Every stored resolution, coarsest first.
    pub fn all() -> impl DoubleEndedIterator<Item = Self> {
        (COARSEST_RESOLUTION..=FINEST_RESOLUTION).map(Self)
    }

    /// The resolution as a number.
    #[must_use]
    pub const fn get(self) -> u8 {
        self.0
    }

    /// The resolution as h3o's type.
    #[must_use]
    pub const fn h3(self) -> h3o::Resolution {
        match self.0 {
            5 => h3o::Resolution::Five,
            6 => h3o::Resolution::Six,
            7 => h3o::Resolution::Seven,
            8 => h3o::Resolution::Eight,
            // Construction keeps the value within 5 to 9.
            _ => h3o::Resolution::Nine,
        }
    }
}

impl TryFrom<u8> for StoredResolution {
    type Error = InvalidResolution;

    fn try_from(value: u8) -> Result<Self, Self::Error> {
        if (COARSEST_RESOLUTION..=FINEST_RESOLUTION).contains(&value) {
            Ok(Self(value))
        } else {
            Err(InvalidResolution(value))
        }
    }
}

impl From<StoredResolution> for u8 {
    fn from(value: StoredResolution) -> Self {
        value.0
    }
}

impl fmt::Display for StoredResolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_five_to_nine_are_stored() {
        let stored: Vec<u8> = StoredResolution::all().map(StoredResolution::get).collect();
        assert_eq!(stored, vec![5, 6, 7, 8, 9]);
        assert!(StoredResolution::try_from(4).is_err());
        assert!(StoredResolution::try_from(10).is_err());
        assert_eq!(StoredResolution::FINEST.get(), 9);
        for resolution in StoredResolution::all() {
            assert_eq!(u8::from(resolution.h3()), resolution.get());
        }
    }
}
