//! The statistics of Safeguard Atlas, as pure functions: case records counted per H3 cell with
//! filters and multi-agency overlap ([`grid`]); Getis-Ord Gi* over an H3 study area with k-ring
//! neighbourhoods, two-sided normal p-values, Benjamini–Hochberg false-discovery control and
//! ArcGIS-style confidence bins ([`gistar`]). Emerging hotspots, rates and disclosure control
//! follow (issues 5 and 6).

pub mod comparison;
mod disclosure;
pub mod emerging;
pub mod gate;
pub mod gistar;
pub mod grid;
mod hashing;
pub mod randomisation;
