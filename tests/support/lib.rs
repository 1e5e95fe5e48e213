//! Support for the end-to-end tests: running the real `atlas` binary against a real PostgreSQL.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod browser;

pub use atlas_postgres::test_db::{TestDatabase, england_boundaries, england_neighbours};

/// The `atlas` binary built by `cargo test --workspace` (next to this test's own executable).
///
/// # Panics
/// When the binary has not been built; `cargo build -p atlas-cli` builds it.
#[must_use]
pub fn atlas_binary() -> PathBuf {
    let test_exe = std::env::current_exe().expect("the test knows its own path");
    let profile_dir = test_exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let binary = profile_dir.join("atlas");
    assert!(
        binary.is_file(),
        "{} is missing: run the tests with `cargo test --workspace`",
        binary.display()
    );
    binary
}

/// A command running `atlas` with a clean environment pointed at `database_url`.
#[must_use]
pub fn atlas(database_url: &str) -> Command {
    let mut command = Command::new(atlas_binary());
    command
        .env_remove("ATLAS_ENV")
        .env_remove("ATLAS__DATABASE__URL")
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    command
}

/// Runs `atlas args…` to completion and returns its output, failing the test when it fails.
///
/// # Panics
/// When the command fails.
pub fn run_ok(database_url: &str, args: &[&str]) -> String {
    let output: Output = atlas(database_url).args(args).output().expect("atlas runs");
    assert!(
        output.status.success(),
        "atlas {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Writes Blackpool, Rochdale and Lancashire's boundaries and neighbours into `dir` and imports
/// them with `atlas reference import`; returns what the command printed.
///
/// # Panics
/// When the files cannot be written or the import fails.
pub fn import_lancashire_cluster(database_url: &str, dir: &Path) -> String {
    import_partnerships(database_url, dir, &["E06000009", "E08000005", "E10000017"])
}

/// Imports the shipped boundaries of the partnerships `codes`, with the neighbours among them,
/// through `atlas reference import` (files written in `dir`); returns what it printed.
///
/// # Panics
/// When the files cannot be written or the import fails.
pub fn import_partnerships(database_url: &str, dir: &Path, codes: &[&str]) -> String {
    let (boundaries, neighbours) = (dir.join("boundaries.geojson"), dir.join("neighbours.csv"));
    std::fs::write(&boundaries, england_boundaries(codes)).expect("boundaries written");
    std::fs::write(&neighbours, england_neighbours(codes)).expect("neighbours written");
    let (boundaries, neighbours) = (
        boundaries.display().to_string(),
        neighbours.display().to_string(),
    );
    run_ok(
        database_url,
        &[
            "reference",
            "import",
            "--boundaries",
            &boundaries,
            "--neighbours",
            &neighbours,
        ],
    )
}

/// A TCP port that was free a moment ago on 127.0.0.1.
///
/// # Panics
/// When no port can be bound.
#[must_use]
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// GETs `url` with a bearer `token` and parses the JSON answer.
///
/// # Panics
/// When the request fails, does not succeed, or the body is not JSON.
pub async fn get_json(url: &str, token: &str) -> serde_json::Value {
    let response = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("the server answers");
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    response.json().await.expect("a JSON body")
}

/// A log file for a server on `port`: `target/<profile>/e2e-logs/serve-<port>.log`.
fn server_log(port: u16) -> Stdio {
    let dir = atlas_binary().with_file_name("e2e-logs");
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::File::create(dir.join(format!("serve-{port}.log"))))
        .map_or_else(|_| Stdio::null(), Stdio::from)
}

/// `atlas serve` running in the background (logs in `target/<profile>/e2e-logs/`), stopped
/// (SIGKILL) when dropped. It trusts a development key pair made with `atlas token keygen`.
pub struct Server {
    child: Child,
    /// The port it listens on.
    pub port: u16,
    database_url: String,
    keys: PathBuf,
}

impl Server {
    /// Starts `atlas serve` on a free port, trusting the key pair in `dir/keys` (made there
    /// with `atlas token keygen` when absent).
    ///
    /// # Panics
    /// When the process cannot start.
    #[must_use]
    pub fn start(database_url: &str, dir: &Path) -> Self {
        Self::start_on(database_url, free_port(), dir)
    }

    /// Starts `atlas serve` on `port` (development settings, a test pseudonym key, the profile
    /// schedule off), trusting the key pair in `dir/keys`.
    ///
    /// # Panics
    /// When the process cannot start.
    #[must_use]
    pub fn start_on(database_url: &str, port: u16, dir: &Path) -> Self {
        Self::start_with(database_url, port, dir, &[])
    }

    /// As [`Server::start_on`], with more settings as `(variable, value)` environment pairs
    /// such as `("ATLAS__WEB__OIDC__CLIENT_ID", "atlas-web")`.
    ///
    /// # Panics
    /// When the process cannot start.
    #[must_use]
    pub fn start_with(
        database_url: &str,
        port: u16,
        dir: &Path,
        settings: &[(&str, &str)],
    ) -> Self {
        Self::spawn(database_url, port, dir, None, settings)
    }

    /// As [`Server::start_with`], with the configuration file `config` layered over the
    /// defaults (`atlas serve --config FILE`): settings the environment cannot name, such as
    /// `[auth.claims.role_values]`.
    ///
    /// # Panics
    /// When the process cannot start.
    #[must_use]
    pub fn start_configured(
        database_url: &str,
        port: u16,
        dir: &Path,
        config: &Path,
        settings: &[(&str, &str)],
    ) -> Self {
        Self::spawn(database_url, port, dir, Some(config), settings)
    }

    fn spawn(
        database_url: &str,
        port: u16,
        dir: &Path,
        config: Option<&Path>,
        settings: &[(&str, &str)],
    ) -> Self {
        let keys = dir.join("keys");
        if !keys.join("jwks.json").is_file() {
            run_ok(
                database_url,
                &["token", "keygen", "--dir", &keys.display().to_string()],
            );
        }
        let mut command = atlas(database_url);
        command.arg("serve");
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        let child = command
            .env("ATLAS__SERVER__PORT", port.to_string())
            .env("ATLAS__SERVER__WORKERS", "1")
            .env("ATLAS__AUTH__JWKS_FILE", keys.join("jwks.json"))
            .env("ATLAS__INGEST__PSEUDONYM_KEY", "07".repeat(32))
            .env("ATLAS__LOG__FORMAT", "json")
            // Scheduled profiles would add audit entries at times no test controls.
            .env("ATLAS__PROBLEM_PROFILES__SCHEDULE", "false")
            .envs(settings.iter().copied())
            .stdout(Stdio::null())
            .stderr(server_log(port))
            .spawn()
            .expect("atlas serve starts");
        Self {
            child,
            port,
            database_url: database_url.to_owned(),
            keys,
        }
    }

    /// A development token from `atlas token issue --key <dir>/keys/dev-signing.pem args…`.
    ///
    /// # Panics
    /// When the command fails.
    #[must_use]
    pub fn token(&self, args: &[&str]) -> String {
        let key = self.keys.join("dev-signing.pem").display().to_string();
        let mut command = vec!["token", "issue", "--key", key.as_str()];
        command.extend_from_slice(args);
        run_ok(&self.database_url, &command).trim().to_owned()
    }

    /// The URL of `path` on this server.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// GETs `path` as a partnership analyst of Lancashire and parses the JSON answer.
    ///
    /// # Panics
    /// When the request fails, does not succeed, or the body is not JSON.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let token = self.token(&[
            "--sub",
            "analyst",
            "--role",
            "partnership_analyst",
            "--partnership",
            "E10000017",
        ]);
        get_json(&self.url(path), &token).await
    }

    /// Waits until `/readyz` answers 200.
    ///
    /// # Panics
    /// When it does not within `patience`.
    pub async fn wait_until_ready(&self, patience: Duration) {
        let started = Instant::now();
        loop {
            if let Ok(response) = reqwest::get(self.url("/readyz")).await
                && response.status().is_success()
            {
                return;
            }
            assert!(
                started.elapsed() < patience,
                "atlas serve not ready after {patience:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Kills the process with SIGKILL, as a crash would, and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the process to exit; returns whether it exited cleanly.
    ///
    /// # Panics
    /// When the process does not stop within `patience`.
    pub fn terminate(&mut self, patience: Duration) -> bool {
        let pid =
            nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).expect("a pid fits in i32"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)
            .expect("SIGTERM is delivered");
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("the child can be waited on") {
                return status.success();
            }
            assert!(
                started.elapsed() < patience,
                "atlas serve still running {patience:?} after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
