//! The application layer of Safeguard Atlas, between the store and the front ends (the HTTP
//! service and the `atlas` command): what both need without an HTTP request — the layered
//! [`Settings`] and [`telemetry`], the [`RecordCache`] of partnerships' case records, the frozen
//! [`products`] every disclosure-controlled answer is built from, and the national [`export`].
//! Front ends render what it returns; they do not reach past it for these.

mod cache;
pub mod export;
pub mod products;
pub mod settings;
pub mod telemetry;

pub use cache::RecordCache;
pub use settings::Settings;
