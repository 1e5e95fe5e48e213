//! The Safeguard Atlas HTTP service.
//!
//! [`Settings`] are layered from `config/`, [`Application`] binds and runs the actix-web server
//! (plain HTTP or rustls, optionally mutual TLS), and the routes answer health, readiness,
//! metrics, the OpenAPI document, the partnership reference API, uploads, administration and
//! the audit trail. Every data endpoint takes an [`auth`]-checked caller and leaves one entry in
//! the hash-chained audit trail before it answers. Every error leaves as
//! `{ "error": code, "message": text }` with the matching status.

mod audit;
mod auth;
mod dates;
mod error;
mod guards;
mod openapi;
mod pipeline;
mod query_audit;
mod routes;
mod security;
mod settings;
mod startup;
pub mod telemetry;
mod tls;
mod views;
pub mod web;

pub use error::ApiError;
pub use openapi::ApiDoc;
pub use settings::{
    AuditSettings, AuthSettings, IngestSettings, LogFormat, LogSettings, OidcSettings,
    PemKeySettings, ServerSettings, Settings, SettingsError, WebSettings,
};
pub use startup::Application;
