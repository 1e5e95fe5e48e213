//! Turns files into validated data, without touching a database or the network.
//!
//! [`reference`](mod@reference) reads ONS-style reference geography: partnership boundaries become H3
//! coverages, and a neighbours table becomes validated pairs of GSS codes. [`extract`] reads
//! agencies' canonical extracts into validated records and per-row rejections, refusing any
//! extract that still carries a direct identifier ([`identifiers`]); [`bng`] converts British
//! National Grid references; [`placement`] decides a record's partnership from its true position; [`pseudonym`] keys pseudonyms with HMAC-SHA256, and [`pseudonymise`] turns an agency's raw
//! export into a canonical extract on the agency's own machine.

pub mod bng;
pub mod extract;
pub mod identifiers;
pub mod placement;
pub mod pseudonym;
pub mod pseudonymise;
pub mod reference;
