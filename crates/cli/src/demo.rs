//! `atlas demo`: the whole service on a fresh machine with one command.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use atlas_ingest::reference::{self, BoundaryFields};
use atlas_server::{Application, Settings};
use atlas_store::cluster;
use secrecy::{ExposeSecret as _, SecretString};

/// England's 153 upper-tier local authorities (ONS, Open Government Licence v3.0).
const ENGLAND_BOUNDARIES: &str =
    include_str!("../../../data/reference/utla_boundaries_england.geojson");
/// Their land neighbours, in both directions.
const ENGLAND_NEIGHBOURS: &str =
    include_str!("../../../data/reference/utla_neighbours_england.csv");

/// Options of `atlas demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Directory for the demo's own files (private database cluster, certificates).
    #[arg(long, default_value = ".atlas")]
    dir: PathBuf,
    /// Port to serve on (overrides server.port).
    #[arg(long)]
    port: Option<u16>,
    /// Serve HTTPS with a self-signed certificate for localhost, made on first use.
    #[arg(long)]
    tls: bool,
}

/// Runs the demo: each step prints what it did, then the server runs until Ctrl-C.
pub async fn run(mut settings: Settings, args: DemoArgs) -> anyhow::Result<()> {
    let located = cluster::locate_or_start(
        settings.database.url.expose_secret(),
        &args.dir.join("postgres"),
    )
    .await?;
    match &located.private_cluster {
        Some(data_dir) => println!(
            "database: no PostgreSQL answered at the configured URL, so a private cluster runs from {} \
             and keeps running for the next demo (stop it with `{}pg_ctl stop -D {}`)",
            data_dir.display(),
            if cluster::runs_as_other_user() {
                "runuser -u postgres -- "
            } else {
                ""
            },
            data_dir.display()
        ),
        None => println!(
            "database: using {}",
            atlas_store::Database::new(&settings.database)?.target()
        ),
    }
    settings.database.url = SecretString::from(located.url.clone());

    let applied = atlas_store::migrations::run_pending(&located.url).await?;
    println!("schema: {} migration(s) applied", applied.len());

    let areas = tokio::task::spawn_blocking(|| {
        reference::read_boundaries(ENGLAND_BOUNDARIES.as_bytes(), &BoundaryFields::default())
    })
    .await??;
    let pairs = reference::read_neighbours(ENGLAND_NEIGHBOURS.as_bytes())?;
    let summary = atlas_store::reference::import(&located.url, &areas, Some(&pairs)).await?;
    println!(
        "reference geography: {} partnerships ({} added, {} updated, {} unchanged), {} neighbour links (each pair both ways)",
        areas.len(),
        summary.added,
        summary.updated,
        summary.unchanged,
        pairs.len()
    );

    if let Some(port) = args.port {
        settings.server.port = port;
    }
    if args.tls {
        let (cert, key) = self_signed_certificate(&args.dir.join("tls"))?;
        settings.server.tls_cert = Some(cert);
        settings.server.tls_key = Some(key);
    }
    let application = Application::build(&settings)?;
    let scheme = if application.is_tls() {
        "https"
    } else {
        "http"
    };
    let base = format!("{scheme}://{}:{}", settings.server.host, application.port());
    println!("\nSafeguard Atlas demo is running at {base}/");
    println!("  partnerships: {base}/api/v1/partnerships");
    println!("  one of them:  {base}/api/v1/partnerships/E10000017?boundary=true");
    println!("  API document: {base}/api/v1/openapi.json");
    println!("  health:       {base}/healthz  {base}/readyz  {base}/metrics");
    println!("Press Ctrl-C to stop.");
    application.run_until_stopped().await?;
    Ok(())
}

/// Makes (once) a self-signed certificate for localhost and 127.0.0.1.
fn self_signed_certificate(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let (cert_path, key_path) = (dir.join("localhost.crt"), dir.join("localhost.key"));
    if !(cert_path.is_file() && key_path.is_file()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let certified = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])?;
        std::fs::write(&cert_path, certified.cert.pem())?;
        std::fs::write(&key_path, certified.signing_key.serialize_pem())?;
        println!(
            "tls: made a self-signed certificate {} (browsers will warn)",
            cert_path.display()
        );
    }
    Ok((cert_path, key_path))
}
