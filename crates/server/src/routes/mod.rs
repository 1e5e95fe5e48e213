//! Request handlers, grouped by resource.

pub mod health;
pub mod partnerships;
