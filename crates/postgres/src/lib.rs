//! PostgreSQL for the demo and the tests: [`cluster`] finds the server a URL names or starts a
//! private cluster from the machine's binaries (as an unprivileged user when run as root), and
//! [`test_db`] gives each test a migrated database of its own, copied from a template.

pub mod cluster;
pub mod test_db;

use atlas_store::StoreError;

/// Why no database could be found or made.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A private PostgreSQL cluster could not be started; the message says what to install or
    /// fix.
    #[error("{0}")]
    Start(String),
    /// PostgreSQL refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<tokio_postgres::Error> for ClusterError {
    fn from(err: tokio_postgres::Error) -> Self {
        Self::Store(err.into())
    }
}
