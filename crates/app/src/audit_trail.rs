//! Verifying the audit chains and keeping signed checkpoints of their heads outside the
//! database (docs/access.md, "The audit trail"): each checkpoint is a JSON file in
//! `audit.checkpoint_dir`, signed with the chain key; verification starts from the newest, so
//! it reads only what was appended since, and a chain truncated or deleted since then is found.

use std::path::{Path, PathBuf};
use std::time::Duration;

use atlas_store::Database;
use atlas_store::audit::{self, Checkpoint, Verification};

use crate::settings::AuditSettings;

/// The names checkpoint files start with; the rest is the time they were taken, so that names
/// sort in time order.
const PREFIX: &str = "audit-checkpoint-";

/// Installs the configured chain key for this process: every entry it appends, and every
/// verification, uses it.
///
/// # Errors
/// When the key is malformed, or the process already uses another.
pub fn use_chain_key(settings: &AuditSettings) -> Result<(), String> {
    let key = settings.chain_key().map_err(|err| err.to_string())?;
    audit::use_chain_key(key)
}

/// The newest checkpoint in `dir`, if any.
///
/// # Errors
/// When the directory cannot be read, or the newest checkpoint cannot be read or is not signed
/// with this process's chain key (altered, or written under another key): verification must
/// not trust it.
pub fn latest(dir: &Path) -> Result<Option<(PathBuf, Checkpoint)>, String> {
    let listing = match std::fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(format!("audit.checkpoint_dir {}: {err}", dir.display())),
    };
    let newest = listing
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with(PREFIX) && name.ends_with(".json"))
        })
        .max();
    let Some(path) = newest else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|err| format!("audit checkpoint {}: {err}", path.display()))?;
    let checkpoint: Checkpoint = serde_json::from_str(&text)
        .map_err(|err| format!("audit checkpoint {} cannot be read: {err}", path.display()))?;
    // The newest is chosen by name, so the name must be the signed time: an old checkpoint
    // copied under a later name (to pin verification to old heads) is refused, as is one from
    // the future.
    let named = path.file_name().and_then(|name| name.to_str()) == Some(&file_name(&checkpoint));
    if !named || checkpoint.taken_at > chrono::Utc::now() + chrono::Duration::minutes(5) {
        return Err(format!(
            "audit checkpoint {} is not named for the time it was signed at, or is from the \
             future: it was renamed or forged",
            path.display()
        ));
    }
    if !checkpoint.is_authentic() {
        return Err(format!(
            "audit checkpoint {} is not signed with this server's audit.chain_key: it was \
             altered, or written under another key",
            path.display()
        ));
    }
    Ok(Some((path, checkpoint)))
}

/// Writes `checkpoint` into `dir` (made if need be) under a name of its time, whole or not at
/// all (written aside, synced, then renamed).
///
/// # Errors
/// When the file cannot be written.
pub fn write(dir: &Path, checkpoint: &Checkpoint) -> Result<PathBuf, String> {
    use std::io::Write as _;
    let failed = |err: std::io::Error| format!("audit.checkpoint_dir {}: {err}", dir.display());
    std::fs::create_dir_all(dir).map_err(failed)?;
    let name = file_name(checkpoint);
    let path = dir.join(&name);
    let partial = dir.join(format!(".{name}.partial"));
    let mut file = std::fs::File::create(&partial).map_err(failed)?;
    let text = serde_json::to_vec_pretty(checkpoint).map_err(|err| err.to_string())?;
    file.write_all(&text).map_err(failed)?;
    file.sync_all().map_err(failed)?;
    std::fs::rename(&partial, &path).map_err(failed)?;
    // The rename itself is durable once the directory is.
    std::fs::File::open(dir)
        .and_then(|directory| directory.sync_all())
        .map_err(failed)?;
    Ok(path)
}

/// The file name of a checkpoint: its signed time, so that names sort in time order.
fn file_name(checkpoint: &Checkpoint) -> String {
    format!(
        "{PREFIX}{}.json",
        checkpoint.taken_at.format("%Y%m%dT%H%M%S%.6fZ")
    )
}

/// What a verification found, and where it started.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The chains' state.
    pub verification: Verification,
    /// The checkpoint it started from, if any.
    pub since: Option<Checkpoint>,
}

/// Verifies the chains against the newest checkpoint in `dir`: from its heads on, or, `full`,
/// every chain from its start (still meeting the checkpoint's heads); every chain from its
/// start when there is no checkpoint.
///
/// # Errors
/// A checkpoint that cannot be trusted, or the database's error, in words.
pub async fn verify(
    database: &Database,
    dir: Option<&Path>,
    full: bool,
) -> Result<Checked, String> {
    let since = match dir {
        Some(dir) => {
            let dir = dir.to_owned();
            tokio::task::spawn_blocking(move || latest(&dir))
                .await
                .map_err(|err| err.to_string())??
                .map(|(_, checkpoint)| checkpoint)
        }
        None => None,
    };
    let mut conn = database.connection().await.map_err(|err| err.to_string())?;
    let verification = audit::verify(&mut conn, since.as_ref(), full)
        .await
        .map_err(|err| err.to_string())?;
    Ok(Checked {
        verification,
        since,
    })
}

/// Verifies against the newest checkpoint in `dir` (`full`: every chain from its start) and,
/// when every chain is intact, writes a new checkpoint of their heads. Returns what was checked
/// and the new checkpoint's path (none when a chain is broken: a checkpoint never vouches for
/// a broken chain).
///
/// # Errors
/// As [`verify`] and [`write()`].
pub async fn checkpoint(
    database: &Database,
    dir: &Path,
    full: bool,
) -> Result<(Checked, Option<PathBuf>), String> {
    let checked = verify(database, Some(dir), full).await?;
    if checked.verification.first_broken.is_some() {
        return Ok((checked, None));
    }
    let signed = Checkpoint::sign(chrono::Utc::now(), checked.verification.heads.clone());
    let dir = dir.to_owned();
    let path = tokio::task::spawn_blocking(move || write(&dir, &signed))
        .await
        .map_err(|err| err.to_string())??;
    Ok((checked, Some(path)))
}

/// How often the schedule walks every chain from its start rather than from the checkpoint:
/// every 24th run (daily at the default hourly checkpoint).
const FULL_EVERY_RUNS: u64 = 24;

/// Verifies and checkpoints every `every` (the server's schedule; every 24th run walks every
/// chain whole), logging what it found: a broken chain is logged as an error every time until
/// someone acts. Several processes may run it: each checkpoint is whole and signed, and the
/// newest is used.
pub async fn run_schedule(database: Database, dir: PathBuf, every: Duration) {
    for run in 0_u64.. {
        tokio::time::sleep(every).await;
        match checkpoint(&database, &dir, run % FULL_EVERY_RUNS == 0).await {
            Ok((checked, Some(path))) => tracing::info!(
                entries = checked.verification.entries,
                chains = checked.verification.heads.len(),
                checkpoint = %path.display(),
                "audit chains verified and checkpointed"
            ),
            Ok((checked, None)) => {
                if let Some(broken) = checked.verification.first_broken {
                    tracing::error!(
                        id = broken.id,
                        chain = %broken.chain,
                        reason = %broken.reason,
                        "the audit trail is BROKEN: no checkpoint written; tell the information \
                         governance lead"
                    );
                }
            }
            Err(reason) => tracing::error!(%reason, "the audit chains could not be checkpointed"),
        }
    }
}
