//! Request handlers, grouped by resource.

pub mod admin;
pub mod assessment;
pub mod audit;
pub mod batches;
pub mod comparison;
pub mod emerging;
pub mod exports;
pub mod extracts;
pub mod grid;
pub mod health;
pub mod hotspots;
pub(crate) mod params;
pub mod partnerships;
pub mod profiles;
pub mod regional;
pub mod regional_requests;
pub mod releases;
pub mod requests;
pub mod session;
