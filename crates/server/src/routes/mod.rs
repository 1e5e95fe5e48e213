//! Request handlers, grouped by resource.

pub mod admin;
pub mod analysis;
pub mod audit;
pub mod comparison;
pub mod exports;
pub mod extracts;
pub mod health;
pub mod partnerships;
pub mod releases;
