//! The `atlas` command: run the service, migrate, import reference geography, manage agencies
//! and sharing agreements, verify the audit trail, make development tokens, and start the demo.

mod admin;
mod demo;
mod pseudonymise;
mod synthetic;
mod token;
mod upload;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use atlas_app::Settings;
use atlas_ingest::reference::{self, BoundaryFields};
use atlas_server::Application;
use atlas_store::StoreError;
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret as _;

/// Safeguard Atlas: multi-agency CSE hotspot maps for safeguarding partnerships.
#[derive(Debug, Parser)]
#[command(name = "atlas", version, about)]
struct Cli {
    /// A configuration file layered over config/default.toml and config/<ATLAS_ENV>.toml
    /// (environment variables still override it).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply pending migrations, then serve the API until SIGINT or SIGTERM.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Start everything on a fresh machine: database (a private cluster when none answers),
    /// migrations, England's reference geography, and the server.
    Demo(demo::DemoArgs),
    /// Reference data: geography.
    Reference {
        #[command(subcommand)]
        command: ReferenceCommand,
    },
    /// Agency side: turn a raw export holding identifiers into a canonical extract keyed with
    /// the partnership's linkage key (`atlas pseudonymise keygen` makes one).
    Pseudonymise(pseudonymise::PseudonymiseArgs),
    /// Upload an extract to a server (progress bar; prints the batch summary). A repeat of an
    /// earlier upload prints `already uploaded: batch <id>` and exits 0 as well.
    Upload(upload::UploadArgs),
    /// Agencies that submit extracts.
    Agency {
        #[command(subcommand)]
        command: admin::AgencyCommand,
    },
    /// Sharing agreements between partnerships.
    Agreement {
        #[command(subcommand)]
        command: admin::AgreementCommand,
    },
    /// Users registered with this instance (their partnership, agency and roles).
    User {
        #[command(subcommand)]
        command: admin::UserCommand,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: admin::AuditCommand,
    },
    /// Disclosure-controlled exports.
    Export {
        #[command(subcommand)]
        command: admin::ExportCommand,
    },
    /// Corrections of frozen summaries (what neighbours and the national export see).
    Summary {
        #[command(subcommand)]
        command: admin::SummaryCommand,
    },
    /// Quarterly problem profiles of a partnership (the server also generates them on a
    /// schedule).
    Profile {
        #[command(subcommand)]
        command: admin::ProfileCommand,
    },
    /// Development signing keys and tokens.
    Token {
        #[command(subcommand)]
        command: token::TokenCommand,
    },
    /// Delete case records older than their kind's retention period (`retention.keep_years`).
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
    },
    /// Erase one child's records on a lawful request (by the agency's pseudonym).
    Erasure {
        #[command(subcommand)]
        command: ErasureCommand,
    },
    /// The server pseudonym key's fingerprint in the database.
    PseudonymKey {
        #[command(subcommand)]
        command: PseudonymKeyCommand,
    },
}

#[derive(Debug, Subcommand)]
enum RetentionCommand {
    /// Delete, in one audited transaction, every record older than its kind's period, and
    /// print how many per partnership and kind.
    Apply {
        /// Count what would be deleted, and delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum ErasureCommand {
    /// Delete, in one audited transaction, every record of the child with this pseudonym (keyed
    /// again with ingest.pseudonym_key, as at upload) and print how many per partnership and
    /// kind. The audit entry carries the reference, never the pseudonym.
    Apply {
        /// The child's pseudonym as the agency's extracts carry it (64 hexadecimal characters),
        /// or `-` to read it from standard input (so it stays out of the process list and the
        /// shell's history).
        #[arg(long)]
        pseudonym: String,
        /// The request's reference in the controller's records (a case number, never a name).
        #[arg(long)]
        reference: String,
        /// Only the records this agency uploaded (its id, as `atlas agency list` prints it).
        #[arg(long)]
        agency: Option<uuid::Uuid>,
        /// Count the records and delete nothing (the lookup is audited all the same).
        #[arg(long)]
        dry_run: bool,
    },
}

impl std::fmt::Debug for ErasureCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ErasureCommand([REDACTED])")
    }
}

