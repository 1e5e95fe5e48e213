//! Finding a PostgreSQL server, or starting a private one.
//!
//! `atlas demo` and the test harness share this: they use the server named by the configured
//! URL when it answers, and otherwise start a private cluster from the machine's PostgreSQL
//! binaries in a data directory they own. `initdb` and `postgres` refuse to run as root, so a
//! root caller runs the cluster as the unprivileged `postgres` system user.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::time::Duration;

use atlas_store::{StoreError, connect_admin};

use crate::ClusterError;

/// How long to wait for a server to answer before deciding nothing is there.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Where the database lives, once found or started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// URL of the target database (which now exists).
    pub url: String,
    /// The private cluster's data directory, when one was started or reused.
    pub private_cluster: Option<PathBuf>,
}

/// Finds the server named by `url`, or starts (or reuses) a private cluster under
/// `private_dir`, then makes sure the database named by `url` exists there.
///
/// # Errors
/// [`ClusterError::Start`] saying what to install or fix when neither works.
pub async fn locate_or_start(url: &str, private_dir: &Path) -> Result<Located, ClusterError> {
    let config = tokio_postgres::Config::from_str(url)
        .map_err(|err| StoreError::InvalidUrl(err.to_string()))?;
    let database = config.get_dbname().unwrap_or("postgres").to_owned();
    match ensure_database(url, &database).await {
        Ok(()) => {
            return Ok(Located {
                url: url.to_owned(),
                private_cluster: None,
            });
        }
        Err(StoreError::Unreachable { target, reason }) => {
            tracing::info!(%target, %reason, "no PostgreSQL answers; using a private cluster");
        }
        Err(other) => return Err(other.into()),
    }
    let cluster = PrivateCluster::new(private_dir)?;
    let port = cluster.start()?;
    let private_url = format!("postgres://postgres@127.0.0.1:{port}/{database}");
    ensure_database(&private_url, &database).await?;
    Ok(Located {
        url: private_url,
        private_cluster: Some(cluster.data_dir),
    })
}

/// A private cluster serving TLS with a certificate given by a test, stopped when dropped.
#[derive(Debug)]
pub struct TlsCluster {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    cluster: PrivateCluster,
}

impl TlsCluster {
    /// Starts a private cluster in `dir` (made for it) with `ssl = on` and the PEM
    /// `certificate` chain and `key`: what the TLS tests connect to.
    ///
    /// # Errors
    /// [`ClusterError::Start`] when PostgreSQL's binaries are missing or it does not start.
    pub fn start(dir: &Path, certificate: &str, key: &str) -> Result<Self, ClusterError> {
        let cluster = PrivateCluster::new(dir)?;
        std::fs::create_dir_all(&cluster.dir).map_err(|err| cluster_error(&cluster.dir, &err))?;
        cluster.give_to_cluster_user(&cluster.dir)?;
        let (certificate_file, key_file) = (
            cluster.dir.join("server.crt"),
            cluster.dir.join("server.key"),
        );
        for (file, text) in [(&certificate_file, certificate), (&key_file, key)] {
            std::fs::write(file, text).map_err(|err| cluster_error(file, &err))?;
            cluster.give_to_cluster_user(file)?;
        }
        // PostgreSQL refuses a key others can read.
        std::fs::set_permissions(
            &key_file,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .map_err(|err| cluster_error(&key_file, &err))?;
        let port = cluster.start_with(&format!(
            "-c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
            certificate_file.display(),
            key_file.display()
        ))?;
        Ok(Self { port, cluster })
    }
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        let _ = self.cluster.run(
            "pg_ctl",
            &[
                "stop".as_ref(),
                "-m".as_ref(),
                "immediate".as_ref(),
                "-D".as_ref(),
                self.cluster.data_dir.as_os_str(),
            ],
        );
    }
}

