//! ONS Government Statistical Service (GSS) codes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// A nine-character ONS GSS code such as `E10000017` (Lancashire): one upper-case letter for the
/// nation followed by eight digits, the first two of which name the entity type (`E06` unitary,
/// `E08` metropolitan district, `E09` London borough, `E10` county).
///
/// Partnerships are identified by the GSS code of an upper-tier local authority they cover.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", schema(value_type = String, example = "E10000017"))]
pub struct GssCode(String);

/// Why a string is not a GSS code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a GSS code: expected a letter and eight digits, such as E10000017")]
pub struct InvalidGssCode(pub String);

impl GssCode {
    /// Parses a code, accepting lower-case letters and surrounding whitespace.
    ///
    /// # Errors
    /// [`InvalidGssCode`] unless the trimmed input is one ASCII letter followed by eight digits.
    pub fn parse(input: &str) -> Result<Self, InvalidGssCode> {
        let trimmed = input.trim();
        let bytes = trimmed.as_bytes();
        let well_formed = bytes.len() == 9
            && bytes[0].is_ascii_alphabetic()
            && bytes[1..].iter().all(u8::is_ascii_digit);
        if well_formed {
            Ok(Self(trimmed.to_ascii_uppercase()))
        } else {
            Err(InvalidGssCode(input.chars().take(40).collect()))
        }
    }

    /// The code as a string slice.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GssCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// A code equals the text it is written as (an upper-case letter and eight digits).
macro_rules! equal_to_text {
    ($($text:ty),*) => {$(
        impl PartialEq<$text> for GssCode {
            fn eq(&self, other: &$text) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<GssCode> for $text {
            fn eq(&self, other: &GssCode) -> bool {
                other.0 == *self
            }
        }
    )*};
}

equal_to_text!(str, &str, String);

impl TryFrom<String> for GssCode {
    type Error = InvalidGssCode;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl FromStr for GssCode {
    type Err = InvalidGssCode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for GssCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_real_codes_and_normalises_case() {
        assert_eq!(GssCode::parse("E10000017").unwrap().as_str(), "E10000017");
        assert_eq!(GssCode::parse(" e06000009 ").unwrap().as_str(), "E06000009");
    }

    #[test]
    fn rejects_malformed_codes() {
        for bad in [
            "",
            "E1000001",
            "E100000177",
            "110000017",
            "E1000001X",
            "E10 00017",
        ] {
            assert!(GssCode::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn deserialising_validates() {
        assert!(serde_json::from_str::<GssCode>("\"E08000005\"").is_ok());
        let err = serde_json::from_str::<GssCode>("\"nope\"").unwrap_err();
        assert!(err.to_string().contains("not a GSS code"));
    }

    proptest! {
        #[test]
        fn every_letter_and_eight_digits_round_trips(letter in "[A-Z]", digits in "[0-9]{8}") {
            let text = format!("{letter}{digits}");
            let code = GssCode::parse(&text).unwrap();
            prop_assert_eq!(code.to_string(), text);
        }

        #[test]
        fn parsing_never_panics(input in ".*") {
            let _ = GssCode::parse(&input);
        }
    }
}