#[derive(Debug, Subcommand)]
enum PseudonymKeyCommand {
    /// Record the configured ingest.pseudonym_key as the key of this database's records: for a
    /// database that held records before fingerprints were kept (servers record the key
    /// themselves on a database without records). Only once sure it is the key that made them.
    Record,
}

#[derive(Debug, Subcommand)]
enum ReferenceCommand {
    /// Import partnership boundaries (GeoJSON) and, optionally, their neighbours (CSV); a
    /// postcode directory; child populations. Each boundary's H3 coverage is computed at
    /// resolution 9 and coarser; re-importing the same files changes nothing.
    #[command(group(clap::ArgGroup::new("source").required(true).multiple(true).args(["boundaries", "postcodes", "population", "small_area_population", "comparators", "regional_groups", "places"])))]
    Import {
        /// GeoJSON FeatureCollection of Polygon/MultiPolygon features, WGS84.
        #[arg(long, value_name = "FILE")]
        boundaries: Option<PathBuf>,
        /// CSV with columns `code,neighbour_code` (with --boundaries).
        #[arg(long, value_name = "FILE", requires = "boundaries")]
        neighbours: Option<PathBuf>,
        /// ONS Postcode Directory CSV (`pcd,oseast1m,osnrth1m,...`).
        #[arg(long, value_name = "FILE")]
        postcodes: Option<PathBuf>,
        /// Comparator groups, CSV `code,comparator_code` (a partnership's statistical
        /// neighbours, say): replaces the groups of the partnerships it names.
        #[arg(long, value_name = "FILE")]
        comparators: Option<PathBuf>,
        /// Regional groups, CSV `group,code` (a named group of partnerships that work
        /// together, one member per row): replaces the groups it names. Regional requests ask
        /// every member of a group.
        #[arg(long, value_name = "FILE")]
        regional_groups: Option<PathBuf>,
        /// Place names, CSV `name,lat,lon,population,utla_code` (towns and villages, their
        /// point in WGS84, population, and upper-tier authority; as
        /// data/reference/england_places.csv): replaces every stored place. They name hot spot
        /// areas, cells and release rows and label the map.
        #[arg(long, value_name = "FILE")]
        places: Option<PathBuf>,
        /// The places' attribution, shown wherever a place name is.
        #[arg(long, default_value = atlas_app::places::GEONAMES_ATTRIBUTION, requires = "places")]
        places_source: String,
        /// Children aged 0-17 per local authority and year, CSV `code,year,population_0_17`
        /// (ONS mid-year estimates), the denominators of rates per 10,000 children.
        #[arg(long, value_name = "FILE")]
        population: Option<PathBuf>,
        /// Where the population figures come from, as rates will cite it.
        #[arg(
            long,
            default_value = "ONS mid-year population estimates",
            requires = "population"
        )]
        population_source: String,
        /// Children aged 0-17 per small area (LSOA or output area): CSV
        /// `code,lat,lon,population_0_17,year` (its reference point), or GeoJSON features with
        /// those properties and a Point or a boundary: what hotspots set counts against.
        /// Without population and year (data/reference/lsoa_centroids_england.csv) every area
        /// stands for 344 children, an approximation labelled as such.
        #[arg(long, value_name = "FILE")]
        small_area_population: Option<PathBuf>,
        /// Where the small-area figures come from, as hotspot answers will cite it.
        #[arg(
            long,
            default_value = "ONS small-area population estimates",
            requires = "small_area_population"
        )]
        small_area_source: String,
        /// Property holding each feature's GSS code.
        #[arg(long, default_value = "code")]
        code_field: String,
        /// Property holding each feature's name.
        #[arg(long, default_value = "name")]
        name_field: String,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => {
            // --help and --version.
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            // clap's first paragraph names the problem (and, for missing arguments, lists them
            // on the lines below); usage and tips follow a blank line.
            let rendered = err.to_string();
            let problem: Vec<&str> = rendered
                .lines()
                .take_while(|line| !line.trim().is_empty())
                .map(str::trim)
                .collect();
            eprintln!("{} (try `atlas --help`)", problem.join(" "));
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    atlas_app::telemetry::init(&settings.log);
    // Whatever the command appends to the audit trail, or verifies, uses the configured key.
    atlas_app::audit_trail::use_chain_key(&settings.audit).map_err(anyhow::Error::msg)?;
    match cli.command {
        Command::Serve => serve(&settings).await,
        Command::Migrate => {
            let applied = migrate(settings.database.url.expose_secret()).await?;
            println!("{}", describe_migrations(&applied));
            Ok(())
        }
        Command::Demo(args) => demo::run(settings, args).await,
        Command::Reference {
            command:
                ReferenceCommand::Import {
                    boundaries,
                    neighbours,
                    postcodes,
                    population,
                    population_source,
                    small_area_population,
                    small_area_source,
                    comparators,
                    regional_groups,
                    places,
                    places_source,
                    code_field,
                    name_field,
                },
        } => {
            let url = settings.database.url.expose_secret();
            if let Some(boundaries) = boundaries {
                let fields = BoundaryFields {
                    code: code_field,
                    name: name_field,
                };
                let summary =
                    import_reference(url, &boundaries, neighbours.as_deref(), &fields).await?;
                println!("{}", describe_import(&summary));
            }
            if let Some(postcodes) = postcodes {
                println!("{}", import_postcodes(url, &postcodes).await?);
            }
            if let Some(comparators) = comparators {
                println!("{}", import_comparators(&settings, &comparators).await?);
            }
            if let Some(groups) = regional_groups {
                println!("{}", import_regional_groups(&settings, &groups).await?);
            }
            if let Some(places) = places {
                println!(
                    "{}",
                    import_places(&settings, &places, &places_source).await?
                );
            }
            if let Some(population) = population {
                println!(
                    "{}",
                    import_population(&settings, &population, &population_source).await?
                );
            }
            if let Some(path) = small_area_population {
                let file = std::fs::File::open(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let read = reference::read_small_area_populations(std::io::BufReader::new(file))
                    .with_context(|| format!("{} refused", path.display()))?;
                migrate(url).await?;
                println!(
                    "small areas: {}",
                    import_small_areas(url, &read, Some(&small_area_source)).await?
                );
            }
            Ok(())
        }
        Command::Agency { command } => admin::agency(&settings, command).await,
        Command::Agreement { command } => admin::agreement(&settings, command).await,
        Command::User { command } => admin::user(&settings, command).await,
        Command::Audit { command } => admin::audit(&settings, command).await,
        Command::Export { command } => admin::export(&settings, command).await,
        Command::Summary { command } => admin::summary(&settings, command).await,
        Command::Profile { command } => admin::profile(&settings, command).await,
        Command::Token { command } => token::run(&settings, command),
        Command::Retention {
            command: RetentionCommand::Apply { dry_run },
        } => {
            settings.check_chain_key()?;
            require_current_schema(&settings).await?;
            let database = atlas_store::Database::new(&settings.database)?;
            let removed = atlas_app::retention::apply(
                &database,
                &settings.retention,
                chrono::Utc::now().date_naive(),
                &cli_subject(),
                dry_run,
            )
            .await
            .map_err(|reason| anyhow::anyhow!("retention: {reason}"))?;
            if settings.retention.keep_years.is_empty() {
                println!(
                    "retention: no period is configured ([retention] keep_years): nothing deleted"
                );
            }
            report_removed("retention", &removed, dry_run);
            Ok(())
        }
        Command::Erasure {
            command:
                ErasureCommand::Apply {
                    pseudonym,
                    reference,
                    agency,
                    dry_run,
                },
        } => {
            let pseudonym = if pseudonym == "-" {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                line
            } else {
                pseudonym
            };
            let erasure = atlas_app::retention::Erasure {
                pseudonym,
                agency,
                reference,
            };
            erasure
                .check()
                .map_err(|reason| anyhow::anyhow!("erasure: {reason}"))?;
            settings.check_keys()?;
            let url = settings.database.url.expose_secret();
            require_current_schema(&settings).await?;
            let key = settings
                .ingest
                .pseudonym_key
                .as_ref()
                .map(|key| atlas_ingest::pseudonym::PseudonymKey::from_hex(key.expose_secret()))
                .transpose()?
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "erasure: ingest.pseudonym_key is not set: the key the records were \
                         pseudonymised with is needed to find them"
                    )
                })?;
            let removed = atlas_app::retention::erase(url, &key, &erasure, &cli_subject(), dry_run)
                .await
                .map_err(|reason| anyhow::anyhow!("erasure: {reason}"))?;
            report_removed("erasure", &removed, dry_run);
            Ok(())
        }
        Command::PseudonymKey {
            command: PseudonymKeyCommand::Record,
        } => {
            settings.check_keys()?;
            migrate(settings.database.url.expose_secret()).await?;
            let guard = key_guard(&settings)?;
            let database = atlas_store::Database::new(&settings.database)?;
            println!("{}", guard.record(&database).await?);
            Ok(())
        }
        Command::Pseudonymise(args) => pseudonymise::run(args),
        Command::Upload(args) => upload::run(&settings, args).await,
    }
}

