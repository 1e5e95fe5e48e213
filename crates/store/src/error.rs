//! Errors raised by the store.

/// Why a storage operation failed. Messages are written for the person running the command:
/// they name the problem without echoing secrets such as a password in a connection URL.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No PostgreSQL server answered, or it refused the connection.
    #[error("PostgreSQL is not reachable at {target}: {reason}")]
    Unreachable {
        /// Host, port and database, without credentials.
        target: String,
        /// What the driver reported.
        reason: String,
    },
    /// The connection URL could not be understood.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// A migration failed to apply.
    #[error("database migration failed: {0}")]
    Migration(String),
    /// A referenced row does not exist (for example an unknown partnership code).
    #[error("{0}")]
    NotFound(String),
    /// The change conflicts with existing data (for example a duplicate name).
    #[error("{0}")]
    Conflict(String),
    /// Input that the database refuses for a reason the caller can fix.
    #[error("{0}")]
    Invalid(String),
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// A bulk-load statement failed.
    #[error("database statement failed: {0}")]
    Statement(#[from] tokio_postgres::Error),
    /// No pooled connection could be obtained.
    #[error("no database connection available: {0}")]
    Pool(String),
}

impl From<deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>> for StoreError {
    fn from(err: deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>) -> Self {
        Self::Pool(err.to_string())
    }
}

/// A value read back from the database as its domain type (a GSS code, a vocabulary name): one
/// that does not parse is a fault of the stored data, answered as an internal error.
pub(crate) fn read_back<T>(text: String) -> Result<T, StoreError>
where
    T: TryFrom<String>,
    T::Error: std::fmt::Display,
{
    T::try_from(text).map_err(|err| {
        StoreError::Query(diesel::result::Error::DeserializationError(
            format!("a stored value: {err}").into(),
        ))
    })
}

/// Each of `texts` read back as its domain type ([`read_back`]).
pub(crate) fn read_back_all<T>(texts: Vec<String>) -> Result<Vec<T>, StoreError>
where
    T: TryFrom<String>,
    T::Error: std::fmt::Display,
{
    texts.into_iter().map(read_back).collect()
}
