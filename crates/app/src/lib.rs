//! The application layer of Safeguard Atlas, between the store and the front ends (the HTTP
//! service and the `atlas` command): what both need without an HTTP request — the layered
//! [`Settings`] and [`telemetry`], the partnership's [`analysis`] services and its
//! [`comparison`] with its neighbours, the [`figures`] answers show, the [`RecordCache`] of partnerships' case records, the frozen
//! [`products`] every disclosure-controlled answer is built from, and the national [`export`], the schema and
//! [`reference`](mod@reference) geography brought up to date,
//! the partnership's quarterly [`profiles`] and its board's self-[`assessment`], its [`releases`], the [`requests`] for summaries between partnerships and the [`upload`] pipeline of agencies' extracts.
//! Front ends render what it returns; they do not reach past it for these.

pub mod analysis;
pub mod assessment;
pub mod audit_trail;
pub mod cache;
pub mod comparison;
pub mod demo;
pub mod export;
pub mod figures;
pub mod key_guard;
pub mod places;
pub mod products;
pub mod profiles;
pub mod reference;
pub mod regional_requests;
pub mod releases;
pub mod requests;
pub mod retention;
pub mod settings;
pub mod telemetry;
pub mod upload;

pub use analysis::Analyses;
pub use cache::RecordCache;
pub use settings::Settings;