async fn serve(settings: &Settings) -> anyhow::Result<()> {
    refuse_another_pseudonym_key(settings).await?;
    let application = Application::build(settings)?;
    let scheme = if application.is_tls() {
        "https"
    } else {
        "http"
    };
    tracing::info!(
        "listening on {scheme}://{}:{}",
        settings.server.host,
        application.port()
    );
    application.run_until_stopped().await?;
    Ok(())
}

/// The audit subject of the person at the command line: `cli:<user>`.
fn cli_subject() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned());
    format!("cli:{user}")
}

/// Prints what a retention or erasure run deleted (or, `dry_run`, would delete), per
/// partnership and kind, then the total.
fn report_removed(run: &str, removed: &[atlas_store::retention::Removed], dry_run: bool) {
    for gone in removed {
        println!(
            "{} {}: {} record(s) {}",
            gone.partnership,
            gone.record_kind,
            gone.records,
            if dry_run {
                "would be deleted"
            } else {
                "deleted"
            }
        );
    }
    println!(
        "{run}: {} record(s) {}",
        removed.iter().map(|gone| gone.records).sum::<i64>(),
        if dry_run {
            "would be deleted (dry run)"
        } else {
            "deleted"
        }
    );
}

/// The guard of the configured server pseudonym key.
fn key_guard(settings: &Settings) -> anyhow::Result<atlas_app::key_guard::KeyGuard> {
    let key = settings
        .ingest
        .pseudonym_key
        .as_ref()
        .map(|key| atlas_ingest::pseudonym::PseudonymKey::from_hex(key.expose_secret()))
        .transpose()?;
    Ok(atlas_app::key_guard::KeyGuard::new(key.as_ref()))
}

