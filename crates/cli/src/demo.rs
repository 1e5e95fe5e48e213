//! `atlas demo`: the whole service on a fresh machine with one command.

use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use anyhow::Context as _;
use atlas_domain::GssCode;
use atlas_ingest::reference::{self, BoundaryFields, ReferenceArea};
use atlas_server::{Application, Settings};
use atlas_store::{agencies, cluster};
use uuid::Uuid;

use crate::{pseudonymise, synthetic, upload};
use secrecy::{ExposeSecret as _, SecretString};

/// England's 153 upper-tier local authorities (ONS, Open Government Licence v3.0).
const ENGLAND_BOUNDARIES: &str =
    include_str!("../../../data/reference/utla_boundaries_england.geojson");
/// ONS Postcode Directory rows for Lancashire, Blackpool and Rochdale (OGL v3.0; Royal Mail and
/// ONS attributions in data/reference/README.md).
const POSTCODE_SAMPLE: &str =
    include_str!("../../../data/reference/onspd_sample_lancashire_cluster.csv");
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

    let directory = reference::read_postcodes(POSTCODE_SAMPLE.as_bytes())?;
    let postcodes =
        atlas_store::reference::import_postcodes(&located.url, &directory.postcodes).await?;
    println!(
        "postcodes: {} of Lancashire, Blackpool and Rochdale ({} added, {} unchanged)",
        directory.postcodes.len(),
        postcodes.added,
        postcodes.unchanged
    );

    if let Some(port) = args.port {
        settings.server.port = port;
    }
    if args.tls {
        let (cert, key) = self_signed_certificate(&args.dir.join("tls"))?;
        settings.server.tls_cert = Some(cert);
        settings.server.tls_key = Some(key);
    }
    // The demo is a development instance: identities come from headers, and the server's own
    // pseudonym key is made once in the demo directory unless one is configured.
    settings.auth.dev_headers = true;
    if settings.ingest.pseudonym_key.is_none() {
        let server_key = args.dir.join("server-pseudonym.key");
        if !server_key.exists() {
            pseudonymise::keygen(&server_key)?;
        }
        let key = std::fs::read_to_string(&server_key)
            .with_context(|| format!("cannot read {}", server_key.display()))?;
        settings.ingest.pseudonym_key = Some(SecretString::from(key.trim().to_owned()));
    }
    let agencies = register_agencies(&settings).await?;
    let extracts = prepare_extracts(&args.dir, &areas)?;

    let application = Application::build(&settings)?;
    let scheme = if application.is_tls() {
        "https"
    } else {
        "http"
    };
    let base = format!("{scheme}://{}:{}", settings.server.host, application.port());
    let server = tokio::spawn(application.run_until_stopped());
    wait_until_ready(&base, settings.server.tls_cert.as_deref()).await?;
    println!("\nsynthetic extracts, pseudonymised and uploaded through POST /api/v1/extracts:");
    for (agency, path) in &extracts {
        let identity = upload::Identity {
            agency: agencies[agency],
            user: "demo analyst".to_owned(),
        };
        let batch = upload::upload(
            &base,
            path,
            &identity,
            None,
            settings.server.tls_cert.as_deref(),
        )
        .await?;
        println!(
            "  {agency}: batch {} {}, {} rows accepted, {} rejected",
            batch["batch_id"].as_str().unwrap_or("?"),
            batch["status"].as_str().unwrap_or("?"),
            batch["rows_accepted"],
            batch["rows_rejected"]
        );
    }
    println!(
        "planted clusters: {}",
        synthetic::CLUSTERS.map(|cluster| cluster.name).join(", ")
    );

    println!("\nSafeguard Atlas demo is running at {base}/");
    println!("  partnerships: {base}/api/v1/partnerships");
    println!("  one of them:  {base}/api/v1/partnerships/E10000017?boundary=true");
    println!("  API document: {base}/api/v1/openapi.json");
    println!("  health:       {base}/healthz  {base}/readyz  {base}/metrics");
    println!("  upload as an agency (development identity):");
    for (name, id) in &agencies {
        println!("    {name}: atlas upload FILE --server {base} --agency {id}");
    }
    println!("Press Ctrl-C to stop.");
    server.await??;
    Ok(())
}

/// Registers the demo agencies, or finds them from an earlier run; returns name -> id.
async fn register_agencies(settings: &Settings) -> anyhow::Result<BTreeMap<&'static str, Uuid>> {
    let database = atlas_store::Database::new(&settings.database)?;
    let mut conn = database.connection().await?;
    let existing = agencies::list(&mut conn).await?;
    let mut ids = BTreeMap::new();
    for agency in synthetic::AGENCIES {
        let id = match existing
            .iter()
            .find(|known| known.name == agency.name && known.kind == agency.kind)
        {
            Some(known) => known.id,
            None => {
                let codes = agency
                    .partnerships
                    .iter()
                    .map(|code| GssCode::parse(code))
                    .collect::<Result<Vec<_>, _>>()?;
                agencies::add(&mut conn, agency.name, agency.kind, &codes)
                    .await?
                    .id
            }
        };
        ids.insert(agency.name, id);
    }
    Ok(ids)
}

/// Writes each agency's raw export and pseudonymises it with the demo's linkage key, as the
/// agency would on its own machine; returns agency name -> canonical extract.
fn prepare_extracts(
    dir: &Path,
    areas: &[ReferenceArea],
) -> anyhow::Result<BTreeMap<&'static str, PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let key_path = dir.join("linkage.key");
    if !key_path.exists() {
        pseudonymise::keygen(&key_path)?;
    }
    let key = pseudonymise::read_key(&key_path)?;
    let (raw_dir, extract_dir) = (dir.join("demo/raw"), dir.join("demo/extracts"));
    std::fs::create_dir_all(&raw_dir)?;
    std::fs::create_dir_all(&extract_dir)?;
    let mut extracts = BTreeMap::new();
    for (index, (agency, export)) in synthetic::exports(areas, 3_000, 20_261_128)
        .into_iter()
        .enumerate()
    {
        let raw = raw_dir.join(format!("agency-{index}.csv"));
        std::fs::write(&raw, export)?;
        let extract = extract_dir.join(format!("agency-{index}.csv"));
        let output = std::io::BufWriter::new(std::fs::File::create(&extract)?);
        atlas_ingest::pseudonymise::pseudonymise(
            std::io::BufReader::new(std::fs::File::open(&raw)?),
            output,
            &key,
            &atlas_ingest::pseudonymise::Profile::default(),
        )?;
        extracts.insert(agency, extract);
    }
    Ok(extracts)
}

/// Polls `/readyz` until the server is ready.
async fn wait_until_ready(base: &str, ca_cert: Option<&Path>) -> anyhow::Result<()> {
    let mut client = reqwest::Client::builder();
    if let Some(ca) = ca_cert {
        client = client.add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(ca)?)?);
    }
    let client = client.build()?;
    for _ in 0..150 {
        if client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|response| response.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    anyhow::bail!("the server did not become ready within 30 s")
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
