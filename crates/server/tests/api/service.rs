//! Health, readiness, metrics, OpenAPI, the partnership API, errors and TLS.

use std::time::Duration;

use crate::support::{TcpProxy, TestApp, spawn_app, spawn_app_with};
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn healthz_answers_with_a_request_id_and_security_headers() {
    let app = spawn_app().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
    let request_id = response
        .headers()
        .get("x-request-id")
        .expect("x-request-id header")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!request_id.is_empty());
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        serde_json::json!({ "status": "ok" })
    );
    let other = app.get("/healthz").await;
    assert_ne!(
        other.headers()["x-request-id"].to_str().unwrap(),
        request_id,
        "ids are per request"
    );
}

#[tokio::test]
async fn readyz_follows_the_database_down_and_up_again_without_a_restart() {
    let test_db = atlas_postgres::test_db::TestDatabase::new().await;
    let mut proxy = TcpProxy::to_url(test_db.url());
    // PostgreSQL is "down" at start: the proxy does not listen yet.
    let app = spawn_app_with(&test_db, Some(proxy.url(test_db.url())), |_| {}).await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unavailable");
    assert!(
        body["message"].as_str().unwrap().contains("database"),
        "{body}"
    );
    assert_eq!(
        app.get("/healthz").await.status(),
        StatusCode::OK,
        "alive while the database is down"
    );

    proxy.start().await;
    app.wait_until_ready(Duration::from_secs(20)).await;

    proxy.stop();
    app.wait_for_readyz(StatusCode::SERVICE_UNAVAILABLE, Duration::from_secs(10))
        .await;
    proxy.start().await;
    app.wait_until_ready(Duration::from_secs(10)).await;
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let app = spawn_app().await;
    app.get("/healthz").await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(
        text.contains("# TYPE atlas_http_requests_total counter"),
        "{text}"
    );
    assert!(text.contains("endpoint=\"/healthz\""), "{text}");
}

#[tokio::test]
async fn the_openapi_document_names_the_main_endpoints_errors_and_bearer_scheme() {
    let app = spawn_app().await;
    let response = app.get("/api/v1/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    let document: Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let paths = document["paths"].as_object().unwrap();
    for path in [
        "/healthz",
        "/readyz",
        "/api/v1/openapi.json",
        "/api/v1/partnerships",
        "/api/v1/partnerships/{code}",
        "/api/v1/extracts",
        "/api/v1/batches/{id}",
        "/api/v1/batches/{id}/rejections",
        "/api/v1/partnerships/{code}/grid",
        "/api/v1/partnerships/{code}/hotspots",
        "/api/v1/admin/agencies",
        "/api/v1/admin/agreements",
        "/api/v1/admin/users/{subject}",
        "/api/v1/audit",
        "/api/v1/audit/verify",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    assert!(document["components"]["schemas"]["ErrorBody"].is_object());
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

/// Routes and the document come from one list (`documented_api!`); this checks the document
/// against what is served: every documented operation answers with its own handler (an
/// authentication or validation error, or its answer), never the fallback's "no such endpoint".
#[tokio::test]
async fn every_documented_operation_is_served() {
    let app = spawn_app().await;
    let document: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    let paths = document["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        let url = path
            .split('/')
            .map(|segment| match segment {
                "{code}" => "E06000009",
                "{id}" => "00000000-0000-0000-0000-000000000000",
                other if other.starts_with('{') => "x",
                other => other,
            })
            .collect::<Vec<_>>()
            .join("/");
        for method in item.as_object().unwrap().keys() {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = app
                .client
                .request(
                    method.clone(),
                    format!("http://127.0.0.1:{}{url}", app.port),
                )
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body = response.text().await.unwrap();
            assert!(
                !body.contains("no such endpoint"),
                "{method} {path} is documented but not served ({status}: {body})"
            );
            operations += 1;
        }
    }
    assert!(
        operations >= 34,
        "only {operations} operations are documented"
    );
}

#[tokio::test]
async fn partnerships_are_listed_with_neighbours_and_coverage() {
    let app = spawn_app().await;
    app.import_lancashire_cluster().await;
    let response = app.get("/api/v1/partnerships").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let partnerships = body["partnerships"].as_array().unwrap();
    let codes: Vec<&str> = partnerships
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["E06000009", "E08000005", "E10000017"]);
    let lancashire = &partnerships[2];
    assert_eq!(lancashire["name"], "Lancashire");
    assert_eq!(
        lancashire["neighbours"],
        serde_json::json!(["E06000009", "E08000005"])
    );
    assert_eq!(
        lancashire["local_authorities"],
        serde_json::json!(["E10000017"])
    );
    // Lancashire is about 2,900 km² of land; resolution-9 cells there are about 0.094 km².
    let cells = lancashire["coverage_cells"].as_i64().unwrap();
    assert!((25_000..40_000).contains(&cells), "{cells}");
    assert!(
        lancashire.get("boundary").is_none(),
        "boundaries only on request"
    );
}

#[tokio::test]
async fn one_partnership_with_its_boundary_as_json_or_geojson() {
    let app = spawn_app().await;
    app.import_lancashire_cluster().await;
    let plain: Value = app
        .get("/api/v1/partnerships/e06000009")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(plain["code"], "E06000009");
    assert_eq!(plain["neighbours"], serde_json::json!(["E10000017"]));
    assert!(plain.get("boundary").is_none());

    let with_boundary: Value = app
        .get("/api/v1/partnerships/E06000009?boundary=true")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(with_boundary["boundary"]["type"], "Polygon");

    let response = app
        .client
        .get(app.url("/api/v1/partnerships/E06000009"))
        .bearer_auth(crate::support::token(
            atlas_access::Role::Admin,
            "E10000017",
            None,
        ))
        .header("accept", "application/geo+json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/geo+json");
    let feature: Value = response.json().await.unwrap();
    assert_eq!(feature["type"], "Feature");
    assert_eq!(feature["id"], "E06000009");
    assert_eq!(feature["properties"]["name"], "Blackpool");
    assert!(feature["properties"].get("boundary").is_none());
    assert_eq!(feature["geometry"]["type"], "Polygon");
}

#[tokio::test]
async fn errors_are_json_with_the_right_status() {
    let app = spawn_app().await;
    app.import_lancashire_cluster().await;
    let cases = [
        (
            "/api/v1/partnerships/E10000099",
            StatusCode::NOT_FOUND,
            "not_found",
            "no partnership has the code E10000099",
        ),
        (
            "/api/v1/partnerships/lancashire",
            StatusCode::BAD_REQUEST,
            "bad_request",
            "is not a GSS code",
        ),
        (
            "/api/v1/partnerships/E10000017?boundary=maybe",
            StatusCode::BAD_REQUEST,
            "bad_request",
            "`true` or `false`",
        ),
        (
            "/api/v1/nothing-here",
            StatusCode::NOT_FOUND,
            "not_found",
            "no such endpoint",
        ),
    ];
    for (path, status, code, message) in cases {
        let response = app.get(path).await;
        assert_eq!(response.status(), status, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], code, "{path}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(message),
            "{path}: {body}"
        );
    }
    let response = app
        .client
        .post(app.url("/api/v1/partnerships"))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error());
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"].is_string() && body["message"].is_string(),
        "{body}"
    );
}