/// Refuses to start with a pseudonym key other than the one the database's records were made
/// with, when the database answers within 15 s (a loaded machine is slow to) and says so (reading only: the server records a
/// key once it serves; otherwise it checks once it has migrated the database, and refuses
/// uploads).
async fn refuse_another_pseudonym_key(settings: &Settings) -> anyhow::Result<()> {
    settings.check_keys()?;
    let guard = key_guard(settings)?;
    let database = atlas_store::Database::new(&settings.database)?;
    if let Ok(Ok(Some(reason))) =
        tokio::time::timeout(Duration::from_secs(15), guard.compare(&database)).await
    {
        anyhow::bail!("{reason}");
    }
    Ok(())
}

/// Refuses to go on while migrations are pending: deleting records is not the moment to
/// rewrite a table (a migration may take minutes and its locks); `atlas migrate` first.
async fn require_current_schema(settings: &Settings) -> anyhow::Result<()> {
    let database = atlas_store::Database::new(&settings.database)?;
    let pending = atlas_store::migrations::pending(&database).await?;
    if !pending.is_empty() {
        anyhow::bail!(
            "the database schema is not current ({} migration(s) pending): run `atlas migrate` \
             first, in a maintenance window",
            pending.len()
        );
    }
    Ok(())
}

/// Applies migrations, retrying for a while when PostgreSQL is unreachable.
async fn migrate(url: &str) -> anyhow::Result<Vec<String>> {
    const PATIENCE: Duration = Duration::from_secs(15);
    let started = Instant::now();
    loop {
        match atlas_app::reference::migrate(url).await {
            Err(StoreError::Unreachable { target, reason }) if started.elapsed() < PATIENCE => {
                tracing::warn!(%target, %reason, "PostgreSQL is not reachable; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(StoreError::Unreachable { target, reason }) => anyhow::bail!(
                "PostgreSQL is not reachable at {target}: {reason} (gave up after {} s; is it running? \
                 set DATABASE_URL or database.url)",
                PATIENCE.as_secs()
            ),
            other => return Ok(other?),
        }
    }
}

fn describe_migrations(applied: &[String]) -> String {
    if applied.is_empty() {
        "database schema is current; no migrations to apply".to_owned()
    } else {
        format!(
            "applied {} migration(s): {}",
            applied.len(),
            applied.join(", ")
        )
    }
}

/// Reads the reference table at `path` with `read`, naming the file in any error.
fn read_table<T>(
    path: &std::path::Path,
    read: fn(std::io::BufReader<std::fs::File>) -> Result<T, reference::ReferenceError>,
) -> anyhow::Result<T> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    read(std::io::BufReader::new(file)).with_context(|| format!("{} refused", path.display()))
}

