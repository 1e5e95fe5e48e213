//! The connection pool.

use std::str::FromStr;
use std::time::Duration;

use deadpool::Runtime;
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::StoreError;

/// A connection borrowed from the pool; it returns when dropped.
pub type PooledConnection = Object<AsyncPgConnection>;

/// Settings of the `[database]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `postgres://user:password@host:port/database`. Secret: it may hold a password.
    pub url: SecretString,
    /// Largest number of pooled connections.
    pub pool_size: usize,
    /// How long to wait for a connection to open or come free, in seconds.
    pub connect_timeout_secs: u64,
    /// The pool's connections show in `pg_stat_activity` under this name (letters, digits and
    /// `-` only).
    #[serde(default = "default_application_name")]
    pub application_name: String,
    /// A pooled connection's statement is cancelled after this many seconds (0: never). Bulk
    /// loads run on connections of their own, without it.
    #[serde(default = "default_statement_timeout_secs")]
    pub statement_timeout_secs: u64,
    /// A pooled connection waits at most this many seconds for a lock (0: for ever).
    #[serde(default = "default_lock_timeout_secs")]
    pub lock_timeout_secs: u64,
    /// A pooled connection idle inside a transaction this many seconds is closed by PostgreSQL
    /// (0: never), so a stuck request cannot hold locks.
    #[serde(default = "default_idle_in_transaction_secs")]
    pub idle_in_transaction_secs: u64,
}

/// `atlas`.
fn default_application_name() -> String {
    "atlas".to_owned()
}

/// Five minutes.
const fn default_statement_timeout_secs() -> u64 {
    300
}

/// Ten seconds.
const fn default_lock_timeout_secs() -> u64 {
    10
}

/// One minute.
const fn default_idle_in_transaction_secs() -> u64 {
    60
}

impl DatabaseSettings {
    /// Settings for a pool of `pool_size` connections to `url`, with the default name and
    /// limits.
    #[must_use]
    pub fn new(url: SecretString, pool_size: usize) -> Self {
        Self {
            url,
            pool_size,
            connect_timeout_secs: 5,
            application_name: default_application_name(),
            statement_timeout_secs: default_statement_timeout_secs(),
            lock_timeout_secs: default_lock_timeout_secs(),
            idle_in_transaction_secs: default_idle_in_transaction_secs(),
        }
    }

    /// These settings for a pool of its own: at most `pool_size` connections, which show in
    /// `pg_stat_activity` as `application_name` (letters, digits and `-` only).
    #[must_use]
    pub fn for_pool(&self, application_name: &str, pool_size: usize) -> Self {
        Self {
            application_name: application_name.to_owned(),
            pool_size,
            ..self.clone()
        }
    }

    /// The URL the pool connects with: the configured one naming the application.
    fn pool_url(&self) -> String {
        let name: String = self
            .application_name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        let url = self.url.expose_secret();
        if url.contains("://") {
            let separator = if crate::tls::query_start(url).is_some() {
                '&'
            } else {
                '?'
            };
            format!("{url}{separator}application_name={name}")
        } else {
            format!("{url} application_name={name}")
        }
    }

    /// The session's time limits, set on each pooled connection when it opens (with `SET`,
    /// which a pooler in session mode passes on; in transaction mode set them on the role).
    fn limits(&self) -> String {
        format!(
            "SET statement_timeout = '{}s'; SET lock_timeout = '{}s'; \
             SET idle_in_transaction_session_timeout = '{}s'",
            self.statement_timeout_secs, self.lock_timeout_secs, self.idle_in_transaction_secs
        )
    }
}

/// A pool of diesel-async connections to the Atlas database.
#[derive(Clone)]
pub struct Database {
    pool: Pool<AsyncPgConnection>,
    url: SecretString,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("target", &describe_target(self.url.expose_secret()))
            .finish()
    }
}

