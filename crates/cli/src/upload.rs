//! `atlas upload`: send an extract to a server with a progress bar.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context as _;
use atlas_app::Settings;
use futures_util::StreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use uuid::Uuid;

/// Options of `atlas upload`.
#[derive(Debug, clap::Args)]
pub struct UploadArgs {
    /// The extract: `.csv`, `.ndjson` or `.jsonl`, optionally gzip-compressed (`.gz`).
    file: PathBuf,
    /// Base URL of the server (default: the configured server address).
    #[arg(long)]
    server: Option<String>,
    /// Your bearer token (an agency analyst's, naming your agency).
    #[arg(long, env = "ATLAS_TOKEN", hide_env_values = true)]
    token: String,
    /// A committed batch this extract corrects.
    #[arg(long, value_name = "BATCH")]
    supersedes: Option<Uuid>,
    /// A PEM certificate to trust, for a server with a self-signed certificate.
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
}

/// The server's answer to an upload.
pub struct Uploaded {
    /// The batch summary (`BatchView`).
    pub batch: Value,
    /// The agency had already uploaded this content: the server answered 200 with the earlier
    /// batch, and stored nothing new, instead of 201 with a new batch.
    pub repeat: bool,
}

impl Uploaded {
    /// `batch <id>`, or `already uploaded: batch <id>` for a repeat.
    #[must_use]
    pub fn batch_name(&self) -> String {
        format!(
            "{}batch {}",
            if self.repeat {
                "already uploaded: "
            } else {
                ""
            },
            self.batch["batch_id"].as_str().unwrap_or("?")
        )
    }
}

/// Runs the upload and prints the batch summary: a repeat of an earlier upload says
/// `already uploaded: batch <id>` and succeeds too, since the extract is stored either way.
pub async fn run(settings: &Settings, args: UploadArgs) -> anyhow::Result<()> {
    let server = args.server.clone().unwrap_or_else(|| {
        let scheme = if settings.server.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        format!(
            "{scheme}://{}:{}",
            settings.server.host, settings.server.port
        )
    });
    let uploaded = upload(
        &server,
        &args.file,
        &args.token,
        args.supersedes,
        args.ca_cert.as_deref(),
    )
    .await?;
    println!("{}", describe(&server, &uploaded));
    Ok(())
}

/// Sends the file with the caller's bearer `token` and returns the server's answer.
pub async fn upload(
    server: &str,
    path: &Path,
    token: &str,
    supersedes: Option<Uuid>,
    ca_cert: Option<&Path>,
) -> anyhow::Result<Uploaded> {
    let (content_type, gzip) = media_type(path)?;
    let file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("cannot read {}", path.display()))?;
    let size = file.metadata().await?.len();
    let bar = ProgressBar::new(size).with_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let rows = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let (progress, counted) = (bar.clone(), Arc::clone(&rows));
    let stream = tokio_util::io::ReaderStream::new(file).inspect(move |chunk| {
        if let Ok(bytes) = chunk {
            progress.inc(bytes.len() as u64);
            if !gzip {
                let total = counted.fetch_add(bytecount(bytes), Ordering::Relaxed);
                let rate = total as f64 / started.elapsed().as_secs_f64().max(0.001);
                progress.set_message(format!("{total} rows, {rate:.0} rows/s"));
            }
        }
    });
    let mut url = format!("{}/api/v1/extracts", server.trim_end_matches('/'));
    if let Some(old) = supersedes {
        url.push_str(&format!("?supersedes={old}"));
    }
    let mut request = client(ca_cert)?
        .post(&url)
        .header("content-type", content_type)
        .header("content-length", size)
        .bearer_auth(token)
        .body(reqwest::Body::wrap_stream(stream));
    if gzip {
        request = request.header("content-encoding", "gzip");
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach {server}"))?;
    bar.finish_and_clear();
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .with_context(|| format!("the server answered {status} without JSON"))?;
    if !status.is_success() {
        anyhow::bail!(
            "the server refused the extract ({status}): {}",
            body["message"].as_str().unwrap_or("no reason given")
        );
    }
    Ok(Uploaded {
        batch: body,
        repeat: status == reqwest::StatusCode::OK,
    })
}

/// An HTTP client that also trusts `ca_cert` (PEM), when given.
///
/// # Errors
/// When the certificate cannot be read or parsed.
pub fn client(ca_cert: Option<&Path>) -> anyhow::Result<reqwest::Client> {
    let mut client = reqwest::Client::builder();
    if let Some(ca) = ca_cert {
        let pem = std::fs::read(ca).with_context(|| format!("cannot read {}", ca.display()))?;
        client = client.add_root_certificate(
            reqwest::Certificate::from_pem(&pem).context("--ca-cert is not a PEM certificate")?,
        );
    }
    Ok(client.build()?)
}

fn bytecount(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|byte| **byte == b'\n').count() as u64
}

/// The media type and gzip flag of an extract, from its file name.
fn media_type(path: &Path) -> anyhow::Result<(&'static str, bool)> {
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let (stem, gzip) = name
        .strip_suffix(".gz")
        .map_or((name.as_str(), false), |stem| (stem, true));
    if stem.ends_with(".csv") {
        Ok(("text/csv", gzip))
    } else if stem.ends_with(".ndjson") || stem.ends_with(".jsonl") {
        Ok(("application/x-ndjson", gzip))
    } else {
        anyhow::bail!(
            "{}: name the file .csv, .ndjson or .jsonl (optionally .gz) so its format is known",
            path.display()
        )
    }
}

/// The batch summary for people, beginning with [`Uploaded::batch_name`].
pub fn describe(server: &str, uploaded: &Uploaded) -> String {
    let batch = &uploaded.batch;
    let quality = &batch["quality"];
    let percent = |value: &Value| {
        value
            .as_f64()
            .map_or_else(|| "-".to_owned(), |share| format!("{:.1} %", share * 100.0))
    };
    let partnerships = batch["partnerships"]
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(code, rows)| format!("{code} {rows}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    format!(
        "{name}: {status}, {accepted} of {total} rows accepted, {rejected} rejected\n\
         quality: {geocoded} geocoded, {indicators} with indicators, dates {first} to {last}\n\
         partnerships: {partnerships}\n\
         rejection report: {server}{rejections}",
        name = uploaded.batch_name(),
        status = batch["status"].as_str().unwrap_or("?"),
        accepted = batch["rows_accepted"],
        total = batch["rows_total"],
        rejected = batch["rows_rejected"],
        geocoded = percent(&quality["geocoded_share"]),
        indicators = percent(&quality["indicator_completeness"]),
        first = quality["first_date"].as_str().unwrap_or("-"),
        last = quality["last_date"].as_str().unwrap_or("-"),
        rejections = batch["rejections"].as_str().unwrap_or_default(),
    )
}
