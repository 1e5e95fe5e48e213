//! The statistics of Safeguard Atlas, as pure functions: case records counted per H3 cell with
//! filters and multi-agency overlap ([`grid`]); Getis-Ord Gi* over an H3 study area with k-ring
//! neighbourhoods, two-sided normal p-values, Benjamini–Hochberg false-discovery control and
//! ArcGIS-style confidence bins ([`gistar`]); emerging hotspots over space-time bins with
//! Mann–Kendall trends ([`emerging`]); rates, ranks and direction of travel between partnerships
//! ([`comparison`]); the tallies of a quarter's problem [`profile`]; and the publication gate every figure
//! leaving a partnership passes ([`gate`]).

pub mod comparison;
mod disclosure;
pub mod emerging;
pub mod gate;
pub mod gistar;
pub mod grid;
pub mod hashing;
pub mod profile;
pub mod randomisation;
pub mod rates;
