//! An administrator sets a new instance up: migrate, import reference geography, register an
//! agency, serve, and read the partnerships through the API; then stops the server.

use std::time::Duration;

use atlas_e2e::{Server, TestDatabase, import_lancashire_cluster, run_ok};
use serde_json::Value;

#[tokio::test]
async fn an_administrator_sets_up_an_instance_and_reads_partnerships() {
    let test_db = TestDatabase::empty().await;
    let url = test_db.url();
    let migrations = atlas_store::migrations::embedded_versions().len();
    let applied = run_ok(url, &["migrate"]);
    assert!(
        applied.starts_with(&format!("applied {migrations} migration(s)")),
        "{applied}"
    );
    assert_eq!(
        run_ok(url, &["migrate"]).trim(),
        "database schema is current; no migrations to apply"
    );

    let dir = tempfile::tempdir().unwrap();
    let first = import_lancashire_cluster(url, dir.path());
    assert!(
        first.starts_with("partnerships: 3 added, 0 updated, 0 unchanged"),
        "{first}"
    );
    assert!(
        first.contains("neighbour links: 4 added, 0 removed"),
        "{first}"
    );
    let second = import_lancashire_cluster(url, dir.path());
    assert!(second.trim().ends_with("(nothing changed)"), "{second}");

    let id = run_ok(
        url,
        &[
            "agency",
            "add",
            "--partnership",
            "E10000017",
            "--partnership",
            "E06000009",
            "--kind",
            "police",
            "--name",
            "Lancashire Constabulary",
        ],
    );
    let id = id.trim();
    assert_eq!(id.len(), 36, "prints the agency id: {id}");
    let agencies: Value =
        serde_json::from_str(&run_ok(url, &["agency", "list", "--json"])).unwrap();
    assert_eq!(agencies[0]["id"], id);
    assert_eq!(agencies[0]["kind"], "police");
    assert_eq!(
        agencies[0]["partnerships"],
        serde_json::json!(["E06000009", "E10000017"])
    );

    let mut server = Server::start(url, dir.path());
    server.wait_until_ready(Duration::from_secs(30)).await;
    let list: Value = server.get_json("/api/v1/partnerships").await;
    assert_eq!(list["partnerships"].as_array().unwrap().len(), 3);
    let rochdale: Value = server.get_json("/api/v1/partnerships/E08000005").await;
    assert_eq!(rochdale["name"], "Rochdale");
    assert_eq!(rochdale["neighbours"], serde_json::json!(["E10000017"]));
    assert!(
        server.terminate(Duration::from_secs(15)),
        "atlas serve exits cleanly on SIGTERM"
    );
}

#[tokio::test]
async fn serve_migrates_an_empty_database_at_start() {
    let test_db = TestDatabase::empty().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(test_db.url(), dir.path());
    server.wait_until_ready(Duration::from_secs(30)).await;
    let list: Value = server.get_json("/api/v1/partnerships").await;
    assert_eq!(list["partnerships"], serde_json::json!([]));
}

#[tokio::test]
async fn a_server_with_another_pseudonym_key_refuses_to_start_naming_the_problem() {
    let test_db = TestDatabase::new().await;
    let dir = tempfile::tempdir().unwrap();
    // The first server records its key's fingerprint in the database.
    let server = Server::start(test_db.url(), dir.path());
    server.wait_until_ready(Duration::from_secs(30)).await;
    // A second process configured with another key would store other pseudonyms for the same
    // children: it refuses to start, and says why.
    let mut other = atlas_e2e::atlas(test_db.url())
        .arg("serve")
        .env("ATLAS__SERVER__PORT", "0")
        .env("ATLAS__INGEST__PSEUDONYM_KEY", "08".repeat(32))
        .env("ATLAS__PROBLEM_PROFILES__SCHEDULE", "false")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = other.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            other.kill().unwrap();
            panic!("a server with another pseudonym key kept running");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut other.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains("is not the key this database's records were pseudonymised with"),
        "{stderr}"
    );
    drop(server);
}
