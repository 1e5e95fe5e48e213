//! The regional picture, end to end: an operator imports child populations, an agency uploads,
//! Blackpool's analyst compares Blackpool with its neighbour, prepares a release that a second
//! analyst approves and Lancashire's viewer reads, and the operator writes the national export.

use std::time::Duration;

use atlas_e2e::{Server, TestDatabase, atlas, get_json, import_lancashire_cluster, run_ok};
use serde_json::{Value, json};

const BLACKPOOL: &str = "E06000009";
const LANCASHIRE: &str = "E10000017";

#[tokio::test]
async fn populations_comparison_release_and_national_export() {
    let test_db = TestDatabase::new().await;
    let url = test_db.url();
    let dir = tempfile::tempdir().unwrap();
    import_lancashire_cluster(url, dir.path());

    // Child populations, as ONS publishes them; a second import changes nothing, and an
    // unknown authority is refused whole.
    let population = dir.path().join("population.csv");
    std::fs::write(
        &population,
        "code,year,population_0_17\nE06000009,2024,29512\nE10000017,2024,\"255,000\"\n",
    )
    .unwrap();
    let population = population.display().to_string();
    let imported = run_ok(url, &["reference", "import", "--population", &population]);
    assert!(imported.contains("2 written, 0 unchanged"), "{imported}");
    let again = run_ok(url, &["reference", "import", "--population", &population]);
    assert!(again.contains("0 written, 2 unchanged"), "{again}");
    let unknown = dir.path().join("unknown.csv");
    std::fs::write(
        &unknown,
        "code,year,population_0_17\nE07000117,2024,20000\n",
    )
    .unwrap();
    let refused = atlas(url)
        .args([
            "reference",
            "import",
            "--population",
            unknown.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("E07000117"));

    // Small-area child populations for hotspots: the shipped LSOA points as the labelled
    // approximation, then an operator's own figures as GeoJSON; a second import changes
    // nothing, and a bad row is refused whole, naming it.
    let lsoas = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/reference/lsoa_centroids_england.csv"
    );
    let approximated = run_ok(
        url,
        &["reference", "import", "--small-area-population", lsoas],
    );
    assert!(
        approximated.contains("32844 (approximate: 344 children per LSOA): 32844 added"),
        "{approximated}"
    );
    let own = dir.path().join("small-areas.geojson");
    std::fs::write(
        &own,
        r#"{"type": "FeatureCollection", "features": [{"type": "Feature",
            "properties": {"code": "E01012681", "population_0_17": 301, "year": 2023},
            "geometry": {"type": "Point", "coordinates": [-3.0357, 53.8175]}}]}"#,
    )
    .unwrap();
    let own = own.display().to_string();
    let args = [
        "reference",
        "import",
        "--small-area-population",
        own.as_str(),
        "--small-area-source",
        "ONS mid-2023 LSOA estimates",
    ];
    let imported = run_ok(url, &args);
    assert!(
        imported.contains("with their figures): 1 added"),
        "{imported}"
    );
    let again = run_ok(url, &args);
    assert!(again.contains("0 added, 0 updated, 1 unchanged"), "{again}");
    let bad = dir.path().join("bad-small-areas.csv");
    std::fs::write(
        &bad,
        "code,lat,lon,population_0_17,year
E01012681,53.8,-3.0,many,2023
",
    )
    .unwrap();
    let refused = atlas(url)
        .args([
            "reference",
            "import",
            "--small-area-population",
            bad.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("line 2"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let agency = run_ok(
        url,
        &[
            "agency",
            "add",
            "--partnership",
            BLACKPOOL,
            "--kind",
            "police",
            "--name",
            "Blackpool Police",
        ],
    );
    run_ok(
        url,
        &[
            "agreement",
            "add",
            "--from",
            BLACKPOOL,
            "--to",
            LANCASHIRE,
            "--scope",
            "releases",
        ],
    );
    // Lancashire shares `comparison`: it appears with figures in Blackpool's comparison.
    run_ok(
        url,
        &[
            "agreement",
            "add",
            "--from",
            LANCASHIRE,
            "--to",
            BLACKPOOL,
            "--scope",
            "comparison",
        ],
    );
    let server = Server::start(url, dir.path());
    server.wait_until_ready(Duration::from_secs(30)).await;
    let token = |sub: &str, role: &str, partnership: &str, agency: Option<&str>| {
        let mut args = vec!["--sub", sub, "--role", role, "--partnership", partnership];
        if let Some(agency) = agency {
            args.extend(["--agency", agency]);
        }
        server.token(&args)
    };
    let uploader = token(
        "una@police",
        "agency_analyst",
        BLACKPOOL,
        Some(agency.trim()),
    );
    let client = reqwest::Client::new();

    // 40 children in Blackpool's town centre in the first quarter of 2024.
    let mut extract = String::from("subject,record_kind,occurred_on,lat,lon,indicators\n");
    for child in 0..40 {
        extract.push_str(&format!(
            "{child:064x},incident,2024-02-{:02},53.8175,-3.0357,missing\n",
            1 + child % 28
        ));
    }
    let uploaded = client
        .post(server.url("/api/v1/extracts"))
        .bearer_auth(&uploader)
        .header("content-type", "text/csv")
        .body(extract)
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 201, "{}", uploaded.text().await.unwrap());

    // The comparison: 40 children in a quarter over 29,512 is 13.6 per 10,000, 54.2 a year.
    let ana = token("ana@blackpool", "partnership_analyst", BLACKPOOL, None);
    let comparison: Value = get_json(
        &server.url(&format!(
            "/api/v1/partnerships/{BLACKPOOL}/comparison?from=2024-01-01&to=2024-03-31"
        )),
        &ana,
    )
    .await;
    assert_eq!(comparison["members"][0]["children"], 40);
    assert_eq!(comparison["members"][0]["rate_per_10000"], 54.2);
    assert_eq!(comparison["window"]["months"], 3);
    assert_eq!(comparison["members"][1]["code"], LANCASHIRE);
    // No agency contributes to Lancashire: no data, not a zero, and no rank.
    assert_eq!(comparison["members"][1]["no_data"], true);
    assert!(comparison["members"][1]["rate_per_10000"].is_null());
    assert!(comparison["members"][1]["rank"].is_null());
    assert_eq!(comparison["rates_approximate"], false);

    // A comparator group instead of the neighbours: Rochdale, imported as a list.
    let comparators = dir.path().join("comparators.csv");
    std::fs::write(&comparators, "code,comparator_code\nE06000009,E08000005\n").unwrap();
    let stored = run_ok(
        url,
        &[
            "reference",
            "import",
            "--comparators",
            comparators.to_str().unwrap(),
        ],
    );
    assert!(stored.contains("1 pairs stored"), "{stored}");
    let grouped: Value = get_json(&server.url(&format!(
            "/api/v1/partnerships/{BLACKPOOL}/comparison?from=2024-01-01&to=2024-03-31&group=comparators"
        )), &ana).await;
    assert_eq!(grouped["group"], "comparators");
    assert_eq!(grouped["members"][1]["code"], "E08000005");
    assert_eq!(grouped["members"][1]["role"], "comparator");
    assert!(
        grouped["members"][1]["rate_per_10000"].is_null(),
        "no population for Rochdale"
    );
    std::fs::write(&comparators, "code,comparator_code\nE06000009,E06000009\n").unwrap();
    let refused = atlas(url)
        .args([
            "reference",
            "import",
            "--comparators",
            comparators.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("line 2: E06000009 is listed as its own comparator"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // A release: prepared by one analyst, approved by another, read by Lancashire's viewer.
    let prepared: Value = client
        .post(server.url(&format!("/api/v1/partnerships/{BLACKPOOL}/releases")))
        .bearer_auth(&ana)
        .json(&json!({"period": "2024-Q1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = prepared["id"].as_str().unwrap();
    let bo = token("bo@blackpool", "partnership_analyst", BLACKPOOL, None);
    let approved = client
        .post(server.url(&format!(
            "/api/v1/partnerships/{BLACKPOOL}/releases/{id}/approve"
        )))
        .bearer_auth(&bo)
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 200);
    let viewer = token("vi@lancashire", "partner_viewer", LANCASHIRE, None);
    let read: Value = client
        .get(server.url(&format!("/api/v1/partnerships/{BLACKPOOL}/releases/{id}")))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["status"], "published");
    // Through the publication gate: 40 records and 40 children published within 2 of 40, the
    // rate on the published children, and the same figures as the national export below.
    let released_children = read["content"]["summary"]["children"].as_u64().unwrap();
    assert!(released_children.abs_diff(40) <= 2, "{read}");
    // The release's rate is the export's and the comparison's kind: a year's, said in words.
    let released_rate = read["content"]["summary"]["rate_per_10000"]
        .as_f64()
        .unwrap();
    assert!(
        (released_rate
            - (released_children as f64 * 4.0 * 10_000.0 / 29_512.0 * 10.0).round() / 10.0)
            .abs()
            < 1e-9,
        "{read}"
    );
    assert!(
        read["content"]["summary"]["rate_note"]
            .as_str()
            .unwrap()
            .contains("annualised"),
        "{read}"
    );
    assert!(
        read["content"]["grand_total"]
            .as_u64()
            .unwrap()
            .abs_diff(40)
            <= 2
    );

    // The national export from the command line, audited.
    let export = dir.path().join("national.csv");
    atlas(url)
        .args([
            "export",
            "national",
            "--period",
            "2024-Q1",
            "--output",
            export.to_str().unwrap(),
        ])
        .status()
        .unwrap()
        .success()
        .then_some(())
        .expect("the export runs");
    let csv = std::fs::read_to_string(&export).unwrap();
    assert!(csv.starts_with("schema,gss_code,partnership,period,measure,breakdown,value,note\n"));
    // Through the publication gate: 40 children are published within 2 of 40, and the rate is
    // that published figure over 29,512, annualised (times 4) as every product's rate is.
    let value = |measure: &str| {
        csv.lines()
            .find(|line| {
                line.starts_with(&format!(
                    "atlas-national-export/2,E06000009,Blackpool,2024-Q1,{measure},all,"
                ))
            })
            .and_then(|line| line.split(',').nth(6))
            .unwrap_or_else(|| panic!("no {measure} in {csv}"))
            .to_owned()
    };
    let children: u32 = value("children").parse().unwrap();
    assert_eq!(
        u64::from(children),
        released_children,
        "the quarter's one frozen summary: {csv}"
    );
    let rate: f64 = value("rate_per_10000").parse().unwrap();
    assert!(
        (rate - (f64::from(children) * 4.0 * 10_000.0 / 29_512.0 * 10.0).round() / 10.0).abs()
            < 1e-9,
        "{csv}"
    );
    let verify = run_ok(url, &["audit", "verify"]);
    assert!(verify.contains("intact"), "{verify}");
}
