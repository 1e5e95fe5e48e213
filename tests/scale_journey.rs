//! Three `atlas serve` processes behind one load balancer, on one PostgreSQL: a batch uploaded
//! through one is read through the others, a caller's rate limit is one across them, a fourth
//! process configured with another pseudonym key refuses to start, and the audit trail every
//! process appended to verifies as one; and a comparison of fifteen partnerships is served from
//! memory the second time (docs/operations.md, docs/scale-out.md).

#![expect(clippy::unwrap_used, reason = "a test fails where it unwraps, loudly")]

use std::time::Duration;

use atlas_e2e::{
    Server, TestDatabase, atlas, free_port, import_lancashire_cluster, import_partnerships, run_ok,
};
use reqwest::StatusCode;
use serde_json::Value;

/// A Blackpool extract of `rows` rows, one child each.
fn extract(rows: u32) -> String {
    let mut text = String::from("subject,record_kind,occurred_on,lat,lon\n");
    for child in 0..rows {
        text.push_str(&format!(
            "{child:064x},incident,2024-03-{:02},53.8175,-3.0357\n",
            1 + child % 28
        ));
    }
    text
}

/// The records in Blackpool's grid as `token` reads it through `server`.
async fn grid_records(server: &Server, token: &str) -> u64 {
    let grid: Value = atlas_e2e::get_json(
        &server.url("/api/v1/partnerships/E06000009/grid?resolution=6"),
        token,
    )
    .await;
    grid["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|cell| cell["records"].as_u64().unwrap())
        .sum()
}

#[tokio::test]
async fn three_processes_share_records_a_rate_limit_and_one_audit_trail() {
    let test_db = TestDatabase::new().await;
    let url = test_db.url();
    let dir = tempfile::tempdir().unwrap();
    import_lancashire_cluster(url, dir.path());
    let agency = run_ok(
        url,
        &[
            "agency",
            "add",
            "--partnership",
            "E06000009",
            "--kind",
            "police",
            "--name",
            "Lancashire Constabulary",
        ],
    );
    let agency = agency.trim();
    // Every process counts callers in PostgreSQL: a burst of three, one more a second.
    let shared = [
        ("ATLAS__SERVER__RATE_LIMIT_SHARED", "true"),
        ("ATLAS__SERVER__RATE_LIMIT_PER_SECOND", "1"),
        ("ATLAS__SERVER__RATE_LIMIT_BURST", "3"),
    ];
    let servers: Vec<Server> = (0..3)
        .map(|_| Server::start_with(url, free_port(), dir.path(), &shared))
        .collect();
    for server in &servers {
        server.wait_until_ready(Duration::from_secs(30)).await;
    }

    // Uploaded through the first process, read through the other two.
    let uploader = servers[0].token(&[
        "--sub",
        "analyst@lancashire-police",
        "--role",
        "agency_analyst",
        "--partnership",
        "E06000009",
        "--agency",
        agency,
    ]);
    let uploaded = reqwest::Client::new()
        .post(servers[0].url("/api/v1/extracts"))
        .header("content-type", "text/csv")
        .bearer_auth(&uploader)
        .body(extract(12))
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), StatusCode::CREATED);
    for (index, server) in servers.iter().enumerate().skip(1) {
        let reader = server.token(&[
            "--sub",
            &format!("reader{index}@blackpool"),
            "--role",
            "partnership_analyst",
            "--partnership",
            "E06000009",
        ]);
        assert_eq!(
            grid_records(server, &reader).await,
            12,
            "process {index} reads the batch process 0 committed"
        );
    }

    // One caller's burst is shared: nine requests spread over the three processes, three
    // answered.
    let caller = servers[0].token(&[
        "--sub",
        "busy@blackpool",
        "--role",
        "partnership_analyst",
        "--partnership",
        "E06000009",
    ]);
    let client = reqwest::Client::new();
    let mut answered = 0;
    for attempt in 0..9 {
        let server = &servers[attempt % 3];
        let status = client
            .get(server.url("/api/v1/partnerships"))
            .bearer_auth(&caller)
            .send()
            .await
            .unwrap()
            .status();
        if status == StatusCode::OK {
            answered += 1;
        } else {
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        }
    }
    assert_eq!(answered, 3, "one burst across every process");

    // A fourth process with another pseudonym key would store other pseudonyms for the same
    // children: it refuses to start, naming the problem.
    let refused = atlas(url)
        .arg("serve")
        .env("ATLAS__SERVER__PORT", free_port().to_string())
        .env("ATLAS__INGEST__PSEUDONYM_KEY", "09".repeat(32))
        .env("ATLAS__PROBLEM_PROFILES__SCHEDULE", "false")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("is not the key this database's records were pseudonymised with"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // Every process appended to the same trail; it verifies whole.
    let verified = run_ok(url, &["audit", "verify"]);
    assert!(verified.starts_with("audit trail intact: "), "{verified}");

    // An operator whose shell holds another chain key cannot append to the instance's chains:
    // the change is refused whole rather than leave an entry no one can verify.
    let other_key = atlas(url)
        .args([
            "agency",
            "add",
            "--partnership",
            "E06000009",
            "--kind",
            "health",
            "--name",
            "Blackpool Teaching Hospitals",
        ])
        .env("ATLAS__AUDIT__CHAIN_KEY", "0a".repeat(32))
        .output()
        .unwrap();
    assert!(!other_key.status.success());
    assert!(
        String::from_utf8_lossy(&other_key.stderr)
            .contains("is not the key the audit chain administration is keyed with"),
        "{}",
        String::from_utf8_lossy(&other_key.stderr)
    );
    let agencies = run_ok(url, &["agency", "list"]);
    assert!(
        !agencies.contains("Blackpool Teaching Hospitals"),
        "{agencies}"
    );
}

