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
