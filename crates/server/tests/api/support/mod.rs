//! Starting the application for a test, and a TCP proxy that plays at PostgreSQL going away.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::LazyLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use atlas_access::Role;
use atlas_access::keys::SigningKey;
use atlas_access::token::TokenRequest;

use atlas_app::Settings;
use atlas_ingest::reference::{
    BoundaryFields, read_boundaries, read_neighbours, read_postcodes, read_small_area_populations,
};
use atlas_postgres::test_db::{
    ENGLAND_PLACES, TestDatabase, england_boundaries, england_neighbours,
};
use atlas_server::Application;
use reqwest::StatusCode;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The server's pseudonym key in tests.
pub const TEST_PSEUDONYM_KEY: &str =
    "0101010101010101010101010101010101010101010101010101010101010101";

/// The issuer and audience of test tokens.
pub const ISSUER: &str = "atlas-test";
/// See [`ISSUER`].
pub const AUDIENCE: &str = "safeguard-atlas";

/// The key every test app trusts, and the directory holding its JWKS.
pub static SIGNING: LazyLock<(SigningKey, tempfile::TempDir)> = LazyLock::new(|| {
    let key = SigningKey::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("jwks.json"), key.jwks().to_string()).unwrap();
    (key, dir)
});

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A token signed with the trusted key, for the subject `role@partnership`.
pub fn token(role: Role, partnership: &str, agency: Option<uuid::Uuid>) -> String {
    named_token(&format!("{role}@{partnership}"), role, partnership, agency)
}

/// A token signed with the trusted key for a named subject.
pub fn named_token(
    subject: &str,
    role: Role,
    partnership: &str,
    agency: Option<uuid::Uuid>,
) -> String {
    let request = TokenRequest {
        subject: subject.to_owned(),
        partnership: atlas_domain::GssCode::parse(partnership).unwrap(),
        agency,
        roles: vec![role],
        ttl_secs: 3_600,
    };
    atlas_access::token::issue(&SIGNING.0, &request, ISSUER, AUDIENCE, now()).unwrap()
}

/// An agency analyst's token for `agency`, an agency serving Blackpool's partnership (the
/// token names Blackpool).
pub fn agency_token(agency: uuid::Uuid) -> String {
    token(Role::AgencyAnalyst, "E06000009", Some(agency))
}

/// Blackpool, Rochdale and Lancashire.
pub const LANCASHIRE_CLUSTER: [&str; 3] = ["E06000009", "E08000005", "E10000017"];

/// A running application on its own port and database.
pub struct TestApp {
    /// The port it listens on.
    pub port: u16,
    /// The plain-HTTP health-check port, when serving HTTPS with one.
    pub plain_port: Option<u16>,
    /// A plain HTTP client.
    pub client: reqwest::Client,
    database_url: String,
    _owned_database: Option<TestDatabase>,
}

/// Starts the application on a fresh database and waits until it is ready.
pub async fn spawn_app() -> TestApp {
    spawn_ready_app_with(|_| {}).await
}

/// Starts the application, with adjusted settings, on a fresh database it owns, and waits until
/// it is ready.
pub async fn spawn_ready_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let test_db = TestDatabase::new().await;
    let mut app = spawn_app_with(&test_db, None, adjust).await;
    app.wait_until_ready(Duration::from_secs(20)).await;
    app._owned_database = Some(test_db);
    app
}

/// Starts the application on `test_db` (or at `url` when given), after `adjust`ing its settings.
/// Does not wait for readiness.
pub async fn spawn_app_with(
    test_db: &TestDatabase,
    url: Option<String>,
    adjust: impl FnOnce(&mut Settings),
) -> TestApp {
    let mut settings = TestApp::settings(test_db);
    if let Some(url) = url {
        settings.database.url = url.into();
    }
    adjust(&mut settings);
    let application = Application::build(&settings).expect("the application builds");
    let port = application.port();
    let plain_port = application.plain_port();
    tokio::spawn(application.run_until_stopped());
    TestApp {
        port,
        plain_port,
        client: reqwest::Client::new(),
        database_url: test_db.url().to_owned(),
        _owned_database: None,
    }
}

impl TestApp {
    /// Settings for a test: the shipped defaults, this test's database, any free port.
    pub fn settings(test_db: &TestDatabase) -> Settings {
        let mut settings = Settings::load(None).expect("default settings load");
        settings.database.url = test_db.url().to_owned().into();
        settings.server.port = 0;
        settings.server.workers = 1;
        settings.server.shutdown_timeout_secs = 1;
        settings.ingest.pseudonym_key = Some(TEST_PSEUDONYM_KEY.to_owned().into());
        settings.auth.issuer = ISSUER.to_owned();
        settings.auth.audience = AUDIENCE.to_owned();
        settings.auth.jwks_file = Some(SIGNING.1.path().join("jwks.json"));
        settings.auth.keys.clear();
        // Tests that want the profile schedule turn it on.
        settings.problem_profiles.schedule = false;
        settings
    }

