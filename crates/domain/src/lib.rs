//! Pure types and rules shared by every Safeguard Atlas crate.
//!
//! Nothing here performs I/O: the types validate themselves on construction so that the rest of
//! the system can rely on a [`GssCode`] being well formed or an [`AgencyKind`] being known.
//! The vocabularies of case records ([`RecordKind`], [`Indicator`], [`AgeBand`]…) live here too.

pub mod calendar;
mod geography;
mod gss;
mod permission;
mod record;
mod resolution;
mod taxonomy;

pub use geography::{Coverage, Place, PostcodeCell, ReferenceArea, SmallAreaPopulation};
pub use gss::{GssCode, InvalidGssCode};
pub use permission::{Role, Scope, UnknownScope};
pub use record::{CaseRecord, Indicators};
pub use resolution::{COARSEST_RESOLUTION, FINEST_RESOLUTION, InvalidResolution, StoredResolution};
pub use taxonomy::{
    AgeBand, AgencyKind, Indicator, LocationRole, RecordKind, Sex, UnknownAgeBand,
    UnknownAgencyKind, UnknownIndicator, UnknownLocationRole, UnknownRecordKind, UnknownSex,
};
