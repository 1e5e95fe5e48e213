//! Per-test databases made from a migrated template, in the style of crates.io's test harness.
//!
//! The first test of a process takes a cross-process advisory lock, creates the template
//! database `atlas_template_<hash of migrations>` and migrates it once; every test then gets its
//! own `CREATE DATABASE … TEMPLATE …` copy, dropped when the [`TestDatabase`] is dropped, so
//! tests run in parallel and never share state.
//!
//! The server is the one named by `DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); when nothing answers there, a private cluster
//! is started under the Cargo target directory exactly as `atlas demo` does (see [`crate::cluster`]).

use std::path::PathBuf;
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use tokio::sync::OnceCell;

use atlas_store::{connect_admin, migrations};

use crate::ClusterError;
use crate::cluster::{locate_or_start, quote_identifier, with_database};

/// The server URL used when `DATABASE_URL` is not set.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

const TEMPLATE_LOCK: i64 = 0x4154_4c41_535f_5445; // "ATLAS_TE"

/// The located server (maintenance database URL) and the template's name, found once per process.
static TEMPLATE: OnceCell<(String, String)> = OnceCell::const_new();

/// A database of its own for one test, dropped with it.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    maintenance_url: String,
}

impl TestDatabase {
    /// Creates a fresh, migrated database.
    ///
    /// # Panics
    /// When no PostgreSQL can be found or started: a test cannot run without one.
    pub async fn new() -> Self {
        match Self::try_new().await {
            Ok(database) => database,
            Err(err) => panic!("cannot create a test database: {err}"),
        }
    }

    /// Creates a fresh database with no schema at all, to test migrating from nothing.
    ///
    /// # Panics
    /// When no PostgreSQL can be found or started.
    pub async fn empty() -> Self {
        match Self::try_new_from(Some("template0")).await {
            Ok(database) => database,
            Err(err) => panic!("cannot create a test database: {err}"),
        }
    }

    async fn try_new() -> Result<Self, ClusterError> {
        Self::try_new_from(None).await
    }

    /// A database copied from `template`, or from the migrated template when `None`.
    async fn try_new_from(template: Option<&str>) -> Result<Self, ClusterError> {
        let (maintenance_url, migrated) = TEMPLATE.get_or_try_init(prepare_template).await?;
        let template = template.unwrap_or(migrated);
        let name = format!("atlas_test_{}", uuid::Uuid::new_v4().simple());
        let client = connect_admin(maintenance_url, Duration::from_secs(10)).await?;
        client
            .batch_execute(&format!(
                "CREATE DATABASE {} TEMPLATE {}",
                quote_identifier(&name),
                quote_identifier(template)
            ))
            .await?;
        Ok(Self {
            url: with_database(maintenance_url, &name)?,
            name,
            maintenance_url: maintenance_url.clone(),
        })
    }

    /// The URL of this test's database.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (maintenance_url, name) = (self.maintenance_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on: use a thread with
        // its own runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let client = connect_admin(&maintenance_url, Duration::from_secs(10))
                    .await
                    .ok()?;
                client
                    .batch_execute(&format!(
                        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                        quote_identifier(&name)
                    ))
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            tracing::warn!(database = %self.name, "could not drop test database");
        }
    }
}

async fn prepare_template() -> Result<(String, String), ClusterError> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
    let located = locate_or_start(&url, &private_cluster_dir()).await?;
    let maintenance_url = with_database(&located.url, "postgres")?;
    let template = format!("atlas_template_{}", migrations_hash());
    let client = connect_admin(&maintenance_url, Duration::from_secs(10)).await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&TEMPLATE_LOCK])
        .await?;
    let ready = client
        .query_opt(
            "SELECT datistemplate FROM pg_database WHERE datname = $1",
            &[&template],
        )
        .await?
        .map(|row| row.get::<_, bool>(0));
    let prepared = async {
        if ready != Some(true) {
            let quoted = quote_identifier(&template);
            client
                .batch_execute(&format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
                .await?;
            client
                .batch_execute(&format!("CREATE DATABASE {quoted}"))
                .await?;
            migrations::run_pending(&with_database(&maintenance_url, &template)?).await?;
            client
                .batch_execute(&format!("ALTER DATABASE {quoted} WITH IS_TEMPLATE true"))
                .await?;
        }
        Ok::<_, ClusterError>(())
    }
    .await;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&TEMPLATE_LOCK])
        .await?;
    prepared?;
    Ok((maintenance_url, template))
}

