//! PostgreSQL storage for Safeguard Atlas.
//!
//! Queries go through diesel-async on a deadpool pool ([`Database`]); bulk loads use binary
//! `COPY` on a dedicated tokio-postgres connection ([`reference::import`]). Migrations are
//! embedded in the binary ([`migrations`]).

pub mod agencies;
pub mod agreements;
pub mod audit;
pub mod batches;
mod error;
pub mod migrations;
#[cfg(test)]
mod partition_pruning;
pub mod partnerships;
pub mod places;
mod pool;
pub mod populations;
pub mod profiles;
pub mod pseudonym_key;
pub mod rate_limits;
pub mod records;
pub mod reference;
pub mod releases;
pub mod retention;
pub mod schema;
pub mod self_assessments;
pub mod snapshots;
pub mod summaries;
pub mod summary_requests;
#[cfg(test)]
mod test_batch;
pub mod tls;
pub mod users;

pub use error::StoreError;
pub use pool::{
    Database, DatabaseSettings, PooledConnection, connect_admin, establish, read_committed,
};
