//! `atlas token`: development signing keys and tokens.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use atlas_access::Role;
use atlas_access::keys::SigningKey;
use atlas_access::token::{self, TokenRequest};
use atlas_app::Settings;
use atlas_domain::GssCode;
use uuid::Uuid;

/// The private key's file name in a key directory.
pub const SIGNING_KEY_FILE: &str = "dev-signing.pem";
/// The public key set's file name in a key directory.
pub const JWKS_FILE: &str = "jwks.json";

/// `atlas token …`.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Write a development key pair: DIR/dev-signing.pem (private) and DIR/jwks.json (public,
    /// for auth.jwks_file). Refuses to overwrite an existing key.
    Keygen {
        /// Directory to write the files into.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Sign a development token (only with auth.dev_signing on, as in development).
    Issue(IssueArgs),
}

/// Options of `atlas token issue`.
#[derive(Debug, clap::Args)]
pub struct IssueArgs {
    /// The private key (from `atlas token keygen`).
    #[arg(long, value_name = "PEM")]
    key: PathBuf,
    /// The subject: a stable name for the person.
    #[arg(long)]
    sub: String,
    /// agency_analyst, partnership_analyst, partner_viewer, admin, auditor or board_member (repeatable).
    #[arg(long = "role", required = true, value_parser = parse_role)]
    roles: Vec<Role>,
    /// The partnership the person belongs to (every token names one).
    #[arg(long)]
    partnership: GssCode,
    /// The agency the person works for (agency analysts).
    #[arg(long)]
    agency: Option<Uuid>,
    /// Lifetime, such as 30m, 1h or 7d.
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    ttl: u64,
}

/// Parses a role name for clap, listing the roles when it is unknown.
pub fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| {
        let names: Vec<&str> = Role::ALL.iter().map(|role| role.as_str()).collect();
        format!(
            "unknown role `{text}`: expected one of {}",
            names.join(", ")
        )
    })
}

/// Seconds in a lifetime such as `90s`, `30m`, `1h` or `7d`.
fn parse_ttl(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.char_indices().last().map_or(0, |(index, _)| index);
    let (number, unit) = text.split_at_checked(split).unwrap_or((text, ""));
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(format!("`{text}` is not a lifetime such as 30m, 1h or 7d")),
    };
    number
        .parse::<u64>()
        .ok()
        .filter(|value| (1..=365 * 86_400).contains(&(value * scale)))
        .map(|value| value * scale)
        .ok_or_else(|| format!("`{text}` is not a lifetime between 1s and 365d"))
}

/// Runs a token command.
pub fn run(settings: &Settings, command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Keygen { dir } => {
            let key = keygen(&dir)?;
            eprintln!(
                "wrote {} (private; keep it secret) and {} (kid {}); point auth.jwks_file \
                 (ATLAS__AUTH__JWKS_FILE) at the latter",
                dir.join(SIGNING_KEY_FILE).display(),
                dir.join(JWKS_FILE).display(),
                key.kid()
            );
            Ok(())
        }
        TokenCommand::Issue(args) => {
            let pem = std::fs::read_to_string(&args.key)
                .with_context(|| format!("cannot read {}", args.key.display()))?;
            let key = SigningKey::from_pem(&pem)?;
            let request = TokenRequest {
                subject: args.sub,
                partnership: args.partnership,
                agency: args.agency,
                roles: args.roles,
                ttl_secs: args.ttl,
            };
            println!("{}", issue(settings, &key, &request)?);
            Ok(())
        }
    }
}

/// Writes a new key pair into `dir`, refusing to replace one.
pub fn keygen(dir: &Path) -> anyhow::Result<SigningKey> {
    let private = dir.join(SIGNING_KEY_FILE);
    if private.exists() {
        anyhow::bail!(
            "{} exists; remove it first to make a new key (tokens it signed stop verifying)",
            private.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let key = SigningKey::generate()?;
    write_private(&private, key.private_pem())?;
    std::fs::write(
        dir.join(JWKS_FILE),
        serde_json::to_string_pretty(&key.jwks())?,
    )
    .with_context(|| format!("cannot write {}", dir.join(JWKS_FILE).display()))?;
    Ok(key)
}

#[cfg(unix)]
fn write_private(path: &Path, pem: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(pem.as_bytes())?;
    Ok(())
}

#[cfg(not(unix))]
fn write_private(path: &Path, pem: &str) -> anyhow::Result<()> {
    std::fs::write(path, pem).with_context(|| format!("cannot create {}", path.display()))
}

/// Signs a development token with the configured issuer and audience, now; refused unless
/// `auth.dev_signing` is on.
pub fn issue(
    settings: &Settings,
    key: &SigningKey,
    request: &TokenRequest,
) -> anyhow::Result<String> {
    if !settings.auth.dev_signing {
        anyhow::bail!(
            "development signing is off (auth.dev_signing); tokens come from the identity provider \
             outside development and the demo"
        );
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the system clock is before 1970")?
        .as_secs();
    token::issue(
        key,
        request,
        &settings.auth.issuer,
        &settings.auth.audience,
        now,
    )
    .map_err(|err| anyhow::anyhow!("cannot sign the token: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_parse_with_units_and_refuse_nonsense() {
        assert_eq!(parse_ttl("90s"), Ok(90));
        assert_eq!(parse_ttl("30m"), Ok(1_800));
        assert_eq!(parse_ttl("1h"), Ok(3_600));
        assert_eq!(parse_ttl("7d"), Ok(604_800));
        assert!(parse_ttl("0h").is_err());
        assert!(parse_ttl("1y").is_err());
        assert!(parse_ttl("h").is_err());
        assert!(parse_ttl("999d").is_err());
    }
}
