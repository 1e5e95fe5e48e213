//! Recognising direct identifiers, so that an extract still carrying one is refused whole.

use std::fmt;

/// A kind of direct identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentifierKind {
    /// A person's name.
    Name,
    /// A date of birth.
    DateOfBirth,
    /// An NHS number (ten digits with a valid modulus-11 check digit).
    NhsNumber,
    /// A postal address.
    Address,
    /// An email address.
    Email,
    /// A telephone number.
    Phone,
    /// A unique pupil number or national insurance number.
    OtherNumber,
    /// Free text, which may hold anything.
    FreeText,
}

impl fmt::Display for IdentifierKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Self::Name => "a name",
            Self::DateOfBirth => "a date of birth",
            Self::NhsNumber => "an NHS number",
            Self::Address => "an address",
            Self::Email => "an email address",
            Self::Phone => "a telephone number",
            Self::OtherNumber => "a personal reference number",
            Self::FreeText => "free text",
        })
    }
}

/// Fragments of column names (lower case, letters and digits only) that mark a direct identifier.
const IDENTIFYING_COLUMNS: &[(&str, IdentifierKind)] = &[
    ("name", IdentifierKind::Name),
    ("forename", IdentifierKind::Name),
    ("surname", IdentifierKind::Name),
    ("dob", IdentifierKind::DateOfBirth),
    ("birth", IdentifierKind::DateOfBirth),
    ("nhs", IdentifierKind::NhsNumber),
    ("address", IdentifierKind::Address),
    ("street", IdentifierKind::Address),
    ("email", IdentifierKind::Email),
    ("phone", IdentifierKind::Phone),
    ("mobile", IdentifierKind::Phone),
    ("telephone", IdentifierKind::Phone),
    ("upn", IdentifierKind::OtherNumber),
    ("nino", IdentifierKind::OtherNumber),
    ("nationalinsurance", IdentifierKind::OtherNumber),
    ("notes", IdentifierKind::FreeText),
    ("comment", IdentifierKind::FreeText),
    ("narrative", IdentifierKind::FreeText),
    ("description", IdentifierKind::FreeText),
    ("freetext", IdentifierKind::FreeText),
];

/// The kind of identifier a column name suggests, if any.
#[must_use]
pub fn identifying_column(name: &str) -> Option<IdentifierKind> {
    let folded: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    IDENTIFYING_COLUMNS
        .iter()
        .find(|(fragment, _)| folded.contains(fragment))
        .map(|(_, kind)| *kind)
}

/// The kind of identifier a value looks like, if any: an email address, an NHS number or a UK
/// telephone number.
#[must_use]
pub fn identifying_value(value: &str) -> Option<IdentifierKind> {
    let value = value.trim();
    if let Some((local, domain)) = value.split_once('@')
        && !local.is_empty()
        && domain.contains('.')
        && !domain.contains(char::is_whitespace)
    {
        return Some(IdentifierKind::Email);
    }
    let compact: String = value
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
        .collect();
    if compact.len() == 10
        && compact.bytes().all(|b| b.is_ascii_digit())
        && nhs_number_is_valid(&compact)
    {
        return Some(IdentifierKind::NhsNumber);
    }
    let national = compact.strip_prefix("+44").map(|rest| format!("0{rest}"));
    let national = national.as_deref().unwrap_or(&compact);
    if national.starts_with('0')
        && (10..=11).contains(&national.len())
        && national.bytes().all(|b| b.is_ascii_digit())
    {
        return Some(IdentifierKind::Phone);
    }
    None
}

/// Whether ten digits form a valid NHS number: the weighted sum of the first nine digits
/// (weights 10 down to 2) gives, as 11 minus its remainder modulo 11, the tenth digit (11 counts
/// as 0; 10 is never valid).
#[must_use]
pub fn nhs_number_is_valid(digits: &str) -> bool {
    let values: Vec<u32> = digits.chars().filter_map(|c| c.to_digit(10)).collect();
    if values.len() != 10 || digits.chars().count() != 10 {
        return false;
    }
    let sum: u32 = values[..9]
        .iter()
        .zip((2..=10).rev())
        .map(|(digit, weight)| digit * weight)
        .sum();
    match 11 - sum % 11 {
        11 => values[9] == 0,
        10 => false,
        check => values[9] == check,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn identifying_columns_are_recognised_in_any_spelling() {
        for (column, kind) in [
            ("Forename", IdentifierKind::Name),
            ("LAST_NAME", IdentifierKind::Name),
            ("Date of Birth", IdentifierKind::DateOfBirth),
            ("DOB", IdentifierKind::DateOfBirth),
            ("nhs_number", IdentifierKind::NhsNumber),
            ("Address Line 1", IdentifierKind::Address),
            ("e-mail", IdentifierKind::Email),
            ("Mobile No", IdentifierKind::Phone),
            ("case_notes", IdentifierKind::FreeText),
        ] {
            assert_eq!(identifying_column(column), Some(kind), "{column}");
        }
        for column in [
            "subject",
            "record_kind",
            "occurred_on",
            "lat",
            "lon",
            "easting",
            "northing",
            "postcode",
            "h3",
            "location_role",
            "indicators",
            "age",
            "age_band",
            "sex",
        ] {
            assert_eq!(identifying_column(column), None, "{column}");
        }
    }

    #[test]
    fn nhs_numbers_are_checked_with_modulus_11() {
        // 943 476 5919 is the NHS's own published example of a valid number.
        assert!(nhs_number_is_valid("9434765919"));
        assert!(!nhs_number_is_valid("9434765918"));
        assert!(!nhs_number_is_valid("943476591"));
        assert_eq!(
            identifying_value("943 476 5919"),
            Some(IdentifierKind::NhsNumber)
        );
    }

    #[test]
    fn emails_and_phone_numbers_are_recognised() {
        assert_eq!(
            identifying_value("ana@example.org"),
            Some(IdentifierKind::Email)
        );
        assert_eq!(
            identifying_value("01253 477477"),
            Some(IdentifierKind::Phone)
        );
        assert_eq!(
            identifying_value("+44 7700 900123"),
            Some(IdentifierKind::Phone)
        );
        assert_eq!(
            identifying_value("(0161) 496 0000"),
            Some(IdentifierKind::Phone)
        );
    }

    #[test]
    fn canonical_values_are_not_mistaken_for_identifiers() {
        for value in [
            "2024-03-05",
            "53.8175",
            "-3.0357",
            "331000",
            "436000",
            "FY1 1AA",
            "891f1d48177ffff",
            "missing;gifts_money",
            "16-17",
            "15",
            "F",
            "incident",
            "9b2c0f6a4d0e1e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f",
        ] {
            assert_eq!(identifying_value(value), None, "{value}");
        }
    }

    proptest! {
        #[test]
        fn exactly_one_check_digit_completes_nine_digits_or_none_does(stem in "[0-9]{9}") {
            let valid = (0..=9).filter(|d| nhs_number_is_valid(&format!("{stem}{d}"))).count();
            prop_assert!(valid <= 1);
        }
    }
}
