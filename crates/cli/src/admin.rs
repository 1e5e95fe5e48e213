//! `atlas agency`, `atlas agreement`, `atlas user` and `atlas audit`: administration from the
//! operator's shell. Changes are audited like the API's, with the subject `cli:<user>`.

use std::collections::BTreeSet;

use anyhow::Context as _;
use atlas_access::{Action, Role, Scope};
use atlas_app::Settings;
use atlas_domain::{AgencyKind, GssCode};
use atlas_store::audit::NewEntry;
use atlas_store::{Database, PooledConnection, agencies, agreements, audit, users};
use chrono::NaiveDate;
use diesel_async::AsyncPgConnection;
use uuid::Uuid;

/// `atlas agency …`.
#[derive(Debug, clap::Subcommand)]
pub enum AgencyCommand {
    /// Register an agency and print its id.
    Add {
        /// GSS code of a partnership it serves (repeat for several).
        #[arg(long = "partnership", value_name = "CODE", required = true)]
        partnerships: Vec<GssCode>,
        /// police, social_care, health, education, yot, probation, housing, youth_services or vcs.
        #[arg(long)]
        kind: AgencyKind,
        /// Name, such as "Lancashire Constabulary".
        #[arg(long)]
        name: String,
    },
    /// List agencies.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// `atlas agreement …`.
#[derive(Debug, clap::Subcommand)]
pub enum AgreementCommand {
    /// Let partnership FROM share SCOPE with partnership TO's viewers; prints the id.
    Add {
        /// The partnership that shares.
        #[arg(long)]
        from: GssCode,
        /// The partnership whose viewers may read.
        #[arg(long)]
        to: GssCode,
        /// What may be read: releases, regional_hotspots or comparison (repeatable).
        #[arg(long = "scope", required = true)]
        scopes: Vec<Scope>,
        /// First day in force (default today).
        #[arg(long)]
        valid_from: Option<NaiveDate>,
        /// Last day in force (default open-ended).
        #[arg(long)]
        valid_to: Option<NaiveDate>,
    },
    /// List agreements.
    List,
    /// Revoke an agreement: access stops at once.
    Revoke {
        /// The agreement's id.
        id: Uuid,
    },
}

/// `atlas user …`.
#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Register a token subject with its partnership, agency and roles (or replace its
    /// registration, enabling it again).
    Register {
        /// The tokens' `sub`.
        #[arg(long)]
        sub: String,
        /// The partnership the person belongs to.
        #[arg(long)]
        partnership: GssCode,
        /// The agency the person works for (agency analysts).
        #[arg(long)]
        agency: Option<Uuid>,
        /// A role the person may use (repeatable).
        #[arg(long = "role", required = true, value_parser = crate::token::parse_role)]
        roles: Vec<Role>,
    },
    /// List registered users.
    List,
    /// Disable a registration: the subject is refused everything at once.
    Disable {
        /// The tokens' `sub`.
        #[arg(long)]
        sub: String,
    },
}

/// `atlas audit …`.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Check the hash chains from the newest checkpoint in audit.checkpoint_dir (from their
    /// starts without one); exits non-zero and names the first broken entry if any.
    Verify {
        /// Check every chain from its start, whatever the checkpoints.
        #[arg(long)]
        full: bool,
    },
    /// Verify from the newest checkpoint and, when every chain is intact, write a new signed
    /// checkpoint of their heads into audit.checkpoint_dir (the server does it on a schedule).
    Checkpoint,
}

/// `atlas export …`.
#[derive(Debug, clap::Subcommand)]
pub enum ExportCommand {
    /// Every partnership's disclosure-controlled figures for one calendar quarter, in the
    /// national export's stable schema (docs/privacy.md, "National export").
    National {
        /// A calendar quarter, such as 2026-Q1.
        #[arg(long)]
        period: String,
        /// `csv` (default) or `json`.
        #[arg(long, default_value = "csv", value_parser = ["csv", "json"])]
        format: String,
        /// Write to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        output: Option<std::path::PathBuf>,
    },
}

