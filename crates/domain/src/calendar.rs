//! The domain of every date a caller may name: 2000-01-01 to 2099-12-31, so that arithmetic on
//! periods cannot overflow and an open period has a first and a last day.

use chrono::NaiveDate;

/// The first day a caller may name.
pub const FIRST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(2000, 1, 1) {
    Some(day) => day,
    None => panic!("2000-01-01 is a date"),
};

/// The last day a caller may name.
pub const LAST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(2099, 12, 31) {
    Some(day) => day,
    None => panic!("2099-12-31 is a date"),
};

/// Whether `day` lies in the domain.
#[must_use]
pub fn within(day: NaiveDate) -> bool {
    (FIRST_DAY..=LAST_DAY).contains(&day)
}
