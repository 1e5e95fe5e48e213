//! `atlas demo`: the whole service on a fresh machine with one command.

use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use anyhow::Context as _;
use atlas_app::Settings;
use atlas_domain::GssCode;
use atlas_domain::ReferenceArea;
use atlas_ingest::pseudonymise::Profile;
use atlas_ingest::reference::{self, BoundaryFields};
use atlas_postgres::cluster;
use atlas_server::Application;
use atlas_store::agencies;
use uuid::Uuid;

use crate::{admin, pseudonymise, synthetic, token, upload};
use atlas_access::keys::SigningKey;
use atlas_access::token::TokenRequest;
use atlas_access::{Action, Role};
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

/// England's towns and villages of 1,000 people or more (GeoNames, CC BY 4.0): the demo's place
/// names.
const ENGLAND_PLACES: &str = include_str!("../../../data/reference/england_places.csv");

/// The profile of the demo's raw exports (config/profiles/demo.toml), with which they are
/// pseudonymised as an agency would.
const DEMO_PROFILE: &str = include_str!("../../../config/profiles/demo.toml");

/// How many 2011 LSOAs each upper-tier local authority holds (derived from ONS LSOA centroids;
/// data/reference/README.md): the base of the demo's approximate child populations.
const LSOA_COUNTS: &str = include_str!("../../../data/reference/lsoa_counts_england.csv");
/// The reference point of every English 2011 LSOA: the demo's small areas, each standing for
/// [`reference::CHILDREN_PER_LSOA`] children (docs/analytics.md, "Population-adjusted hotspots").
const LSOA_CENTROIDS: &str = include_str!("../../../data/reference/lsoa_centroids_england.csv");

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
    /// Child populations, CSV `code,year,population_0_17` (ONS mid-year estimates); without
    /// one the demo approximates them and every rate says so.
    #[arg(long, value_name = "FILE")]
    population: Option<PathBuf>,
}

