//! The server through real HTTP, each test with its own database. One test binary, several
//! modules: it links once.

#![expect(clippy::unwrap_used, reason = "a test fails where it unwraps, loudly")]
#![expect(
    clippy::string_slice,
    clippy::disallowed_methods,
    reason = "tests slice text they built themselves"
)]

mod access;
mod adversary;
mod analysis;
mod comparison;
mod exports;
mod extracts;
mod hostile;
mod identity;
mod profiles;
mod regional;
mod regional_requests;
mod releases;
mod requests;
mod service;
mod support;
mod transport;
mod web;