impl Database {
    /// Builds a pool. No connection is opened until one is needed, so this succeeds while
    /// PostgreSQL is down; [`Database::connection`] says whether it answers.
    ///
    /// # Errors
    /// [`StoreError::InvalidUrl`] when the URL cannot be parsed.
    pub fn new(settings: &DatabaseSettings) -> Result<Self, StoreError> {
        crate::tls::target(settings.url.expose_secret())?;
        let pool_url = settings.pool_url();
        crate::tls::target(&pool_url)?;
        let timeout = Duration::from_secs(settings.connect_timeout_secs.max(1));
        let mut manager_config = ManagerConfig::<AsyncPgConnection>::default();
        let limits = settings.limits();
        manager_config.custom_setup = Box::new(move |url| {
            let (url, limits) = (url.to_owned(), limits.clone());
            Box::pin(async move {
                let mut conn = establish(&url).await?;
                diesel_async::SimpleAsyncConnection::batch_execute(&mut conn, &limits)
                    .await
                    .map_err(|err| diesel::ConnectionError::BadConnection(err.to_string()))?;
                Ok(conn)
            })
        });
        let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
            pool_url,
            manager_config,
        );
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size.max(1))
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|err| StoreError::Pool(err.to_string()))?;
        Ok(Self {
            pool,
            url: settings.url.clone(),
        })
    }

    /// A pooled connection.
    ///
    /// # Errors
    /// [`StoreError::Pool`] when none opens within the configured timeout.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn connection(&self) -> Result<PooledConnection, StoreError> {
        Ok(self.pool.get().await?)
    }

    /// The connection URL (secret).
    #[must_use]
    pub fn url(&self) -> &SecretString {
        &self.url
    }

    /// Host, port and database name, without credentials, for messages.
    #[must_use]
    pub fn target(&self) -> String {
        describe_target(self.url.expose_secret())
    }
}

/// Describes where a URL points (`host:port/database`) without its user or password.
#[must_use]
pub fn describe_target(url: &str) -> String {
    match tokio_postgres::Config::from_str(url) {
        Ok(config) => {
            let host = config
                .get_hosts()
                .first()
                .map(|host| match host {
                    tokio_postgres::config::Host::Tcp(name) => name.clone(),
                    tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
                })
                .unwrap_or_else(|| "localhost".to_owned());
            let port = config.get_ports().first().copied().unwrap_or(5432);
            format!(
                "{host}:{port}/{}",
                config.get_dbname().unwrap_or("postgres")
            )
        }
        Err(_) => "an unparseable URL".to_owned(),
    }
}

/// Opens a diesel-async connection to the server of `url`, with TLS as its `sslmode` asks
/// ([`crate::tls`]).
///
/// # Errors
/// diesel's connection error, saying why.
pub async fn establish(url: &str) -> diesel::ConnectionResult<AsyncPgConnection> {
    let bad = |reason: String| diesel::ConnectionError::BadConnection(reason);
    let (client, connection) = crate::tls::connect(url)
        .await
        .map_err(|err| bad(err.to_string()))?
        .map_err(|err| bad(root_cause(&err)))?;
    AsyncPgConnection::try_from_client_and_connection(client, connection).await
}

/// Opens a tokio-postgres connection (TLS as the URL's `sslmode` asks), for bulk loads and
/// administration. The connection's driver task runs on the current runtime.
///
/// # Errors
/// [`StoreError::Unreachable`] when the server does not answer within `timeout`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn connect_admin(
    url: &str,
    timeout: Duration,
) -> Result<tokio_postgres::Client, StoreError> {
    let unreachable = |reason: String| StoreError::Unreachable {
        target: describe_target(url),
        reason,
    };
    let (client, connection) = tokio::time::timeout(timeout, crate::tls::connect(url))
        .await
        .map_err(|_| unreachable(format!("no answer within {} s", timeout.as_secs())))??
        .map_err(|err| unreachable(root_cause(&err)))?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(error = %err, "administrative connection closed");
        }
    });
    Ok(client)
}

/// A transaction at read committed whatever the server's default: what changes case records or
/// writes a record snapshot runs in one, as the record snapshots' triggers must see every
/// snapshot committed before they run (`crate::snapshots`).
///
/// # Errors
/// [`StoreError::Statement`] when PostgreSQL refuses.
pub async fn read_committed(
    client: &mut tokio_postgres::Client,
) -> Result<tokio_postgres::Transaction<'_>, StoreError> {
    Ok(client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::ReadCommitted)
        .start()
        .await?)
}

/// The innermost cause of an error, which for connection failures is the useful part
/// ("Connection refused").
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}