/// Reads, validates and imports comparator groups.
async fn import_comparators(settings: &Settings, path: &std::path::Path) -> anyhow::Result<String> {
    let pairs = read_table(path, reference::read_comparators)?;
    let database = atlas_store::Database::new(&settings.database)?;
    let mut conn = database.connection().await?;
    let stored = atlas_store::partnerships::replace_comparators(&mut conn, &pairs).await?;
    Ok(format!("comparator groups: {stored} pairs stored"))
}

/// Reads, validates and imports place names, replacing every stored place.
async fn import_places(
    settings: &Settings,
    path: &std::path::Path,
    source: &str,
) -> anyhow::Result<String> {
    let places = read_table(path, reference::read_places)?;
    let database = atlas_store::Database::new(&settings.database)?;
    let mut conn = database.connection().await?;
    let stored = atlas_store::places::replace(&mut conn, &places, source).await?;
    Ok(format!("places: {stored} stored ({source})"))
}

/// Reads, validates and imports regional groups.
async fn import_regional_groups(
    settings: &Settings,
    path: &std::path::Path,
) -> anyhow::Result<String> {
    let members = read_table(path, reference::read_regional_groups)?;
    let database = atlas_store::Database::new(&settings.database)?;
    let mut conn = database.connection().await?;
    let stored = atlas_store::partnerships::replace_regional_groups(&mut conn, &members).await?;
    Ok(format!(
        "regional groups: {stored} groups stored ({} members)",
        members.len()
    ))
}

