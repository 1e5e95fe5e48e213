//! The server through real HTTP, each test with its own database. One test binary, several
//! modules: it links once.

mod access;
mod adversary;
mod analysis;
mod comparison;
mod exports;
mod extracts;
mod regional;
mod releases;
mod service;
mod support;
mod transport;
mod web;
