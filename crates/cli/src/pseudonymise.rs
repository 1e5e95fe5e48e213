//! `atlas pseudonymise`: the agency-side step, run on the agency's own machine.

use std::fs::OpenOptions;
use std::io::{BufReader, BufWriter, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use atlas_ingest::pseudonym::PseudonymKey;
use atlas_ingest::pseudonymise::{Profile, Summary, pseudonymise};

/// Options of `atlas pseudonymise`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct PseudonymiseArgs {
    #[command(subcommand)]
    command: Option<KeyCommand>,
    /// The raw export (CSV) that still holds identifiers.
    input: Option<PathBuf>,
    /// The partnership's linkage key file.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// An extract profile mapping the export's columns and codes (config/profiles/*.toml).
    #[arg(long, value_name = "FILE")]
    profile: Option<PathBuf>,
    /// Where to write the canonical extract (default: standard output).
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
enum KeyCommand {
    /// Make a new linkage key (256 random bits, hex) in a file readable only by its owner.
    Keygen {
        /// The key file to create; an existing file is never overwritten.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

/// Runs the command.
pub fn run(args: PseudonymiseArgs) -> anyhow::Result<()> {
    if let Some(KeyCommand::Keygen { out }) = args.command {
        keygen(&out)?;
        eprintln!(
            "wrote a new linkage key to {}: share it only with the partnership's agencies",
            out.display()
        );
        return Ok(());
    }
    let input = args
        .input
        .context("name the raw export to pseudonymise (see `atlas pseudonymise --help`)")?;
    let key_path = args
        .key
        .context("give the partnership's linkage key with --key FILE")?;
    let key = read_key(&key_path)?;
    let profile = match &args.profile {
        Some(path) => Profile::from_toml(&read_text(path)?)
            .with_context(|| format!("{} refused", path.display()))?,
        None => Profile::default(),
    };
    report(&pseudonymise_file(
        &input,
        args.output.as_deref(),
        &key,
        &profile,
    )?);
    Ok(())
}

/// Pseudonymises the raw export `input` into `output` (standard output when `None`). The file
/// is written beside `output` and renamed to it when whole, so a refused export leaves no
/// output and never overwrites an earlier one.
///
/// # Errors
/// When the export cannot be read, does not fit the profile, or the output cannot be written.
pub fn pseudonymise_file(
    input: &Path,
    output: Option<&Path>,
    key: &PseudonymKey,
    profile: &Profile,
) -> anyhow::Result<Summary> {
    let reader = BufReader::new(
        std::fs::File::open(input).with_context(|| format!("cannot read {}", input.display()))?,
    );
    let Some(path) = output else {
        let stdout = BufWriter::new(std::io::stdout().lock());
        return Ok(pseudonymise(reader, stdout, key, profile)?);
    };
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let written = std::fs::File::create(&partial)
        .with_context(|| format!("cannot write {}", partial.display()))
        .and_then(|file| Ok(pseudonymise(reader, BufWriter::new(file), key, profile)?));
    match written {
        Ok(summary) => {
            std::fs::rename(&partial, path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(summary)
        }
        Err(err) => {
            let _ = std::fs::remove_file(&partial);
            Err(err)
        }
    }
}

/// Reads a linkage key file.
pub fn read_key(path: &Path) -> anyhow::Result<PseudonymKey> {
    PseudonymKey::from_hex(&read_text(path)?)
        .with_context(|| format!("{} is not a linkage key", path.display()))
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Writes a fresh 256-bit key, as hex, to `path`, which must not exist (mode 0600).
pub fn keygen(path: &Path) -> anyhow::Result<()> {
    let mut key = [0_u8; 32];
    getrandom::fill(&mut key).map_err(|err| anyhow::anyhow!("no randomness available: {err}"))?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| {
            format!(
                "cannot create {} (an existing key is never overwritten)",
                path.display()
            )
        })?;
    writeln!(file, "{}", hex::encode(key))?;
    Ok(())
}

fn report(summary: &Summary) {
    eprintln!(
        "pseudonymised {} of {} rows ({} keyed on the NHS number); dropped columns: {}",
        summary.rows_written,
        summary.rows_read,
        summary.keyed_on_nhs_number,
        if summary.dropped_columns.is_empty() {
            "none".to_owned()
        } else {
            summary.dropped_columns.join(", ")
        }
    );
    if summary.rows_skipped > 0 {
        eprintln!("skipped {} rows:", summary.rows_skipped);
        for (row, reason) in summary.skipped.iter().take(10) {
            eprintln!("  row {row}: {reason}");
        }
    }
}