/// A short hash of every migration file, so a changed schema gets a fresh template.
fn migrations_hash() -> String {
    let directory = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&directory)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .flat_map(|entry| {
            std::fs::read_dir(entry.path())
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
        })
        .map(|entry| entry.path())
        .collect();
    files.sort();
    let mut hasher = Sha256::new();
    for file in files {
        hasher.update(
            file.strip_prefix(&directory)
                .unwrap_or(&file)
                .to_string_lossy()
                .as_bytes(),
        );
        hasher.update(std::fs::read(&file).unwrap_or_default());
    }
    hex::encode(&hasher.finalize()[..6])
}

/// Where a private cluster for tests lives: `<target>/atlas-test-pg`.
fn private_cluster_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target")));
    target.join("atlas-test-pg")
}

/// The bundled England boundaries (ONS, Open Government Licence v3.0), one feature per line.
pub const ENGLAND_BOUNDARIES: &str =
    include_str!("../../../data/reference/utla_boundaries_england.geojson");

/// The bundled England neighbour pairs, in both directions.
pub const ENGLAND_NEIGHBOURS: &str =
    include_str!("../../../data/reference/utla_neighbours_england.csv");

/// The bundled places of England (GeoNames, CC BY 4.0).
pub const ENGLAND_PLACES: &str = include_str!("../../../data/reference/england_places.csv");

/// A FeatureCollection holding only the named areas of the bundled England boundaries, so tests
/// can import a few partnerships quickly.
#[must_use]
pub fn england_boundaries(codes: &[&str]) -> String {
    let features: Vec<&str> = ENGLAND_BOUNDARIES
        .lines()
        .filter(|line| {
            codes
                .iter()
                .any(|code| line.contains(&format!("\"code\":\"{code}\"")))
        })
        .map(|line| line.trim_end_matches(','))
        .collect();
    format!(
        "{{\"type\":\"FeatureCollection\",\"features\":[\n{}\n]}}",
        features.join(",\n")
    )
}

/// The neighbour pairs of the bundled table whose both ends are among `codes`.
#[must_use]
pub fn england_neighbours(codes: &[&str]) -> String {
    let mut lines = ENGLAND_NEIGHBOURS.lines();
    let header = lines.next().unwrap_or_default();
    let kept: Vec<&str> = lines
        .filter(|line| line.split(',').all(|code| codes.contains(&code.trim())))
        .collect();
    format!("{header}\n{}\n", kept.join("\n"))
}

/// A certificate authority of a test's own and a certificate it signed for `localhost`, in PEM:
/// what TLS tests serve (a database, an identity provider) and trust.
#[derive(Debug, Clone)]
pub struct LocalhostCertificate {
    /// The authority's certificate: what a client is told to trust.
    pub authority: String,
    /// The certificate for `localhost`, signed by the authority.
    pub certificate: String,
    /// Its private key.
    pub key: String,
}

impl LocalhostCertificate {
    /// A fresh authority and certificate.
    ///
    /// # Panics
    /// When rcgen cannot make a key (the system's random source failed).
    #[must_use]
    pub fn generate() -> Self {
        let authority_key = rcgen::KeyPair::generate().expect("a key pair");
        let mut authority_params =
            rcgen::CertificateParams::new(Vec::<String>::new()).expect("authority parameters");
        authority_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let authority = authority_params
            .self_signed(&authority_key)
            .expect("a self-signed authority");
        let issuer = rcgen::Issuer::from_params(&authority_params, &authority_key);
        let key = rcgen::KeyPair::generate().expect("a key pair");
        let certificate = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("certificate parameters")
            .signed_by(&key, &issuer)
            .expect("a signed certificate");
        Self {
            authority: authority.pem(),
            certificate: certificate.pem(),
            key: key.serialize_pem(),
        }
    }
}
