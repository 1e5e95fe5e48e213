//! Dates a caller gives outside the domain of [`atlas_domain::calendar`] are refused with 400
//! naming the field, before any arithmetic on periods could overflow.

use atlas_store::audit::storable;
use chrono::NaiveDate;

use crate::ApiError;

use atlas_domain::calendar::{FIRST_DAY, LAST_DAY, within};

/// `day` when it lies in the domain; 400 naming `field` otherwise.
///
/// # Errors
/// [`ApiError::BadRequest`] when it does not.
pub fn check(field: &str, day: NaiveDate) -> Result<NaiveDate, ApiError> {
    if within(day) {
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
