//! An agency analyst pseudonymises an export on the agency's machine and uploads it; and a
//! server killed in the middle of a million-row upload leaves nothing behind.

#![expect(clippy::unwrap_used, reason = "a test fails where it unwraps, loudly")]

use std::time::Duration;

use atlas_e2e::{Server, TestDatabase, atlas, import_lancashire_cluster, run_ok};

/// Imports the Lancashire cluster and registers a police force serving Blackpool and Lancashire.
fn set_up(url: &str, dir: &std::path::Path) -> String {
    import_lancashire_cluster(url, dir);
    let agency = run_ok(
        url,
        &[
            "agency",
            "add",
            "--partnership",
            "E06000009",
            "--partnership",
            "E10000017",
            "--kind",
            "police",
            "--name",
            "Lancashire Constabulary",
        ],
    );
    agency.trim().to_owned()
}

/// An agency analyst's development token for `agency`.
fn agency_token(server: &Server, agency: &str) -> String {
    server.token(&[
        "--sub",
        "analyst@lancashire-police",
        "--role",
        "agency_analyst",
        "--partnership",
        "E10000017",
        "--agency",
        agency,
    ])
}

#[tokio::test]
async fn an_agency_pseudonymises_and_uploads_an_export() {
    let test_db = TestDatabase::new().await;
    let url = test_db.url();
    let dir = tempfile::tempdir().unwrap();
    let agency = set_up(url, dir.path());
    let key = dir.path().join("linkage.key");
    run_ok(
        url,
        &["pseudonymise", "keygen", "--out", key.to_str().unwrap()],
    );
    let export = dir.path().join("niche-export.csv");
    let mut rows = String::from(
        "Forename,Surname,DateOfBirth,OccurrenceType,OccurrenceDate,GridX,GridY,LocationType,CSEFlags,AgeAtOccurrence,Gender,OfficerNotes\n",
    );
    for child in 0..30 {
        rows.push_str(&format!("Child{child},Test,05/03/2010,CSE Crime,14/02/2024,331910,436189,Hotel,MISS|OLDR,13,Female,notes {child}\n"));
    }
    std::fs::write(&export, rows).unwrap();
    let extract = dir.path().join("extract.csv");
    let profile = concat!(env!("CARGO_MANIFEST_DIR"), "/config/profiles/police.toml");
    run_ok(
        url,
        &[
            "pseudonymise",
            export.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--profile",
            profile,
            "--output",
            extract.to_str().unwrap(),
        ],
    );

    let server = Server::start(url, dir.path());
    server.wait_until_ready(Duration::from_secs(30)).await;
    let base = server.url("");
    let token = agency_token(&server, &agency);
    let upload = [
        "upload",
        extract.to_str().unwrap(),
        "--server",
        base.as_str(),
        "--token",
        token.as_str(),
    ];
    let summary = run_ok(url, &upload);
    assert!(
        summary.contains("committed, 30 of 30 rows accepted, 0 rejected"),
        "{summary}"
    );
    assert!(summary.contains("partnerships: E06000009 30"), "{summary}");
    let batch_line = summary.lines().next().unwrap().to_owned();
    assert!(batch_line.starts_with("batch "), "{batch_line}");
    let again = run_ok(url, &upload);
    assert_eq!(
        again.lines().next().unwrap(),
        format!("already uploaded: {batch_line}"),
        "the same file is the same batch, and says so"
    );

    let refused = atlas(url)
        .args([
            "upload",
            export.to_str().unwrap(),
            "--server",
            base.as_str(),
        ])
        .env("ATLAS_TOKEN", &token)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("(422 Unprocessable Entity)")
            && message.contains("looks like it holds a name"),
        "{message}"
    );
}

/// Writes a canonical CSV of `rows` rows in Blackpool.
fn million_rows(path: &std::path::Path, rows: u32) {
    use std::io::Write as _;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(file, "subject,record_kind,occurred_on,lat,lon,indicators").unwrap();
    for row in 0..rows {
        let (lat, lon) = (
            53.80 + f64::from(row % 200) * 0.0001,
            -3.04 + f64::from(row % 300) * 0.0001,
        );
        writeln!(
            file,
            "{:064x},incident,2024-0{}-1{},{lat:.5},{lon:.5},missing",
            row % 50_000,
            1 + row % 9,
            row % 10
        )
        .unwrap();
    }
}

#[tokio::test]
async fn a_server_killed_during_a_million_row_upload_leaves_nothing_and_the_retry_succeeds_once() {
    let test_db = TestDatabase::new().await;
    let url = test_db.url();
    let dir = tempfile::tempdir().unwrap();
    let agency = set_up(url, dir.path());
    let extract = dir.path().join("million.csv");
    million_rows(&extract, 1_000_000);
    let body = std::fs::read(&extract).unwrap();

    let port = atlas_e2e::free_port();
    let mut server = Server::start_on(url, port, dir.path());
    let token = agency_token(&server, &agency);
    server.wait_until_ready(Duration::from_secs(30)).await;

    // Send the first half, and hold the rest back until the server is copying rows.
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async {
        receiver.recv().await.map(|item| (item, receiver))
    });
    let request = reqwest::Client::new()
        .post(server.url("/api/v1/extracts"))
        .header("content-type", "text/csv")
        .bearer_auth(&token)
        .body(reqwest::Body::wrap_stream(stream))
        .send();
    let upload = tokio::spawn(request);
    let half = body.len() / 2;
    for chunk in body[..half].chunks(256 * 1024) {
        sender.send(Ok(chunk.to_vec())).await.unwrap();
    }
    let admin = atlas_store::connect_admin(url, Duration::from_secs(5))
        .await
        .unwrap();
    let copying = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'COPY case_records%'";
    let started = std::time::Instant::now();
    while admin
        .query_one(copying, &[])
        .await
        .unwrap()
        .get::<_, i64>(0)
        == 0
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the server never started copying"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.kill();
    assert!(
        upload.await.unwrap().is_err(),
        "the killed server cannot have answered"
    );
    drop(sender);

    let count = |sql: &'static str| {
        let admin = &admin;
        async move { admin.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(count("SELECT count(*) FROM case_records").await, 0);
    assert_eq!(count("SELECT count(*) FROM batches").await, 0);

    let server = Server::start_on(url, port, dir.path());
    server.wait_until_ready(Duration::from_secs(30)).await;
    let base = server.url("");
    let upload = [
        "upload",
        extract.to_str().unwrap(),
        "--server",
        base.as_str(),
        "--token",
        token.as_str(),
    ];
    let first = run_ok(url, &upload);
    assert!(
        first.contains("committed, 1000000 of 1000000 rows accepted"),
        "{first}"
    );
    let second = run_ok(url, &upload);
    assert_eq!(
        second.lines().next().unwrap(),
        format!("already uploaded: {}", first.lines().next().unwrap())
    );
    assert_eq!(count("SELECT count(*) FROM case_records").await, 1_000_000);
    assert_eq!(count("SELECT count(*) FROM batches").await, 1);
}
