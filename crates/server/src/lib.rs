//! The Safeguard Atlas HTTP service.
//!
//! [`Settings`] are layered from `config/`, [`Application`] binds and runs the actix-web server
//! (plain HTTP or rustls), and the routes answer health, readiness, metrics, the OpenAPI
//! document and the partnership reference API. Every error leaves as
//! `{ "error": code, "message": text }` with the matching status.

mod error;
mod identity;
mod openapi;
mod pipeline;
mod routes;
mod settings;
mod startup;
pub mod telemetry;
mod tls;

pub use error::ApiError;
pub use openapi::ApiDoc;
pub use settings::{
    AuthSettings, IngestSettings, LogFormat, LogSettings, ServerSettings, Settings, SettingsError,
};
pub use startup::Application;