/// The value of the counter `name` on the server's `/metrics`.
async fn counter(server: &Server, name: &str) -> f64 {
    let text = reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} is not on /metrics"))
}

#[tokio::test]
async fn a_fifteen_member_comparison_is_served_warm_the_second_time() {
    // Fifteen London boroughs: the first compared with the fourteen others, each sharing its
    // figures with it, each with records.
    let boroughs: Vec<String> = (2..=16).map(|n| format!("E090000{n:02}")).collect();
    let codes: Vec<&str> = boroughs.iter().map(String::as_str).collect();
    let centre = codes[0];
    let test_db = TestDatabase::new().await;
    let url = test_db.url();
    let dir = tempfile::tempdir().unwrap();
    import_partnerships(url, dir.path(), &codes);
    let comparators = dir.path().join("comparators.csv");
    let mut list = String::from("code,comparator_code\n");
    for other in &codes[1..] {
        list.push_str(&format!("{centre},{other}\n"));
    }
    std::fs::write(&comparators, list).unwrap();
    run_ok(
        url,
        &[
            "reference",
            "import",
            "--comparators",
            &comparators.display().to_string(),
        ],
    );
    for other in &codes[1..] {
        run_ok(
            url,
            &[
                "agreement",
                "add",
                "--from",
                other,
                "--to",
                centre,
                "--scope",
                "comparison",
            ],
        );
    }
    let mut add = vec![
        "agency",
        "add",
        "--kind",
        "police",
        "--name",
        "Metropolitan Police",
    ];
    for code in &codes {
        add.extend(["--partnership", code]);
    }
    let agency = run_ok(url, &add);
    // Forty records at each borough's small-area points, over 2024.
    let points = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/reference/lsoa_centroids_england.csv"
    ))
    .unwrap();
    let mut extract = String::from("subject,record_kind,occurred_on,lat,lon\n");
    for (index, code) in codes.iter().enumerate() {
        let inside: Vec<&str> = points
            .lines()
            .filter(|line| line.split(',').nth(2) == Some(code))
            .collect();
        for row in 0..40 {
            let fields: Vec<&str> = inside[row % inside.len()].split(',').collect();
            extract.push_str(&format!(
                "{:064x},incident,2024-{:02}-15,{},{}\n",
                index * 100 + row,
                1 + row % 12,
                fields[3],
                fields[4]
            ));
        }
    }
    let server = Server::start_with(url, free_port(), dir.path(), &[]);
    server.wait_until_ready(Duration::from_secs(30)).await;
    let uploader = server.token(&[
        "--sub",
        "analyst@met",
        "--role",
        "agency_analyst",
        "--partnership",
        centre,
        "--agency",
        agency.trim(),
    ]);
    let uploaded = reqwest::Client::new()
        .post(server.url("/api/v1/extracts"))
        .header("content-type", "text/csv")
        .bearer_auth(&uploader)
        .body(extract)
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), StatusCode::CREATED);
    let uploaded: Value = uploaded.json().await.unwrap();
    assert_eq!(uploaded["rows_accepted"], 600, "{uploaded}");

    let analyst = server.token(&[
        "--sub",
        "analyst@centre",
        "--role",
        "partnership_analyst",
        "--partnership",
        centre,
    ]);
    let comparison = server.url(&format!(
        "/api/v1/partnerships/{centre}/comparison?group=comparators&from=2024-01-01&to=2024-12-31"
    ));
    let first = atlas_e2e::get_json(&comparison, &analyst).await;
    let members = first["members"].as_array().unwrap();
    assert_eq!(members.len(), 15, "{first}");
    assert!(
        members
            .iter()
            .all(|member| member["figures_shared"] == true),
        "{first}"
    );
    let loads = "atlas_record_cache_loads_total";
    let loaded = counter(&server, loads).await;
    assert!(
        loaded >= 15.0,
        "every member's records were loaded: {loaded}"
    );

    // The second time, from memory and the frozen summaries: no member is loaded again. Timed
    // on a client already made and connected (making one reads the system's certificates).
    let client = reqwest::Client::new();
    let status = client
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
    let started = std::time::Instant::now();
    let second: Value = client
        .get(&comparison)
        .bearer_auth(&analyst)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(second, first);
    assert_eq!(
        counter(&server, loads).await,
        loaded,
        "nothing loaded again"
    );
    // The 200 ms target is measured in release by bench/scale.sh (6.5 ms for Surrey's fifteen,
    // docs/performance.md); this debug build on a machine running other tests only has to show
    // it is not loading anything.
    assert!(
        took < Duration::from_secs(2),
        "the warm comparison took {took:?}"
    );
}