/// A correction of what left a partnership.
#[derive(Debug, clap::Subcommand)]
pub enum SummaryCommand {
    /// Revise a partnership's frozen summary of a closed quarter or month from its current
    /// records (late records included): a new version every product serves from then on,
    /// marked revised, audited as `summary.revise` (docs/privacy.md, "Frozen products").
    Revise {
        /// The partnership's GSS code.
        #[arg(long)]
        partnership: GssCode,
        /// The closed period: a quarter such as 2026-Q1 or a month such as 2026-01.
        #[arg(long)]
        period: String,
    },
}

/// Runs a summary command.
pub async fn summary(settings: &Settings, command: SummaryCommand) -> anyhow::Result<()> {
    let SummaryCommand::Revise {
        partnership,
        period,
    } = command;
    settings.check_chain_key()?;
    let database = Database::new(&settings.database)?;
    let mut entry = operator_entry(
        Action::ReviseSummary,
        &format!("summaries/{partnership}/{period}"),
    );
    entry.partnership = Some(partnership.to_string());
    entry.records_of = vec![partnership.to_string()];
    entry.parameters.insert("period".to_owned(), period.clone());
    let version = atlas_app::products::revise(
        &database,
        &partnership,
        &period,
        chrono::Utc::now().date_naive(),
        &entry,
    )
    .await?;
    println!("{partnership} {period}: frozen summary revised as version {version}");
    Ok(())
}

/// Quarterly problem profiles.
#[derive(Debug, clap::Subcommand)]
pub enum ProfileCommand {
    /// Generate a partnership's profile of a closed quarter from its current records, both
    /// editions, as its next version (the latest is kept when the records have not changed),
    /// audited as `profile.generate` (docs/profiles.md).
    Run {
        /// The partnership's GSS code.
        #[arg(long)]
        partnership: GssCode,
        /// A closed calendar quarter, such as 2026-Q1.
        #[arg(long)]
        period: String,
    },
}

/// Runs a profile command.
pub async fn profile(settings: &Settings, command: ProfileCommand) -> anyhow::Result<()> {
    let ProfileCommand::Run {
        partnership,
        period,
    } = command;
    settings.check_chain_key()?;
    let database = Database::new(&settings.database)?;
    let metrics = atlas_app::analysis::AnalysisMetrics::register(&prometheus::Registry::new())?;
    let analyses = atlas_app::Analyses::new(
        database,
        std::sync::Arc::new(atlas_app::RecordCache::default()),
        metrics,
    );
    let mut entry = operator_entry(Action::GenerateProfile, "");
    entry.partnership = Some(partnership.to_string());
    entry.records_of = vec![partnership.to_string()];
    entry.parameters.insert("period".to_owned(), period.clone());
    let generated = analyses
        .generate_profile(
            &partnership,
            &period,
            chrono::Utc::now().date_naive(),
            &entry.subject.clone(),
            false,
            &entry,
        )
        .await?;
    let version = generated.version;
    if generated.new {
        println!(
            "{partnership} {period}: profile version {} generated",
            version.version
        );
    } else {
        println!(
            "{partnership} {period}: the records have not changed since profile version {} ({} by {}); it stands",
            version.version, version.generated_at, version.generated_by
        );
    }
    Ok(())
}

/// Runs an export command; the export is audited like the HTTP one.
pub async fn export(settings: &Settings, command: ExportCommand) -> anyhow::Result<()> {
    let ExportCommand::National {
        period,
        format,
        output,
    } = command;
    settings.check_chain_key()?;
    let database = Database::new(&settings.database)?;
    let cache = atlas_app::RecordCache::default();
    let today = chrono::Utc::now().date_naive();
    let rows = atlas_app::export::national(&database, &cache, &period, today).await?;
    let mut conn = database
        .connection()
        .await
        .with_context(|| format!("database {}", database.target()))?;
    let mut entry = operator_entry(Action::ExportNational, "/api/v1/exports/national");
    entry.parameters.insert("period".to_owned(), period.clone());
    entry.rows_returned = i64::try_from(rows.len()).ok();
    entry.records_of = rows
        .iter()
        .map(|row| row.gss_code.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    audit::append_committed(&mut conn, &[entry]).await?;
    let body = if format == "json" {
        serde_json::to_vec_pretty(&serde_json::json!({
            "schema": atlas_app::export::SCHEMA,
            "period": period,
            "rows": rows,
        }))?
    } else {
        atlas_app::export::to_csv(&rows)?
    };
    match output {
        Some(path) => {
            std::fs::write(&path, body)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "national export for {period}: {} rows written to {}",
                rows.len(),
                path.display()
            );
        }
        None => std::io::Write::write_all(&mut std::io::stdout(), &body)?,
    }
    Ok(())
}

