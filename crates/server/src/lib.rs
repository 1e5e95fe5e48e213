//! The Safeguard Atlas HTTP service.
//!
//! [`Application`] binds and runs the actix-web server (plain HTTP or rustls, optionally mutual
//! TLS) with the settings of `atlas_app::Settings`, and the routes answer health, readiness,
//! metrics, the OpenAPI document, the partnership reference API, uploads, administration and
//! the audit trail. Every data endpoint takes an `auth`-checked caller and leaves one entry in
//! the hash-chained audit trail before it answers. Every error leaves as
//! `{ "error": code, "message": text }` with the matching status.

mod access_log;
mod audit;
mod auth;
mod dates;
mod error;
mod guards;
pub mod identity;
mod openapi;
mod query_audit;
mod render;
mod routes;
mod security;
mod startup;
mod tls;
pub mod web;

pub use error::ApiError;
pub use openapi::ApiDoc;
pub use startup::Application;