/// Reads, validates and imports a child population table.
async fn import_population(
    settings: &Settings,
    path: &std::path::Path,
    source: &str,
) -> anyhow::Result<String> {
    let rows = read_table(path, reference::read_populations)?;
    let estimates: Vec<atlas_store::populations::Estimate> = rows
        .into_iter()
        .map(|row| {
            let population_0_17 = i32::try_from(row.population_0_17)
                .with_context(|| format!("{} {}: too many children", row.code, row.year))?;
            Ok(atlas_store::populations::Estimate {
                code: row.code,
                year: row.year,
                population_0_17,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let database = atlas_store::Database::new(&settings.database)?;
    let mut conn = database.connection().await?;
    let summary = atlas_store::populations::import(&mut conn, &estimates, false, source).await?;
    Ok(format!(
        "child populations: {} written, {} unchanged",
        summary.written, summary.unchanged
    ))
}

/// Reads, validates and imports reference geography files.
async fn import_reference(
    url: &str,
    boundaries: &Path,
    neighbours: Option<&Path>,
    fields: &BoundaryFields,
) -> anyhow::Result<atlas_store::reference::ImportSummary> {
    let boundary_file = std::fs::File::open(boundaries)
        .with_context(|| format!("cannot read {}", boundaries.display()))?;
    let fields = fields.clone();
    let areas = tokio::task::spawn_blocking(move || {
        reference::read_boundaries(std::io::BufReader::new(boundary_file), &fields)
    })
    .await?
    .with_context(|| format!("{} refused", boundaries.display()))?;
    let pairs = neighbours
        .map(|path| {
            let file = std::fs::File::open(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            reference::read_neighbours(file).with_context(|| format!("{} refused", path.display()))
        })
        .transpose()?;
    migrate(url).await?;
    Ok(atlas_store::reference::import(url, &areas, pairs.as_deref()).await?)
}

/// Reads and imports an ONS Postcode Directory file; returns what changed, for people.
async fn import_postcodes(url: &str, path: &Path) -> anyhow::Result<String> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let read = tokio::task::spawn_blocking(move || {
        reference::read_postcodes(std::io::BufReader::new(file))
    })
    .await?
    .with_context(|| format!("{} refused", path.display()))?;
    migrate(url).await?;
    let summary = atlas_store::reference::import_postcodes(url, &read.postcodes).await?;
    Ok(format!(
        "postcodes: {} added, {} updated, {} unchanged; {} rows without a grid reference skipped",
        summary.added, summary.updated, summary.unchanged, read.without_grid_reference
    ))
}

/// Stores small-area populations read from a file, labelled approximate (with
/// [`reference::APPROXIMATION`] as their source) when the file has no figures, with `source`
/// otherwise.
async fn import_small_areas(
    url: &str,
    read: &reference::SmallAreaFile,
    source: Option<&str>,
) -> anyhow::Result<String> {
    let source = if read.approximate {
        reference::APPROXIMATION
    } else {
        source.unwrap_or("ONS small-area population estimates")
    };
    let summary = atlas_store::reference::import_small_area_populations(
        url,
        &read.areas,
        read.approximate,
        source,
    )
    .await?;
    Ok(format!(
        "{} ({}): {} added, {} updated, {} unchanged",
        read.areas.len(),
        if read.approximate {
            "approximate: 344 children per LSOA"
        } else {
            "with their figures"
        },
        summary.added,
        summary.updated,
        summary.unchanged
    ))
}

fn describe_import(summary: &atlas_store::reference::ImportSummary) -> String {
    let outcome = if summary.changed_nothing() {
        " (nothing changed)"
    } else {
        ""
    };
    format!(
        "partnerships: {} added, {} updated, {} unchanged; {} coverage cells written; \
         neighbour links: {} added, {} removed{outcome}",
        summary.added,
        summary.updated,
        summary.unchanged,
        summary.cells_written,
        summary.neighbours_added,
        summary.neighbours_removed
    )
}