/// The audit entry of an operator's change: the subject is `cli:<user>`.
pub fn operator_entry(action: Action, resource: &str) -> NewEntry {
    NewEntry::operator(crate::cli_subject(), action.as_str(), resource.to_owned())
}

async fn connect(settings: &Settings) -> anyhow::Result<PooledConnection> {
    // Every administrative change is audited: only with the instance's chain key.
    settings.check_chain_key()?;
    let database = Database::new(&settings.database)?;
    database
        .connection()
        .await
        .with_context(|| format!("database {}", database.target()))
}

/// Runs an agency command.
pub async fn agency(settings: &Settings, command: AgencyCommand) -> anyhow::Result<()> {
    let mut conn = connect(settings).await?;
    match command {
        AgencyCommand::Add {
            partnerships,
            kind,
            name,
        } => {
            let entry = operator_entry(Action::ManageAgencies, "cli");
            let agency = agencies::add(&mut conn, &name, kind, &partnerships, &entry).await?;
            eprintln!(
                "registered {} agency \"{}\" serving {}",
                agency.kind,
                agency.name,
                agency
                    .partnerships
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            println!("{}", agency.id);
        }
        AgencyCommand::List { json } => {
            let list = agencies::list(&mut conn).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                eprintln!("no agencies registered; add one with `atlas agency add`");
            } else {
                println!("{:<36}  {:<14}  {:<40}  partnerships", "id", "kind", "name");
                for agency in list {
                    println!(
                        "{:<36}  {:<14}  {:<40}  {}",
                        agency.id,
                        agency.kind,
                        agency.name,
                        agency
                            .partnerships
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(",")
                    );
                }
            }
        }
    }
    Ok(())
}

