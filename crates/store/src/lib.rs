//! PostgreSQL storage for Safeguard Atlas.
//!
//! Queries go through diesel-async on a deadpool pool ([`Database`]); bulk loads use binary
//! `COPY` on a dedicated tokio-postgres connection ([`reference::import`]). Migrations are
//! embedded in the binary ([`migrations`]). When no server answers, [`cluster`] can start a
//! private PostgreSQL cluster from the machine's binaries, for the demo and the tests.

pub mod agencies;
pub mod agreements;
pub mod audit;
pub mod batches;
pub mod cluster;
mod error;
pub mod migrations;
pub mod partnerships;
mod pool;
pub mod populations;
pub mod records;
pub mod reference;
pub mod releases;
pub mod schema;
pub mod summaries;
#[cfg(feature = "test-support")]
pub mod test_db;
pub mod users;

pub use error::StoreError;
pub use pool::{Database, DatabaseSettings, PooledConnection, connect_admin};
