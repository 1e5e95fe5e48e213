//! Driving a real browser: Debian's `chromium` through its `chromedriver` (WebDriver), and the
//! demo (`atlas demo`) as the server the browser talks to.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::{atlas, atlas_binary, free_port};

/// Where chromedriver is looked for when `CHROMEDRIVER` does not name it.
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Where chromium is looked for when `CHROMIUM` does not name it.
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long a page may take to show what a step waits for.
const PATIENCE: Duration = Duration::from_secs(60);

/// Screenshots go to `target/<profile>/web-screenshots/`, beside the `atlas` binary.
#[must_use]
pub fn screenshot_dir() -> PathBuf {
    atlas_binary().with_file_name("web-screenshots")
}

/// `atlas demo` running in the background on its own port with its own directory, killed when
/// dropped.
pub struct Demo {
    child: Child,
    /// Its base URL, such as `http://127.0.0.1:41234`.
    pub base: String,
    dir: PathBuf,
}

impl Demo {
    /// Runs `atlas demo --dir dir --port <free>` against `database_url` and waits until it says
    /// it is running (its output is kept in `dir/demo.log`).
    ///
    /// # Panics
    /// When it fails or is not running within three minutes.
    #[must_use]
    pub fn start(database_url: &str, dir: &Path) -> Self {
        std::fs::create_dir_all(dir).expect("the demo directory is made");
        let port = free_port();
        let log = dir.join("demo.log");
        let child = atlas(database_url)
            .args([
                "demo",
                "--dir",
                &dir.display().to_string(),
                "--port",
                &port.to_string(),
            ])
            .env("ATLAS__SERVER__WORKERS", "2")
            .stdout(std::fs::File::create(&log).expect("the demo log is made"))
            .stderr(std::fs::File::create(dir.join("demo.err")).expect("the demo log is made"))
            .spawn()
            .expect("atlas demo starts");
        let mut demo = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            dir: dir.to_owned(),
        };
        let started = Instant::now();
        loop {
            let printed = std::fs::read_to_string(&log).unwrap_or_default();
            if printed.contains("demo is running") {
                return demo;
            }
            if let Some(status) = demo.child.try_wait().expect("the demo can be waited on") {
                panic!(
                    "atlas demo exited ({status}): {printed}\n{}",
                    std::fs::read_to_string(dir.join("demo.err")).unwrap_or_default()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(180),
                "atlas demo not running after 3 minutes: {printed}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The development token the demo made for `user` (such as `lancashire-analyst`).
    ///
    /// # Panics
    /// When the demo wrote no such token.
    #[must_use]
    pub fn token(&self, user: &str) -> String {
        std::fs::read_to_string(self.dir.join("tokens").join(format!("{user}.jwt")))
            .expect("the demo wrote the user's token")
            .trim()
            .to_owned()
    }

    /// GETs `path` as `user` and parses the JSON answer.
    ///
    /// # Panics
    /// When the request fails or does not succeed.
    pub async fn get_json(&self, user: &str, path: &str) -> Value {
        crate::get_json(&format!("{}{path}", self.base), &self.token(user)).await
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless chromium driven through chromedriver; both are stopped when dropped.
pub struct Browser {
    driver: Child,
    /// The WebDriver session.
    pub client: Client,
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless chromium session in a
    /// 1280 × 1000 window.
    ///
    /// # Panics
    /// When chromedriver or chromium is missing (install Debian's `chromium` and
    /// `chromium-driver`; `scripts/test.sh` does) or does not start.
    pub async fn start() -> Self {
        let driver_path = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| CHROMEDRIVER.to_owned());
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| CHROMIUM.to_owned());
        assert!(
            Path::new(&driver_path).is_file() && Path::new(&chromium).is_file(),
            "the browser tests need {driver_path} and {chromium}: install Debian's packages with \
             `apt-get install chromium chromium-driver` (scripts/test.sh does), or set CHROMEDRIVER and CHROMIUM"
        );
        let port = free_port();
        // Its own process group, with chromium in it, so that a failing test that never ends
        // the session still leaves no browser behind (see `Drop`).
        let driver = Command::new(&driver_path)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while reqwest::get(format!("{url}/status")).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromedriver did not answer"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                // The sandbox needs user namespaces that containers and root lack.
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1000"],
            },
        });
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities.as_object().cloned().unwrap_or_default())
            .connect(&url)
            .await
            .expect("a chromium session opens");
        Self { driver, client }
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page and returns its
    /// result.
    ///
    /// # Panics
    /// When the script throws.
    pub async fn run(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|err| panic!("{script}: {err}"))
    }

    /// Waits until `script` returns true, failing the test after a minute with `what`. A script
    /// that throws (as it may while the page navigates) counts as not yet.
    ///
    /// # Panics
    /// When it does not.
    pub async fn wait_until(&self, what: &str, script: &str) {
        let started = Instant::now();
        loop {
            if self.client.execute(script, vec![]).await.ok() == Some(Value::Bool(true)) {
                return;
            }
            if started.elapsed() > PATIENCE {
                let status = self
                    .run("return document.body.innerText.slice(0, 2000);", vec![])
                    .await;
                panic!("waited {PATIENCE:?} for {what}; the page says: {status}");
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Clicks the element `css` selects, once it exists (finding it again when the page
    /// redrew it between finding and clicking).
    ///
    /// # Panics
    /// When it never appears or cannot be clicked.
    pub async fn click(&self, css: &str) {
        let started = Instant::now();
        loop {
            let element = self
                .client
                .wait()
                .at_most(PATIENCE)
                .for_element(Locator::Css(css))
                .await
                .unwrap_or_else(|err| panic!("{css}: {err}"));
            match element.click().await {
                Ok(()) => return,
                Err(err)
                    if ["stale", "intercepted"]
                        .iter()
                        .any(|retry| err.to_string().contains(retry))
                        && started.elapsed() < PATIENCE =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(err) => panic!("clicking {css}: {err}"),
            }
        }
    }

    /// Types `text` into the field that `css` selects (for a file input, a file's path).
    ///
    /// # Panics
    /// When there is no such element or it takes no keys.
    pub async fn type_into(&self, css: &str, text: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|err| panic!("{css}: {err}"))
            .send_keys(text)
            .await
            .unwrap_or_else(|err| panic!("typing into {css}: {err}"));
    }

    /// Chooses `value` in the `<select>` that `css` selects.
    ///
    /// # Panics
    /// When there is no such element or option.
    pub async fn choose(&self, css: &str, value: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|err| panic!("{css}: {err}"))
            .select_by_value(value)
            .await
            .unwrap_or_else(|err| panic!("{css} = {value}: {err}"));
    }

    /// The WCAG 2.1 A and AA rules that the page as it stands breaks, by the axe-core engine
    /// (vendored in `tests/support/vendor/axe-core/`): one line per rule, with how many
    /// elements break it and the first few of them.
    ///
    /// # Panics
    /// When axe-core cannot run.
    pub async fn accessibility_violations(&self) -> Vec<String> {
        const AXE: &str = include_str!("vendor/axe-core/axe.min.js");
        self.run(&format!("{AXE}\nreturn typeof axe;"), vec![])
            .await;
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
                   .then((result) => done(result.violations.map((rule) =>
                     `${rule.id} (${rule.nodes.length}): ${rule.help}: ${rule.nodes.slice(0, 3).map((node) => node.target.join(' ')).join(', ')}`)))
                   .catch((error) => done([`axe failed: ${error}`]));",
                vec![],
            )
            .await
            .expect("axe-core runs");
        serde_json::from_value(found).expect("a list of violations")
    }

    /// Ends the browser session (chromium exits) and stops chromedriver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
        // Dropping `self` stops chromedriver's process group.
    }

    /// Prints the page as the browser's print dialog would to an A4 PDF, landscape when
    /// `landscape` (the page's print stylesheet applies), saves it as
    /// `screenshot_dir()/name.pdf` and returns it.
    ///
    /// # Panics
    /// When the page cannot be printed or the file written.
    pub async fn print_pdf(&self, name: &str, landscape: bool) -> Vec<u8> {
        let configuration = fantoccini::wd::PrintConfiguration::builder()
            .size(fantoccini::wd::PrintSize::A4)
            .orientation(if landscape {
                fantoccini::wd::PrintOrientation::Landscape
            } else {
                fantoccini::wd::PrintOrientation::Portrait
            })
            .background(true)
            .build()
            .expect("an A4 print configuration");
        let pdf = self
            .client
            .print(configuration)
            .await
            .expect("the page prints");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("the screenshot directory is made");
        std::fs::write(dir.join(format!("{name}.pdf")), &pdf).expect("the PDF is written");
        pdf
    }

    /// Saves a PNG of the window as `screenshot_dir()/name.png`.
    ///
    /// # Panics
    /// When the screenshot cannot be taken or written.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("the screenshot directory is made");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("the screenshot is written");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Ok(group) = i32::try_from(self.driver.id()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(group),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.driver.wait();
    }
}