/// The demo's approximate child populations: every upper-tier authority, each year from 2015 to
/// this one.
fn approximate_populations() -> anyhow::Result<Vec<atlas_store::populations::Estimate>> {
    use chrono::Datelike as _;
    let this_year = i16::try_from(chrono::Utc::now().year())?;
    let mut estimates = Vec::new();
    for line in LSOA_COUNTS.lines().skip(1) {
        let (code, lsoas) = line
            .split_once(',')
            .ok_or_else(|| anyhow::anyhow!("lsoa_counts_england.csv: `{line}`"))?;
        let population =
            lsoas.trim().parse::<i32>()? * i32::try_from(reference::CHILDREN_PER_LSOA)?;
        let code = atlas_domain::GssCode::parse(code)?;
        for year in 2015..=this_year {
            estimates.push(atlas_store::populations::Estimate {
                code: code.clone(),
                year,
                population_0_17: population,
            });
        }
    }
    Ok(estimates)
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

    let applied = atlas_app::reference::migrate(&located.url).await?;
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

    let places = reference::read_places(ENGLAND_PLACES.as_bytes())?;
    let mut conn = atlas_store::Database::new(&settings.database)?
        .connection()
        .await?;
    let stored =
        atlas_store::places::replace(&mut conn, &places, atlas_app::places::GEONAMES_ATTRIBUTION)
            .await?;
    drop(conn);
    println!("places: {stored} towns and villages of England (GeoNames, CC BY 4.0)");

    let small_areas = reference::read_small_area_populations(LSOA_CENTROIDS.as_bytes())?;
    println!(
        "small areas: {}",
        crate::import_small_areas(&located.url, &small_areas, None).await?
    );

    let mut conn = atlas_store::Database::new(&settings.database)?
        .connection()
        .await?;
    let summary = match &args.population {
        Some(path) => {
            let file = std::fs::File::open(path)
                .map_err(|err| anyhow::anyhow!("cannot open {}: {err}", path.display()))?;
            let estimates = reference::read_populations(std::io::BufReader::new(file))?
                .into_iter()
                .map(|row| {
                    Ok(atlas_store::populations::Estimate {
                        code: row.code,
                        year: row.year,
                        population_0_17: i32::try_from(row.population_0_17)?,
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            atlas_store::populations::import(
                &mut conn,
                &estimates,
                false,
                "ONS mid-year population estimates",
            )
            .await?
        }
        None => {
            atlas_store::populations::import(
                &mut conn,
                &approximate_populations()?,
                true,
                reference::APPROXIMATION,
            )
            .await?
        }
    };
    drop(conn);
    println!(
        "child populations: {} ({} written, {} unchanged)",
        if args.population.is_some() {
            "from the file given"
        } else {
            "approximated (no --population file): rates are labelled approximate"
        },
        summary.written,
        summary.unchanged
    );

    if let Some(port) = args.port {
        settings.server.port = port;
    }
    if args.tls {
        let (cert, key) = self_signed_certificate(&args.dir.join("tls"))?;
        settings.server.tls_cert = Some(cert);
        settings.server.tls_key = Some(key);
    }
    // The demo is a development instance: it signs its users' tokens with a key pair made once
    // in the demo directory, and the server's own pseudonym key is made there too unless a key
    // other than the published development key is configured.
    let signing_key = demo_signing_key(&mut settings, &args.dir.join("keys"))?;
    if settings.ingest.pseudonym_key.is_none() || settings.ingest.has_development_key() {
        let server_key = args.dir.join("server-pseudonym.key");
        if !server_key.exists() {
            pseudonymise::keygen(&server_key)?;
            println!(
                "server pseudonym key: made {} (the server's own secret: never share it)",
                server_key.display()
            );
        }
        let key = std::fs::read_to_string(&server_key)
            .with_context(|| format!("cannot read {}", server_key.display()))?;
        settings.ingest.pseudonym_key = Some(SecretString::from(key.trim().to_owned()));
    }
    let agencies = register_agencies(&settings).await?;
    share(&settings).await?;
    let users = demo_users(&agencies);
    let tokens = write_tokens(&settings, &signing_key, &users, &args.dir.join("tokens"))?;
    // The sign-in page offers the same users.
    let listed: Vec<atlas_app::demo::DemoUser> = users
        .iter()
        .map(|user| atlas_app::demo::DemoUser {
            id: user.file.trim_end_matches(".jwt").to_owned(),
            describe: user.describe.clone(),
            token: tokens[&user.file].clone(),
        })
        .collect();
    let users_file = args.dir.join("tokens").join("users.json");
    std::fs::write(&users_file, serde_json::to_vec_pretty(&listed)?)
        .with_context(|| format!("cannot write {}", users_file.display()))?;
    settings.auth.demo_users_file = Some(users_file);
    let extracts = prepare_extracts(&args.dir, &areas, &directory.postcodes)?;

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
        let user = users
            .iter()
            .find(|user| user.request.agency == Some(agencies[agency]))
            .context("every demo agency has an analyst")?;
        let uploaded = upload::upload(
            &base,
            path,
            &tokens[&user.file],
            None,
            settings.server.tls_cert.as_deref(),
        )
        .await?;
        let batch = &uploaded.batch;
        println!(
            "  {agency}: {} {}, {} rows accepted, {} rejected",
            uploaded.batch_name(),
            batch["status"].as_str().unwrap_or("?"),
            batch["rows_accepted"],
            batch["rows_rejected"]
        );
    }
    publish_release(
        &base,
        &tokens["lancashire-analyst.jwt"],
        &tokens["lancashire-approver.jwt"],
        settings.server.tls_cert.as_deref(),
    )
    .await?;
    println!(
        "planted clusters: {}",
        synthetic::CLUSTERS.map(|cluster| cluster.name).join(", ")
    );
    // The server's schedule checks every few minutes; the demo runs one check now, so that
    // the profiles of the closed quarters with records are there when the page opens.
    let analyses = atlas_app::Analyses::new(
        atlas_store::Database::new(&settings.database)?,
        std::sync::Arc::new(atlas_app::RecordCache::default()),
        atlas_app::analysis::AnalysisMetrics::register(&prometheus::Registry::new())?,
    );
    let today = chrono::Utc::now().date_naive();
    let profiled = analyses
        .scheduled_profiles(today, &demo_schedule(&settings.problem_profiles, today))
        .await?;
    println!("quarterly problem profiles generated by the schedule: {profiled}");

    println!(
        "\nSafeguard Atlas demo is running at {base}/  (open it in a browser and pick a demo user)"
    );
    println!("  partnerships: {base}/api/v1/partnerships");
    println!("  one of them:  {base}/api/v1/partnerships/E10000017?boundary=true");
    println!("  its grid:     {base}/api/v1/partnerships/E10000017/grid?resolution=8");
    println!(
        "  hotspots:     {base}/api/v1/partnerships/E10000017/hotspots?resolution=8&value=subjects"
    );
    println!("  emerging:     {base}/api/v1/partnerships/E10000017/emerging?step=month");
    println!(
        "  (data endpoints need a token, below; format=geojson or format=csv for QGIS and kepler.gl)"
    );
    println!("  API document: {base}/api/v1/openapi.json");
    println!("  health:       {base}/healthz  {base}/readyz  {base}/metrics");
    println!(
        "\ndemo users (development tokens, valid 12 h, in {}):",
        args.dir.join("tokens").display()
    );
    for user in &users {
        println!("  {:<34} {}", user.file, user.describe);
        println!("    {}", tokens[&user.file]);
    }
    println!(
        "  e.g. curl -H \"Authorization: Bearer $(cat {}/lancashire-analyst.jwt)\" {base}/api/v1/partnerships/E10000017/hotspots",
        args.dir.join("tokens").display()
    );
    println!(
        "  upload: ATLAS_TOKEN=$(cat {}/lancashire-constabulary.jwt) atlas upload FILE --server {base}",
        args.dir.join("tokens").display()
    );
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
                let entry = admin::operator_entry(Action::ManageAgencies, "demo");
                agencies::add(&mut conn, agency.name, agency.kind, &codes, &entry)
                    .await?
                    .id
            }
        };
        ids.insert(agency.name, id);
    }
    Ok(ids)
}

