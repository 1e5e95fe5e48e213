//! Schema migrations, embedded in the binary from the top-level `migrations/` directory.

use std::collections::BTreeSet;

use diesel::Connection as _;
use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::{Database, StoreError};

/// Every migration of the schema, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// Key of the advisory lock held while migrating, so that concurrent starts take turns.
const MIGRATION_LOCK: i64 = 0x4154_4c41_535f_4d49; // "ATLAS_MI"

/// Applies every pending migration and returns the versions it applied. Coverage made by an
/// older tiling is re-tiled afterwards by the caller ([`crate::reference::retile_outdated`]).
///
/// Every pending migration is applied in one transaction holding a transaction-scoped advisory
/// lock: concurrent processes take turns (the later ones find nothing pending), a failure
/// leaves the schema as it was, and it works through a pooler in transaction mode (PgBouncer),
/// where a session lock would be taken and released on different server connections.
///
/// # Errors
/// [`StoreError::Unreachable`] when PostgreSQL does not answer, [`StoreError::Migration`] when a
/// migration fails (every migration of the run is rolled back).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn run_pending(url: &str) -> Result<Vec<String>, StoreError> {
    apply_pending(url.to_owned()).await
}

async fn apply_pending(url: String) -> Result<Vec<String>, StoreError> {
    let connection = crate::pool::establish(&url)
        .await
        .map_err(|err| StoreError::Unreachable {
            target: crate::pool::describe_target(&url),
            reason: err.to_string(),
        })?;
    tokio::task::spawn_blocking(move || {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::from(connection);
        conn.transaction::<_, StoreError, _>(|conn| {
            diesel::RunQueryDsl::execute(
                diesel::sql_query(format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")),
                conn,
            )?;
            conn.run_pending_migrations(MIGRATIONS)
                .map(|versions| versions.iter().map(ToString::to_string).collect())
                .map_err(|err| StoreError::Migration(err.to_string()))
        })
    })
    .await
    .map_err(|err| StoreError::Migration(format!("the migration task stopped: {err}")))?
}

/// The versions of every embedded migration.
#[must_use]
pub fn embedded_versions() -> BTreeSet<String> {
    MigrationSource::<Pg>::migrations(&MIGRATIONS)
        .map(|migrations| {
            migrations
                .iter()
                .map(|migration| migration.name().version().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[derive(diesel::QueryableByName)]
struct AppliedVersion {
    #[diesel(sql_type = diesel::sql_types::Text)]
    version: String,
}

/// The embedded migrations that the database has not applied yet (empty when current).
///
/// # Errors
/// [`StoreError`] when the database cannot be asked.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn pending(database: &Database) -> Result<Vec<String>, StoreError> {
    let mut conn = database.connection().await?;
    let exists: bool = diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(
        "to_regclass('__diesel_schema_migrations') IS NOT NULL",
    ))
    .get_result(&mut conn)
    .await?;
    let applied: BTreeSet<String> = if exists {
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
            .load::<AppliedVersion>(&mut conn)
            .await?
            .into_iter()
            .map(|row| row.version)
            .collect()
    } else {
        BTreeSet::new()
    };
    Ok(embedded_versions().difference(&applied).cloned().collect())
}
