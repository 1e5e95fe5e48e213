//! Pure types and rules shared by every Safeguard Atlas crate.
//!
//! Nothing here performs I/O: the types validate themselves on construction so that the rest of
//! the system can rely on a [`GssCode`] being well formed or an [`AgencyKind`] being known.

mod agency;
mod gss;
mod resolution;

pub use agency::{AgencyKind, UnknownAgencyKind};
pub use gss::{GssCode, InvalidGssCode};
pub use resolution::{COARSEST_RESOLUTION, FINEST_RESOLUTION, InvalidResolution, StoredResolution};
