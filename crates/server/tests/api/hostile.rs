//! Hostile callers through real HTTP: whatever one caller sends (NUL bytes, control
//! characters, huge multi-byte parameters, extreme dates, junk paths, bad bodies where it may
//! not write), no other caller's request fails, no worker panics, every authenticated request
//! leaves exactly one audit entry, `/metrics` stays small and nothing is disclosed before the
//! policy allows.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{TcpProxy, TestApp, spawn_app_with, spawn_ready_app_with};

const LANCASHIRE: &str = "E10000017";

/// An app with the Lancashire cluster and a rate limit no test here reaches.
async fn app() -> TestApp {
    let app = spawn_ready_app_with(|settings| {
        settings.server.rate_limit_per_second = 100_000;
        settings.server.rate_limit_burst = 100_000;
    })
    .await;
    app.import_lancashire_cluster().await;
    app
}

/// The audit entries of `request_id`: (subject, outcome, parameters).
#[tokio::test]
async fn metrics_are_labelled_by_route_template_whatever_paths_are_asked_for() {
    let app = app().await;
    let secret = "eyJhbGciOiJFZERTQSJ9.c2VjcmV0.c2lnbmF0dXJl";
    let baseline = app.get("/metrics").await.text().await.unwrap().len();
    for number in 0..300 {
        app.client
            .get(app.url(&format!("/junk-{number}/{secret}")))
            .send()
            .await
            .unwrap();
    }
    app.client
        .delete(app.url(&format!("/api/v1/partnerships/{secret}")))
        .send()
        .await
        .unwrap();
    app.get(&format!("/api/v1/partnerships/{LANCASHIRE}")).await;
    app.get("/assets/nothing-here.js").await;
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(!text.contains("junk-"), "an unknown path became a label");
    assert!(!text.contains(secret), "a path's secret is on /metrics");
    assert!(
        !text.contains(LANCASHIRE),
        "a path parameter is on /metrics"
    );
    assert!(
        !text.contains("nothing-here"),
        "a path parameter is on /metrics"
    );
    assert!(text.contains("endpoint=\"unmatched\""), "{text}");
    assert!(
        text.contains("endpoint=\"/api/v1/partnerships/{code}\""),
        "{text}"
    );
    assert!(
        text.len() < baseline + 20_000,
        "/metrics grew from {baseline} to {} bytes",
        text.len()
    );
}

#[tokio::test]
async fn readyz_says_why_without_naming_host_port_or_database() {
    let test_db = atlas_store::test_db::TestDatabase::new().await;
    let proxy = TcpProxy::to_url(test_db.url());
    let url = proxy.url(test_db.url());
    let app = spawn_app_with(&test_db, Some(url.clone()), |_| {}).await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let text = response.text().await.unwrap();
    let port = url
        .rsplit_once(':')
        .unwrap()
        .1
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let database = url.rsplit_once('/').unwrap().1.to_owned();
    for secret in ["127.0.0.1", "localhost", "postgres", &port, &database] {
        assert!(!text.contains(secret), "/readyz names `{secret}`: {text}");
    }
    let body: Value = serde_json::from_str(&text).unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("not ready"),
        "{body}"
    );
}