/// Makes (once) the demo's signing key pair, trusts its public half, and turns development
/// signing on.
fn demo_signing_key(settings: &mut Settings, dir: &Path) -> anyhow::Result<SigningKey> {
    let private = dir.join(token::SIGNING_KEY_FILE);
    let key = if private.is_file() {
        let pem = std::fs::read_to_string(&private)
            .with_context(|| format!("cannot read {}", private.display()))?;
        SigningKey::from_pem(&pem)?
    } else {
        token::keygen(dir)?
    };
    settings.auth.dev_signing = true;
    settings.auth.jwks_file = Some(dir.join(token::JWKS_FILE));
    settings.auth.keys.clear();
    Ok(key)
}

/// One demo user: the token file's name, who it is, and what its token says.
struct DemoUser {
    file: String,
    describe: String,
    request: TokenRequest,
}

/// The demo's users: an analyst per partnership and per agency, a partner viewer, a board
/// member, an admin and an auditor.
fn demo_users(agencies: &BTreeMap<&'static str, Uuid>) -> Vec<DemoUser> {
    const TWELVE_HOURS: u64 = 12 * 3_600;
    let code =
        |text: &str| GssCode::parse(text).unwrap_or_else(|_| unreachable!("demo codes are valid"));
    let user =
        |file: &str, describe: String, partnership: &str, agency: Option<Uuid>, role: Role| {
            DemoUser {
                file: format!("{file}.jwt"),
                describe,
                request: TokenRequest {
                    subject: format!("demo:{file}"),
                    partnership: code(partnership),
                    agency,
                    roles: vec![role],
                    ttl_secs: TWELVE_HOURS,
                },
            }
        };
    let mut users = vec![
        user(
            "lancashire-analyst",
            "partnership analyst, Lancashire (E10000017)".to_owned(),
            "E10000017",
            None,
            Role::PartnershipAnalyst,
        ),
        user(
            "lancashire-approver",
            "second partnership analyst, Lancashire: approves releases".to_owned(),
            "E10000017",
            None,
            Role::PartnershipAnalyst,
        ),
        user(
            "blackpool-analyst",
            "partnership analyst, Blackpool (E06000009)".to_owned(),
            "E06000009",
            None,
            Role::PartnershipAnalyst,
        ),
        user(
            "rochdale-analyst",
            "partnership analyst, Rochdale (E08000005)".to_owned(),
            "E08000005",
            None,
            Role::PartnershipAnalyst,
        ),
        user(
            "blackpool-viewer",
            "partner viewer, Blackpool: reads Lancashire's releases".to_owned(),
            "E06000009",
            None,
            Role::PartnerViewer,
        ),
        user(
            "lancashire-board",
            "board member, Lancashire: reads the board edition of profiles and the self-assessment"
                .to_owned(),
            "E10000017",
            None,
            Role::BoardMember,
        ),
        user(
            "admin",
            "admin: agencies and sharing agreements".to_owned(),
            "E10000017",
            None,
            Role::Admin,
        ),
        user(
            "auditor",
            "auditor: the audit trail".to_owned(),
            "E10000017",
            None,
            Role::Auditor,
        ),
    ];
    for agency in synthetic::AGENCIES {
        let file = agency
            .name
            .to_ascii_lowercase()
            .replace("'s", "")
            .split_whitespace()
            .filter(|word| !["and", "borough", "council", "county"].contains(word))
            .take(2)
            .collect::<Vec<_>>()
            .join("-");
        users.push(user(
            &file,
            format!("agency analyst, {}", agency.name),
            agency.partnerships[0],
            Some(agencies[agency.name]),
            Role::AgencyAnalyst,
        ));
    }
    users
}

