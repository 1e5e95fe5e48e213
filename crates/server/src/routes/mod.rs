//! Request handlers, grouped by resource.

pub mod extracts;
pub mod health;
pub mod partnerships;