/// Whether a private cluster started by this process runs as the `postgres` system user
/// (because this process runs as root, which PostgreSQL refuses).
#[must_use]
pub fn runs_as_other_user() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Creates `database` on the server of `url` unless it exists.
async fn ensure_database(url: &str, database: &str) -> Result<(), StoreError> {
    let maintenance_url = with_database(url, "postgres")?;
    let client = connect_admin(&maintenance_url, PROBE_TIMEOUT).await?;
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&database])
        .await?
        .is_some();
    if !exists {
        let statement = format!("CREATE DATABASE {}", quote_identifier(database));
        if let Err(err) = client.batch_execute(&statement).await {
            // Another process may have created it at the same moment.
            if err.code() != Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) {
                return Err(err.into());
            }
        }
        tracing::info!(%database, "created database");
    }
    Ok(())
}

/// `url` with its database name replaced.
pub(crate) fn with_database(url: &str, database: &str) -> Result<String, StoreError> {
    let mut config = tokio_postgres::Config::from_str(url)
        .map_err(|err| StoreError::InvalidUrl(err.to_string()))?;
    config.dbname(database);
    Ok(config_to_url(&config))
}

/// Renders a parsed configuration back into a URL (TCP hosts only; enough for our use).
fn config_to_url(config: &tokio_postgres::Config) -> String {
    let user = config.get_user().unwrap_or("postgres");
    let password = config
        .get_password()
        .map(|bytes| format!(":{}", percent_encode(&String::from_utf8_lossy(bytes))))
        .unwrap_or_default();
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        _ => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let database = config.get_dbname().unwrap_or("postgres");
    format!(
        "postgres://{}{password}@{host}:{port}/{database}",
        percent_encode(user)
    )
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Quotes an SQL identifier.
#[must_use]
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A PostgreSQL cluster owned by Atlas, in `<dir>/data`, listening on 127.0.0.1 only.
#[derive(Debug)]
struct PrivateCluster {
    dir: PathBuf,
    data_dir: PathBuf,
    bin_dir: PathBuf,
    run_as: Option<nix::unistd::User>,
}

impl PrivateCluster {
    fn new(dir: &Path) -> Result<Self, ClusterError> {
        let bin_dir = find_binaries().ok_or_else(|| {
            ClusterError::Start(
                "no PostgreSQL server answers and no PostgreSQL binaries (initdb, pg_ctl) were found \
                 on PATH or under /usr/lib/postgresql/*/bin. Install PostgreSQL 15 or later \
                 (Debian/Ubuntu: `apt install postgresql`; macOS: `brew install postgresql@15`) or \
                 set DATABASE_URL to a server that is running"
                    .to_owned(),
            )
        })?;
        let run_as = if runs_as_other_user() {
            let user = nix::unistd::User::from_name("postgres")
                .ok()
                .flatten()
                .ok_or_else(|| {
                    ClusterError::Start(
                    "PostgreSQL refuses to run as root and there is no `postgres` system user to \
                     run the private cluster as: create one (`useradd --system postgres`) or run \
                     as an ordinary user"
                        .to_owned(),
                )
                })?;
            Some(user)
        } else {
            None
        };
        let dir = std::path::absolute(dir).map_err(|err| cluster_error(dir, &err))?;
        Ok(Self {
            data_dir: dir.join("data"),
            dir,
            bin_dir,
            run_as,
        })
    }

    /// Initialises the cluster if needed, starts it unless it is running, and returns its port.
    fn start(&self) -> Result<u16, ClusterError> {
        self.start_with("")
    }

    /// As [`PrivateCluster::start`], with more server options (`-c name=value …`).
    fn start_with(&self, more_options: &str) -> Result<u16, ClusterError> {
        std::fs::create_dir_all(&self.dir).map_err(|err| cluster_error(&self.dir, &err))?;
        self.give_to_cluster_user(&self.dir)?;
        if !self.data_dir.join("PG_VERSION").exists() {
            tracing::info!(
                "Initialising a private PostgreSQL cluster in {}",
                self.data_dir.display()
            );
            self.run(
                "initdb",
                &[
                    "-D".as_ref(),
                    self.data_dir.as_os_str(),
                    "-U".as_ref(),
                    "postgres".as_ref(),
                    "--auth=trust".as_ref(),
                    "--encoding=UTF8".as_ref(),
                    "--no-locale".as_ref(),
                ],
            )?;
        }
        let port_file = self.dir.join("port");
        let running = self
            .run(
                "pg_ctl",
                &["status".as_ref(), "-D".as_ref(), self.data_dir.as_os_str()],
            )
            .is_ok();
        if running
            && let Some(port) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|text| text.trim().parse().ok())
        {
            return Ok(port);
        }
        let port = free_port().map_err(|err| cluster_error(&self.dir, &err))?;
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' {more_options}"
        );
        let log = self.dir.join("postgres.log");
        tracing::info!(
            "Starting the private PostgreSQL cluster on 127.0.0.1:{port} (log: {})",
            log.display()
        );
        self.run(
            "pg_ctl",
            &[
                "start".as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
                "-D".as_ref(),
                self.data_dir.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-o".as_ref(),
                options.as_ref(),
            ],
        )?;
        std::fs::write(&port_file, port.to_string())
            .map_err(|err| cluster_error(&port_file, &err))?;
        Ok(port)
    }

    /// When running as root, hands the directory to the cluster's user.
    fn give_to_cluster_user(&self, path: &Path) -> Result<(), ClusterError> {
        if let Some(user) = &self.run_as {
            nix::unistd::chown(path, Some(user.uid), Some(user.gid))
                .map_err(|err| cluster_error(path, &std::io::Error::from(err)))?;
        }
        Ok(())
    }

    fn run(&self, program: &str, args: &[&std::ffi::OsStr]) -> Result<(), ClusterError> {
        use std::os::unix::process::CommandExt as _;
        let mut command = Command::new(self.bin_dir.join(program));
        command.args(args).current_dir(&self.dir);
        if let Some(user) = &self.run_as {
            command
                .uid(user.uid.as_raw())
                .gid(user.gid.as_raw())
                .env("HOME", &self.dir);
        }
        let output = command
            .output()
            .map_err(|err| cluster_error(&self.bin_dir.join(program), &err))?;
        if output.status.success() {
            Ok(())
        } else {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let hint = if self.run_as.is_some() && stderr.contains("ermission denied") {
                format!(
                    " (the cluster runs as the `postgres` user, which must be able to reach {}; \
                     choose a directory it can enter)",
                    self.dir.display()
                )
            } else {
                String::new()
            };
            Err(ClusterError::Start(format!(
                "{program} failed: {}{hint}",
                stderr.trim()
            )))
        }
    }
}

fn cluster_error(path: &Path, err: &std::io::Error) -> ClusterError {
    ClusterError::Start(format!("{}: {err}", path.display()))
}

/// A TCP port that was free a moment ago.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The directory holding `initdb` and `pg_ctl`: on PATH, or the newest /usr/lib/postgresql/*/bin.
fn find_binaries() -> Option<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .find(|dir| has_both(dir));
    on_path.or_else(|| {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let version = entry.file_name().to_str()?.parse().ok()?;
                let bin = entry.path().join("bin");
                has_both(&bin).then_some((version, bin))
            })
            .collect();
        versions.sort();
        versions.pop().map(|(_, bin)| bin)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_identifier("atlas"), "\"atlas\"");
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn urls_round_trip_without_losing_credentials() {
        let config =
            tokio_postgres::Config::from_str("postgres://ana:p%40ss@db.example:6543/atlas")
                .unwrap();
        assert_eq!(
            config_to_url(&config),
            "postgres://ana:p%40ss@db.example:6543/atlas"
        );
    }
}