/// Signs each demo user's token into `dir/<file>`; returns file -> token.
fn write_tokens(
    settings: &Settings,
    key: &SigningKey,
    users: &[DemoUser],
    dir: &Path,
) -> anyhow::Result<BTreeMap<String, String>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut tokens = BTreeMap::new();
    for user in users {
        let signed = token::issue(settings, key, &user.request)?;
        std::fs::write(dir.join(&user.file), &signed)
            .with_context(|| format!("cannot write {}", dir.join(&user.file).display()))?;
        tokens.insert(user.file.clone(), signed);
    }
    Ok(tokens)
}

/// The demo's sharing agreements (made once): Lancashire shares its releases with Blackpool, so
/// the demo's partner viewer has something to read; and the three partnerships share
/// `comparison` and `regional_hotspots` with each other, so their comparisons show each other's
/// gated figures and their regional hotspots cross the borders. Lancashire and Blackpool share
/// their releases with Rochdale too, and the three form the regional group [`DEMO_GROUP`], so
/// Rochdale's analyst can ask the group for a regional summary.
async fn share(settings: &Settings) -> anyhow::Result<()> {
    use atlas_access::Scope;
    const LANCASHIRE: &str = "E10000017";
    const BLACKPOOL: &str = "E06000009";
    const ROCHDALE: &str = "E08000005";
    let mutual = [Scope::Comparison, Scope::RegionalHotspots];
    let wanted: [(&str, &str, &[Scope]); 5] = [
        (
            LANCASHIRE,
            BLACKPOOL,
            &[Scope::Releases, Scope::Comparison, Scope::RegionalHotspots],
        ),
        (BLACKPOOL, LANCASHIRE, &mutual),
        (
            LANCASHIRE,
            ROCHDALE,
            &[Scope::Releases, Scope::Comparison, Scope::RegionalHotspots],
        ),
        (ROCHDALE, LANCASHIRE, &mutual),
        (BLACKPOOL, ROCHDALE, &[Scope::Releases, Scope::Comparison]),
    ];
    let database = atlas_store::Database::new(&settings.database)?;
    let mut conn = database.connection().await?;
    let existing = atlas_store::agreements::list(&mut conn).await?;
    for (from, to, scopes) in wanted {
        let scopes: std::collections::BTreeSet<Scope> = scopes.iter().copied().collect();
        if existing.iter().any(|agreement| {
            agreement.from == from
                && agreement.to == to
                && agreement.revoked_at.is_none()
                && scopes.iter().all(|scope| agreement.scopes.contains(scope))
        }) {
            continue;
        }
        let terms = atlas_store::agreements::Terms {
            from: GssCode::parse(from)?,
            to: GssCode::parse(to)?,
            scopes: scopes.clone(),
            valid_from: chrono::Utc::now().date_naive(),
            valid_to: None,
        };
        let entry = admin::operator_entry(Action::ManageAgreements, "demo");
        atlas_store::agreements::create(&mut conn, &terms, &entry.subject, &entry).await?;
        println!(
            "sharing: {from} shares {} with {to}",
            scopes
                .iter()
                .map(|scope| scope.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let members: Vec<(String, GssCode)> = [LANCASHIRE, BLACKPOOL, ROCHDALE]
        .into_iter()
        .map(|code| Ok((DEMO_GROUP.to_owned(), GssCode::parse(code)?)))
        .collect::<anyhow::Result<_>>()?;
    atlas_store::partnerships::replace_regional_groups(&mut conn, &members).await?;
    println!("regional group: {DEMO_GROUP} (Lancashire, Blackpool, Rochdale)");
    Ok(())
}

/// The demo's regional group.
const DEMO_GROUP: &str = "North West demo group";

/// Writes each agency's raw export and pseudonymises it with the demo's linkage key, as the
/// agency would on its own machine; returns agency name -> canonical extract.
fn prepare_extracts(
    dir: &Path,
    areas: &[ReferenceArea],
    postcodes: &[atlas_domain::PostcodeCell],
) -> anyhow::Result<BTreeMap<&'static str, PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let key_path = dir.join("linkage.key");
    if !key_path.exists() {
        pseudonymise::keygen(&key_path)?;
        println!(
            "linkage key: made {} (the agencies' shared key for pseudonymising)",
            key_path.display()
        );
    }
    let key = pseudonymise::read_key(&key_path)?;
    let profile = Profile::from_toml(DEMO_PROFILE)?;
    let (raw_dir, extract_dir) = (dir.join("demo/raw"), dir.join("demo/extracts"));
    std::fs::create_dir_all(&raw_dir)?;
    std::fs::create_dir_all(&extract_dir)?;
    let mut extracts = BTreeMap::new();
    for (index, (agency, export)) in synthetic::exports(areas, postcodes, 3_000, 20_261_128)
        .into_iter()
        .enumerate()
    {
        let raw = raw_dir.join(format!("agency-{index}.csv"));
        std::fs::write(&raw, export)?;
        let extract = extract_dir.join(format!("agency-{index}.csv"));
        pseudonymise::pseudonymise_file(&raw, Some(&extract), &key, &profile)
            .with_context(|| format!("{} refused", raw.display()))?;
        extracts.insert(agency, extract);
    }
    Ok(extracts)
}

/// The quarter the demo publishes: the last of the synthetic extracts.
const DEMO_RELEASE_PERIOD: &str = "2025-Q4";

/// Lancashire's analyst prepares a release of the demo's last quarter and a second analyst
/// approves it, through the API, so that Blackpool's partner viewer has one to read. A quarter is
/// released once only: a later run finds the earlier release, and approves it if an interrupted
/// run left it awaiting approval.
async fn publish_release(
    base: &str,
    preparer: &str,
    approver: &str,
    ca_cert: Option<&Path>,
) -> anyhow::Result<()> {
    let client = upload::client(ca_cert)?;
    let releases = format!("{base}/api/v1/partnerships/E10000017/releases");
    let response = client
        .post(&releases)
        .bearer_auth(preparer)
        .json(&serde_json::json!({ "period": DEMO_RELEASE_PERIOD }))
        .send()
        .await?;
    let status = response.status();
    let mut body: serde_json::Value = response.json().await?;
    if status == reqwest::StatusCode::CONFLICT {
        let listed: serde_json::Value = client
            .get(&releases)
            .bearer_auth(preparer)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let earlier = listed["releases"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|release| {
                release["period"] == DEMO_RELEASE_PERIOD && release["status"] != "withdrawn"
            })
            .cloned();
        match earlier {
            Some(release) if release["status"] == "awaiting_approval" => body = release,
            _ => {
                println!(
                    "release: Lancashire's {DEMO_RELEASE_PERIOD} release exists from an earlier run"
                );
                return Ok(());
            }
        }
    } else {
        anyhow::ensure!(
            status.is_success(),
            "preparing the demo release failed ({status}): {}",
            body["message"]
        );
    }
    let id = body["id"]
        .as_str()
        .context("a prepared release has an id")?;
    let response = client
        .post(format!("{releases}/{id}/approve"))
        .bearer_auth(approver)
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "approving the demo release failed ({})",
        response.status()
    );
    println!(
        "release: Lancashire's {DEMO_RELEASE_PERIOD} release prepared by one analyst and approved by another; Blackpool's partner viewer can read it"
    );
    Ok(())
}

/// The profile schedule as the demo runs it once: reaching back far enough for the synthetic
/// records' last two quarters (2025-Q3 and 2025-Q4), however long after them the demo starts.
fn demo_schedule(
    settings: &atlas_app::settings::ProblemProfileSettings,
    today: chrono::NaiveDate,
) -> atlas_app::settings::ProblemProfileSettings {
    let due = atlas_app::profiles::due_quarter(today, settings.days_after_quarter);
    let index = |label: &str| -> u32 {
        let (year, quarter) = label.split_once("-Q").unwrap_or_default();
        year.parse::<u32>().unwrap_or_default() * 4 + quarter.parse::<u32>().unwrap_or_default()
    };
    atlas_app::settings::ProblemProfileSettings {
        backfill_quarters: settings
            .backfill_quarters
            .max(index(&due).saturating_sub(index("2025-Q3"))),
        ..settings.clone()
    }
}

/// Polls `/readyz` until the server is ready.
async fn wait_until_ready(base: &str, ca_cert: Option<&Path>) -> anyhow::Result<()> {
    let client = upload::client(ca_cert)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_profile_pseudonymises_every_synthetic_export_whole() {
        let blackpool = atlas_postgres::test_db::england_boundaries(&["E06000009"]);
        let areas =
            reference::read_boundaries(blackpool.as_bytes(), &BoundaryFields::default()).unwrap();
        let profile = Profile::from_toml(DEMO_PROFILE).unwrap();
        let key = atlas_ingest::pseudonym::PseudonymKey::from_hex(&"42".repeat(32)).unwrap();
        let mut written = 0;
        let postcodes = reference::read_postcodes(POSTCODE_SAMPLE.as_bytes())
            .unwrap()
            .postcodes;
        for (agency, export) in synthetic::exports(&areas, &postcodes, 50, 1) {
            let summary = atlas_ingest::pseudonymise::pseudonymise(
                export.as_bytes(),
                std::io::sink(),
                &key,
                &profile,
            )
            .unwrap_or_else(|err| panic!("{agency}: {err}"));
            assert_eq!(
                (summary.rows_written, summary.rows_skipped),
                (summary.rows_read, 0),
                "{agency}"
            );
            assert_eq!(
                summary.dropped_columns,
                ["forename", "surname", "date_of_birth"],
                "{agency}: only the identifiers are dropped"
            );
            written += summary.rows_written;
        }
        assert!(written > 0, "Blackpool's agencies have rows");
    }
}
