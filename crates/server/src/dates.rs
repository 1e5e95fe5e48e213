//! The domain of every date a caller gives: 2000-01-01 to 2099-12-31. Dates outside it are
//! refused with 400 naming the field, before any arithmetic on periods could overflow.

use atlas_store::audit::storable;
use chrono::NaiveDate;

use crate::ApiError;

/// The first day a caller may name.
pub const FIRST_DAY: NaiveDate = NaiveDate::from_ymd_opt(2000, 1, 1).expect("a valid date");
/// The last day a caller may name.
pub const LAST_DAY: NaiveDate = NaiveDate::from_ymd_opt(2099, 12, 31).expect("a valid date");

/// `day` when it lies in the domain; 400 naming `field` otherwise.
///
/// # Errors
/// [`ApiError::BadRequest`] when it does not.
pub fn check(field: &str, day: NaiveDate) -> Result<NaiveDate, ApiError> {
    if (FIRST_DAY..=LAST_DAY).contains(&day) {
        Ok(day)
    } else {
        Err(out_of_domain(field, &day))
    }
}

/// The most characters of a refused value that its refusal repeats.
const ECHOED_CHARS: usize = 40;

/// The refusal of a value of `field` that is not a day of the domain.
#[must_use]
pub fn out_of_domain(field: &str, value: &dyn std::fmt::Display) -> ApiError {
    let value = storable(&value.to_string(), ECHOED_CHARS);
    ApiError::BadRequest(format!(
        "`{field}`: `{value}` is not a day from {FIRST_DAY} to {LAST_DAY} (YYYY-MM-DD)"
    ))
}