#[tokio::test]
async fn https_is_served_with_the_configured_certificate() {
    let test_db = atlas_postgres::test_db::TestDatabase::new().await;
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("server.crt"), dir.path().join("server.key"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let app = spawn_app_with(&test_db, None, |settings| {
        settings.server.tls_cert = Some(cert.clone());
        settings.server.tls_key = Some(key.clone());
    })
    .await;
    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap(),
        )
        .build()
        .unwrap();
    let response = client
        .get(format!("https://localhost:{}/healthz", app.port))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let plain = reqwest::get(format!("http://127.0.0.1:{}/healthz", app.port)).await;
    assert!(
        plain.is_err() || !plain.unwrap().status().is_success(),
        "plain HTTP must not be served"
    );
    let untrusted = reqwest::get(format!("https://localhost:{}/healthz", app.port)).await;
    assert!(
        untrusted.is_err(),
        "a client that does not trust the certificate must fail"
    );
}

#[tokio::test]
async fn an_unusable_certificate_is_refused_at_start_with_the_file_named() {
    let test_db = atlas_postgres::test_db::TestDatabase::new().await;
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("missing.crt");
    let mut settings = TestApp::settings(&test_db);
    settings.server.tls_cert = Some(cert.clone());
    settings.server.tls_key = Some(dir.path().join("missing.key"));
    let err = atlas_server::Application::build(&settings)
        .err()
        .expect("build must fail")
        .to_string();
    assert!(err.contains("missing.crt"), "{err}");
}

#[tokio::test]
async fn told_not_to_migrate_a_server_waits_for_atlas_migrate_and_then_serves() {
    let test_db = atlas_postgres::test_db::TestDatabase::empty().await;
    let app = spawn_app_with(&test_db, None, |settings| {
        settings.server.migrate_on_start = false;
    })
    .await;
    // Nothing is applied by the server itself: not ready, saying what to run.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("atlas migrate"),
        "{body}"
    );
    assert!(
        app.count("SELECT count(*) FROM pg_tables WHERE tablename = 'partnerships'")
            .await
            == 0,
        "the server applied no migration"
    );
    // `atlas migrate` (the same function) brings the schema up to date: ready, without a
    // restart, and the pseudonym key is recorded.
    atlas_app::reference::migrate(test_db.url()).await.unwrap();
    app.wait_for_readyz(StatusCode::OK, Duration::from_secs(30))
        .await;
    let mut recorded = 0;
    for _ in 0..100 {
        recorded = app
            .count("SELECT count(*) FROM pseudonym_key_fingerprint")
            .await;
        if recorded == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(recorded, 1);
}

#[tokio::test]
async fn named_partnerships_are_loaded_before_ready_and_the_cache_reports_itself() {
    let test_db = atlas_postgres::test_db::TestDatabase::new().await;
    let setup = spawn_app_with(&test_db, None, |_| {}).await;
    setup.wait_until_ready(Duration::from_secs(20)).await;
    setup.import_areas(&["E06000009"]).await;
    // A process told to warm Blackpool loads its records before it turns ready.
    let app = spawn_app_with(&test_db, None, |settings| {
        settings.cache.warm = vec![atlas_domain::GssCode::parse("E06000009").unwrap()];
        settings.cache.max_bytes = 64 * 1024 * 1024;
    })
    .await;
    app.wait_until_ready(Duration::from_secs(20)).await;
    let text = app.get("/metrics").await.text().await.unwrap();
    for line in [
        "atlas_record_cache_partnerships 1",
        "atlas_record_cache_loads_total 1",
        "atlas_record_cache_snapshot_loads_total 0",
        "atlas_record_cache_budget_bytes 67108864",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    // Asked about it, the warm partnership is not loaded again.
    let analyst = crate::support::token(atlas_access::Role::PartnershipAnalyst, "E06000009", None);
    let grid = app
        .get_as(&analyst, "/api/v1/partnerships/E06000009/grid?resolution=8")
        .await;
    assert_eq!(grid.status(), StatusCode::OK);
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(text.contains("atlas_record_cache_loads_total 1"), "{text}");
}