/// A council's identity provider for the browser tests: `oidc-provider` (OpenID Certified,
/// MIT) run by Node.js from `tests/support/oidc` (`npm ci --prefix tests/support/oidc`, which
/// scripts/test.sh runs), configured as a council configures Entra ID for Atlas (see
/// `provider.mjs`). Stopped when dropped.
pub struct CouncilProvider {
    /// Its issuer, which is also its base URL.
    pub issuer: String,
    child: Child,
}

impl CouncilProvider {
    /// Starts the provider on a free port for the page at `atlas_origin`, issuing access tokens
    /// that live `access_token_secs`, and waits until it answers.
    ///
    /// # Panics
    /// When Node.js or the provider's packages are missing, or it does not answer in 20 s.
    pub async fn start(atlas_origin: &str, access_token_secs: u64) -> Self {
        let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/oidc");
        assert!(
            directory.join("node_modules/oidc-provider").is_dir(),
            "oidc-provider is not installed: run `npm ci --prefix tests/support/oidc` (scripts/test.sh does)"
        );
        let port = free_port();
        let child = Command::new("node")
            .arg("provider.mjs")
            .current_dir(&directory)
            .env("PORT", port.to_string())
            .env("ATLAS_ORIGIN", atlas_origin)
            .env("ACCESS_TOKEN_TTL", access_token_secs.to_string())
            .stdout(Stdio::null())
            .stderr(provider_log())
            .spawn()
            .expect("node runs (apt-get install nodejs)");
        let provider = Self {
            issuer: format!("http://127.0.0.1:{port}"),
            child,
        };
        let started = Instant::now();
        while reqwest::get(format!(
            "{}/.well-known/openid-configuration",
            provider.issuer
        ))
        .await
        .is_err()
        {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the identity provider did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        provider
    }

    /// The key signing now and how many sessions the page ended.
    ///
    /// # Panics
    /// When the provider does not answer.
    pub async fn state(&self) -> Value {
        reqwest::get(format!("{}/test/state", self.issuer))
            .await
            .expect("the provider answers")
            .json()
            .await
            .expect("its state is JSON")
    }

    /// Replaces the signing key with a new one, withdrawing the old (sessions and refresh
    /// tokens kept); returns the new key's id.
    ///
    /// # Panics
    /// When the provider does not answer.
    pub async fn rotate_key(&self) -> String {
        let answer: Value = reqwest::Client::new()
            .post(format!("{}/test/rotate", self.issuer))
            .send()
            .await
            .expect("the provider answers")
            .json()
            .await
            .expect("its answer is JSON");
        answer["kid"].as_str().unwrap_or_default().to_owned()
    }
}

/// Where the provider's complaints go: `target/<profile>/oidc-provider.log`.
fn provider_log() -> Stdio {
    let path = atlas_binary().with_file_name("oidc-provider.log");
    std::fs::File::create(path).map_or_else(|_| Stdio::null(), Stdio::from)
}

impl Drop for CouncilProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