    /// The URL of `path` on this app.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// GETs `path` as a partnership analyst of Lancashire.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.get_as(&token(Role::PartnershipAnalyst, "E10000017", None), path)
            .await
    }

    /// GETs `path` with the bearer `token`.
    pub async fn get_as(&self, token: &str, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("the request is answered")
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_until_ready(&self, patience: Duration) {
        self.wait_for_readyz(StatusCode::OK, patience).await;
    }

    /// Waits until `/readyz` answers `wanted`.
    pub async fn wait_for_readyz(&self, wanted: StatusCode, patience: Duration) {
        let started = Instant::now();
        loop {
            let status = self.get("/readyz").await.status();
            if status == wanted {
                return;
            }
            assert!(
                started.elapsed() < patience,
                "/readyz still {status} after {patience:?}, wanted {wanted}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The URL of this app's database.
    pub fn database_url(&self) -> String {
        self.database_url.clone()
    }

    /// A pool of two connections to this app's database, as a command-line tool has.
    pub fn database(&self) -> atlas_store::Database {
        atlas_store::Database::new(&atlas_store::DatabaseSettings::new(
            self.database_url.clone().into(),
            2,
        ))
        .unwrap()
    }

    /// Runs a query returning one BIGINT on the test database.
    pub async fn count(&self, sql: &str) -> i64 {
        let client = atlas_store::connect_admin(&self.database_url, Duration::from_secs(5))
            .await
            .unwrap();
        client.query_one(sql, &[]).await.unwrap().get(0)
    }

    /// The cells of `code`'s coverage at `resolution`: public reference geography.
    pub async fn coverage(
        &self,
        code: &str,
        resolution: i16,
    ) -> std::collections::BTreeSet<h3o::CellIndex> {
        self.covered_cells(code, resolution, false).await
    }

    /// The resolution-9 cells lying wholly inside `code`'s boundary: any point of them, the
    /// centre included, belongs to the partnership (a border cell's centre may not).
    pub async fn whole_cells(&self, code: &str) -> std::collections::BTreeSet<h3o::CellIndex> {
        self.covered_cells(code, 9, true).await
    }

    /// The cells of `code`'s coverage at `resolution`, only those wholly inside when `whole`.
    async fn covered_cells(
        &self,
        code: &str,
        resolution: i16,
        whole: bool,
    ) -> std::collections::BTreeSet<h3o::CellIndex> {
        let client =
            atlas_store::connect_admin(&self.database_url, std::time::Duration::from_secs(5))
                .await
                .unwrap();
        client
            .query(
                "SELECT cell FROM partnership_cells
                 WHERE partnership_code = $1 AND resolution = $2 AND (whole OR NOT $3)",
                &[&code, &resolution, &whole],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| {
                h3o::CellIndex::try_from(u64::try_from(row.get::<_, i64>(0)).unwrap()).unwrap()
            })
            .collect()
    }

    /// Registers a police force serving `partnerships` and returns its id.
    pub async fn register_agency(&self, name: &str, partnerships: &[&str]) -> uuid::Uuid {
        self.register_agency_of_kind(name, atlas_domain::AgencyKind::Police, partnerships)
            .await
    }

    /// Registers an agency of `kind` serving `partnerships` and returns its id.
    pub async fn register_agency_of_kind(
        &self,
        name: &str,
        kind: atlas_domain::AgencyKind,
        partnerships: &[&str],
    ) -> uuid::Uuid {
        let database = atlas_store::Database::new(&atlas_store::DatabaseSettings::new(
            self.database_url.clone().into(),
            1,
        ))
        .unwrap();
        let mut conn = database.connection().await.unwrap();
        let codes: Vec<atlas_domain::GssCode> = partnerships
            .iter()
            .map(|code| atlas_domain::GssCode::parse(code).unwrap())
            .collect();
        let entry = atlas_store::audit::NewEntry::operator(
            "test".to_owned(),
            "agency.manage",
            "test".to_owned(),
        );
        atlas_store::agencies::add(&mut conn, name, kind, &codes, &entry)
            .await
            .unwrap()
            .id
    }

    /// The first partnership (by code) that `agency` serves; `None` for an unknown agency.
    pub async fn served_partnership(&self, agency: uuid::Uuid) -> Option<String> {
        let client = atlas_store::connect_admin(&self.database_url, Duration::from_secs(5))
            .await
            .unwrap();
        client
            .query_one(
                "SELECT min(partnership_code) FROM agency_partnerships WHERE agency_id = $1",
                &[&agency],
            )
            .await
            .unwrap()
            .get(0)
    }

    /// An agency analyst's token for `agency`, naming a partnership the agency serves (Blackpool
    /// for an agency that does not exist).
    pub async fn agency_token(&self, agency: uuid::Uuid) -> String {
        let partnership = self.served_partnership(agency).await;
        token(
            Role::AgencyAnalyst,
            partnership.as_deref().unwrap_or("E06000009"),
            Some(agency),
        )
    }

    /// POSTs an extract as an analyst of `agency`.
    pub async fn upload(
        &self,
        agency: uuid::Uuid,
        content_type: &str,
        body: Vec<u8>,
        path_and_query: &str,
    ) -> reqwest::Response {
        self.client
            .post(self.url(path_and_query))
            .header("content-type", content_type)
            .bearer_auth(self.agency_token(agency).await)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// Imports Blackpool, Rochdale and Lancashire with their neighbours.
    pub async fn import_lancashire_cluster(&self) {
        self.import_areas(&LANCASHIRE_CLUSTER).await;
    }

    /// Imports the shipped boundaries of the partnerships `codes`, with their neighbours among
    /// them.
    pub async fn import_areas(&self, codes: &[&str]) {
        let areas = read_boundaries(
            england_boundaries(codes).as_bytes(),
            &BoundaryFields::default(),
        )
        .unwrap();
        let pairs = read_neighbours(england_neighbours(codes).as_bytes()).unwrap();
        atlas_store::reference::import(&self.database_url, &areas, Some(&pairs))
            .await
            .unwrap();
        self.import_places().await;
    }

    /// Imports the shipped places of England (GeoNames), as the demo does.
    pub async fn import_places(&self) {
        let places = atlas_ingest::reference::read_places(ENGLAND_PLACES.as_bytes()).unwrap();
        let mut conn =
            <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(
                &self.database_url,
            )
            .await
            .unwrap();
        atlas_store::places::replace(&mut conn, &places, atlas_app::places::GEONAMES_ATTRIBUTION)
            .await
            .unwrap();
    }

    /// Imports the shipped postcode sample (Lancashire, Blackpool, Rochdale) and every English
    /// LSOA's reference point as the approximate small-area populations, as the demo does;
    /// returns the postcodes read.
    pub async fn import_populations(&self) -> Vec<atlas_domain::PostcodeCell> {
        let reference = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/reference");
        let postcodes = read_postcodes(
            std::fs::read(format!("{reference}/onspd_sample_lancashire_cluster.csv"))
                .unwrap()
                .as_slice(),
        )
        .unwrap()
        .postcodes;
        atlas_store::reference::import_postcodes(&self.database_url, &postcodes)
            .await
            .unwrap();
        let small_areas = read_small_area_populations(
            std::fs::read(format!("{reference}/lsoa_centroids_england.csv"))
                .unwrap()
                .as_slice(),
        )
        .unwrap();
        atlas_store::reference::import_small_area_populations(
            &self.database_url,
            &small_areas.areas,
            small_areas.approximate,
            atlas_ingest::reference::APPROXIMATION,
        )
        .await
        .unwrap();
        postcodes
    }
}

/// Forwards a local port to PostgreSQL; stopping it closes the port and cuts every connection,
/// as a database outage would.
pub struct TcpProxy {
    listen: SocketAddr,
    target: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl TcpProxy {
    /// A stopped proxy to the server of `url`, on a port that was free a moment ago.
    pub fn to_url(url: &str) -> Self {
        let config = tokio_postgres_config(url);
        let target = SocketAddr::from(([127, 0, 0, 1], config.1));
        let listen = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        Self {
            listen,
            target,
            task: None,
        }
    }

    /// `url` pointed at the proxy.
    /// The URL of `path` on this app.
    pub fn url(&self, url: &str) -> String {
        let (database, _) = tokio_postgres_config(url);
        format!(
            "postgres://postgres@127.0.0.1:{}/{database}",
            self.listen.port()
        )
    }

    /// Opens the port and forwards connections.
    pub async fn start(&mut self) {
        let listener = TcpListener::bind(self.listen)
            .await
            .expect("the proxy port is free again");
        let target = self.target;
        self.task = Some(tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }));
    }

    /// Closes the port and every forwarded connection.
    pub fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn tokio_postgres_config(url: &str) -> (String, u16) {
    // Test URLs are always postgres://user@127.0.0.1:port/database.
    let rest = url.rsplit_once('@').map_or(url, |(_, rest)| rest);
    let (address, database) = rest.split_once('/').unwrap();
    let port = address
        .rsplit_once(':')
        .map_or(5432, |(_, port)| u16::from_str(port).unwrap());
    (database.to_owned(), port)
}