/// Runs an agreement command.
pub async fn agreement(settings: &Settings, command: AgreementCommand) -> anyhow::Result<()> {
    let mut conn = connect(settings).await?;
    match command {
        AgreementCommand::Add {
            from,
            to,
            scopes,
            valid_from,
            valid_to,
        } => {
            let terms = agreements::Terms {
                from,
                to,
                scopes: scopes.iter().copied().collect::<BTreeSet<_>>(),
                valid_from: valid_from.unwrap_or_else(|| chrono::Utc::now().date_naive()),
                valid_to,
            };
            let entry = operator_entry(Action::ManageAgreements, "cli");
            let created = agreements::create(&mut conn, &terms, &entry.subject, &entry).await?;
            eprintln!(
                "{} shares {} with {} from {}{}",
                created.from,
                created
                    .scopes
                    .iter()
                    .map(|scope| scope.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                created.to,
                created.valid_from,
                created
                    .valid_to
                    .map(|to| format!(" to {to}"))
                    .unwrap_or_default()
            );
            println!("{}", created.id);
        }
        AgreementCommand::List => print_agreements(&mut conn).await?,
        AgreementCommand::Revoke { id } => {
            let entry = operator_entry(
                Action::ManageAgreements,
                &format!("/api/v1/admin/agreements/{id}"),
            );
            let revoked = agreements::revoke(&mut conn, id, &entry).await?;
            eprintln!(
                "revoked: {} no longer shares with {}",
                revoked.from, revoked.to
            );
        }
    }
    Ok(())
}

async fn print_agreements(conn: &mut AsyncPgConnection) -> anyhow::Result<()> {
    let list = agreements::list(conn).await?;
    if list.is_empty() {
        eprintln!("no sharing agreements; add one with `atlas agreement add`");
        return Ok(());
    }
    println!(
        "{:<36}  {:<9}  {:<9}  {:<10}  {:<10}  {:<8}  scopes",
        "id", "from", "to", "valid_from", "valid_to", "state"
    );
    for agreement in list {
        println!(
            "{:<36}  {:<9}  {:<9}  {:<10}  {:<10}  {:<8}  {}",
            agreement.id,
            agreement.from,
            agreement.to,
            agreement.valid_from,
            agreement
                .valid_to
                .map_or_else(|| "-".to_owned(), |to| to.to_string()),
            if agreement.revoked_at.is_some() {
                "revoked"
            } else {
                "active"
            },
            agreement
                .scopes
                .iter()
                .map(|scope| scope.as_str())
                .collect::<Vec<_>>()
                .join(",")
        );
    }
    Ok(())
}

/// Runs a user command.
pub async fn user(settings: &Settings, command: UserCommand) -> anyhow::Result<()> {
    let mut conn = connect(settings).await?;
    match command {
        UserCommand::Register {
            sub,
            partnership,
            agency,
            roles,
        } => {
            let entry = operator_entry(Action::ManageUsers, &format!("/api/v1/admin/users/{sub}"));
            let registered =
                users::register(&mut conn, &sub, &partnership, agency, &roles, &entry).await?;
            eprintln!(
                "registered {} in {} as {}",
                registered.subject,
                registered.partnership,
                registered
                    .roles
                    .iter()
                    .map(|role| role.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        UserCommand::List => {
            let list = users::list(&mut conn).await?;
            if list.is_empty() {
                eprintln!("no users registered; add one with `atlas user register`");
            }
            for user in list {
                println!(
                    "{:<32}  {:<9}  {:<36}  {:<8}  {}",
                    user.subject,
                    user.partnership,
                    user.agency
                        .map_or_else(|| "-".to_owned(), |agency| agency.to_string()),
                    if user.disabled_at.is_some() {
                        "disabled"
                    } else {
                        "active"
                    },
                    user.roles
                        .iter()
                        .map(|role| role.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                );
            }
        }
        UserCommand::Disable { sub } => {
            let entry = operator_entry(Action::ManageUsers, &format!("/api/v1/admin/users/{sub}"));
            users::disable(&mut conn, &sub, &entry).await?;
            eprintln!("disabled {sub}: refused everything from now on");
        }
    }
    Ok(())
}

/// Runs an audit command.
pub async fn audit(settings: &Settings, command: AuditCommand) -> anyhow::Result<()> {
    settings.check_chain_key()?;
    let database = Database::new(&settings.database)?;
    let dir = settings.audit.checkpoint_dir.as_deref();
    let full = matches!(
        command,
        AuditCommand::Verify { full: true } | AuditCommand::Checkpoint
    );
    let (checked, written) = match command {
        AuditCommand::Verify { full } => (
            atlas_app::audit_trail::verify(&database, dir, full)
                .await
                .map_err(anyhow::Error::msg)?,
            None,
        ),
        AuditCommand::Checkpoint => {
            let dir = dir.ok_or_else(|| {
                anyhow::anyhow!(
                    "audit.checkpoint_dir is not set: say where checkpoints are kept \
                     (ATLAS__AUDIT__CHECKPOINT_DIR), outside the database"
                )
            })?;
            atlas_app::audit_trail::checkpoint(&database, dir, true)
                .await
                .map_err(anyhow::Error::msg)?
        }
    };
    let verification = checked.verification;
    if let Some(broken) = verification.first_broken {
        anyhow::bail!(
            "audit trail broken at entry {} of the chain {}: {} ({} entries checked)",
            broken.id,
            broken.chain,
            broken.reason,
            verification.entries
        );
    }
    let since = match (checked.since, full) {
        (None, _) => "from the start of every chain".to_owned(),
        (Some(checkpoint), true) => format!(
            "from the start of every chain, through the checkpoint of {}",
            checkpoint.taken_at.to_rfc3339()
        ),
        (Some(checkpoint), false) => {
            format!(
                "since the checkpoint of {}",
                checkpoint.taken_at.to_rfc3339()
            )
        }
    };
    println!(
        "audit trail intact: {} entries in {} chains verified {since}, every hash verifies",
        verification.entries,
        verification.heads.len()
    );
    if let Some(path) = written {
        println!("checkpoint written: {}", path.display());
    }
    Ok(())
}
