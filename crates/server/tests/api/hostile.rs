//! Hostile callers through real HTTP: whatever one caller sends (NUL bytes, control
//! characters, huge multi-byte parameters, extreme dates, junk paths, bad bodies where it may
//! not write), no other caller's request fails, no worker panics, every authenticated request
//! leaves exactly one audit entry, `/metrics` stays small and nothing is disclosed before the
//! policy allows.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use atlas_access::Role;
use atlas_analytics::emerging::MAX_BINS;
use atlas_domain::AgencyKind;
use chrono::{Days, NaiveDate};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use crate::support::{TcpProxy, TestApp, named_token, spawn_app_with, spawn_ready_app_with, token};

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
async fn entries_of(app: &TestApp, request_id: &str) -> Vec<(String, String, Value)> {
    let client = atlas_store::connect_admin(&app.database_url(), Duration::from_secs(5))
        .await
        .unwrap();
    client
        .query(
            "SELECT subject, outcome, parameters FROM audit_log WHERE request_id = $1",
            &[&request_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect()
}

/// How many audit entries each request id has.
async fn entries_per_request(app: &TestApp) -> BTreeMap<String, i64> {
    let client = atlas_store::connect_admin(&app.database_url(), Duration::from_secs(5))
        .await
        .unwrap();
    client
        .query(
            "SELECT request_id, count(*) FROM audit_log WHERE request_id IS NOT NULL \
             GROUP BY request_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

fn request_id(response: &reqwest::Response) -> String {
    response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

async fn chain_is_intact(app: &TestApp) {
    let verification: Value = app
        .get_as(
            &token(Role::Auditor, LANCASHIRE, None),
            "/api/v1/audit/verify",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(verification["intact"], true, "{verification}");
}

#[tokio::test]
async fn nul_bytes_and_control_characters_are_stored_escaped_in_the_trail() {
    let app = app().await;
    let response = app
        .get("/api/v1/partnerships?x=%00&bell=a%07b%1b%5B31m&%00name%7F=v&x=c%C2%85d")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let id = request_id(&response);
    let entries = entries_of(&app, &id).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let parameters = entries[0].2.as_object().unwrap();
    let text = entries[0].2.to_string();
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "no control character is stored: {text}"
    );
    assert_eq!(parameters["x"], "\\u{0},c\\u{85}d", "{text}");
    assert_eq!(parameters["bell"], "a\\u{7}b\\u{1b}[31m", "{text}");
    assert_eq!(parameters["\\u{0}name\\u{7f}"], "v", "{text}");

    // A validly signed token whose subject holds them is refused like any malformed token.
    let before = app.count("SELECT count(*) FROM audit_log").await;
    let response = app
        .get_as(
            &named_token(
                "evil\u{0}\u{1b}",
                Role::PartnershipAnalyst,
                LANCASHIRE,
                None,
            ),
            "/api/v1/partnerships",
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.count("SELECT count(*) FROM audit_log").await, before);
    chain_is_intact(&app).await;
}

#[tokio::test]
async fn parameters_are_bounded_on_character_boundaries_without_a_panic() {
    let app = app().await;
    let multibyte =
        |prefix: usize, repeat: usize| format!("{}{}", "a".repeat(prefix), "é".repeat(repeat));
    // A two-byte character across byte 200, a huge name and many names.
    let long_name = "ñ".repeat(3_000);
    let mut query = format!(
        "v={}&w={}&{long_name}=1",
        multibyte(199, 3),
        multibyte(0, 5_000)
    );
    for number in 0..100 {
        query.push_str(&format!("&p{number}=x"));
    }
    let response = app.get(&format!("/api/v1/partnerships?{query}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let entries = entries_of(&app, &request_id(&response)).await;
    assert_eq!(entries.len(), 1);
    let parameters = entries[0].2.as_object().unwrap();
    assert!(
        parameters.len() <= 33,
        "{} parameters kept",
        parameters.len()
    );
    for (name, value) in parameters {
        assert!(
            name.chars().count() <= 64,
            "a name of {} characters",
            name.len()
        );
        let value = value.as_str().unwrap();
        assert!(
            value.chars().count() <= 200,
            "a value of {} characters",
            value.len()
        );
    }
    assert!(
        parameters["v"]
            .as_str()
            .unwrap()
            .starts_with(&"a".repeat(199))
    );

    // The same through a body field the handler notes (an agency's name).
    let name = multibyte(199, 3);
    let response = app
        .client
        .post(app.url("/api/v1/admin/agencies"))
        .bearer_auth(token(Role::Admin, LANCASHIRE, None))
        .json(&json!({ "name": name, "kind": "police", "partnerships": [LANCASHIRE] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let entries = entries_of(&app, &request_id(&response)).await;
    assert_eq!(entries.len(), 1);
    chain_is_intact(&app).await;
}

#[tokio::test]
async fn an_entry_the_database_refuses_fails_only_its_own_request() {
    let app = app().await;
    // A trigger that refuses one subject's entries stands for any entry PostgreSQL refuses.
    let client = atlas_store::connect_admin(&app.database_url(), Duration::from_secs(5))
        .await
        .unwrap();
    client
        .batch_execute(
            "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN IF NEW.subject = 'poison' THEN RAISE EXCEPTION 'refused'; END IF; \
             RETURN NEW; END; $$; \
             CREATE TRIGGER refuse_poison BEFORE INSERT ON audit_log \
             FOR EACH ROW EXECUTE FUNCTION refuse_poison();",
        )
        .await
        .unwrap();
    let poison = named_token("poison", Role::PartnershipAnalyst, LANCASHIRE, None);
    let attacker = tokio::spawn(hammer(
        &app,
        poison,
        vec!["/api/v1/partnerships".to_owned()],
        60,
    ));
    let readers: Vec<_> = (0..8)
        .map(|reader| {
            let token = named_token(
                &format!("reader{reader}"),
                Role::PartnershipAnalyst,
                LANCASHIRE,
                None,
            );
            tokio::spawn(hammer(
                &app,
                token,
                vec!["/api/v1/partnerships".to_owned()],
                30,
            ))
        })
        .collect();
    for reader in readers {
        for answer in reader.await.unwrap() {
            let (status, _) = answer.expect("answered");
            assert_eq!(
                status,
                StatusCode::OK,
                "a reader failed beside the poisoned caller"
            );
        }
    }
    for answer in attacker.await.unwrap() {
        let (status, _) = answer.expect("answered");
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "its own entry was refused"
        );
    }
}

/// GETs each of `paths` in turn with `token`, `rounds` times, one request after another: the
/// status and request id of each, or why it got no answer.
fn hammer(
    app: &TestApp,
    token: String,
    paths: Vec<String>,
    rounds: usize,
) -> impl Future<Output = Vec<Result<(StatusCode, String), String>>> + Send + 'static {
    let client = app.client.clone();
    let base = app.url("");
    async move {
        let mut answers = Vec::new();
        for _ in 0..rounds {
            for path in &paths {
                let answer = client
                    .get(format!("{base}{path}"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .map(|response| (response.status(), request_id(&response)))
                    .map_err(|err| err.to_string());
                answers.push(answer);
            }
        }
        answers
    }
}

#[tokio::test]
async fn poisoned_requests_from_one_caller_fail_no_one_else_and_all_are_audited() {
    let app = app().await;
    let poisoned: Vec<String> = vec![
        "/api/v1/partnerships?x=%00".to_owned(),
        format!("/api/v1/partnerships?x={}%C3%A9", "a".repeat(199)),
        format!("/api/v1/partnerships?{}=%00%01", "%C3%A9".repeat(3_000)),
        format!("/api/v1/partnerships/{LANCASHIRE}/grid?from=%00"),
        format!(
            "/api/v1/partnerships/{LANCASHIRE}/grid?from=0001-01-01&q={}",
            "%E2%82%AC".repeat(5_000)
        ),
        "/api/v1/partnerships?a=%00&a=%00&a=%00".to_owned(),
    ];
    let attacker = tokio::spawn(hammer(
        &app,
        named_token("attacker", Role::PartnershipAnalyst, LANCASHIRE, None),
        poisoned,
        10,
    ));
    let readers: Vec<_> = (0..8)
        .map(|reader| {
            let token = named_token(
                &format!("reader{reader}"),
                Role::PartnershipAnalyst,
                LANCASHIRE,
                None,
            );
            let paths = vec![
                "/api/v1/partnerships".to_owned(),
                format!("/api/v1/partnerships/{LANCASHIRE}"),
            ];
            tokio::spawn(hammer(&app, token, paths, 15))
        })
        .collect();
    let mut ids = Vec::new();
    for reader in readers {
        for answer in reader.await.unwrap() {
            let (status, id) = answer.expect("every reader's request is answered");
            assert_eq!(
                status,
                StatusCode::OK,
                "a reader failed beside the attacker"
            );
            ids.push(id);
        }
    }
    for answer in attacker.await.unwrap() {
        let (status, id) = answer.expect("every poisoned request is answered");
        assert!(
            status == StatusCode::OK || status == StatusCode::BAD_REQUEST,
            "a poisoned request got {status}"
        );
        ids.push(id);
    }
    let entries = entries_per_request(&app).await;
    for id in &ids {
        assert_eq!(
            entries.get(id),
            Some(&1),
            "request {id} has no single audit entry"
        );
    }
    chain_is_intact(&app).await;
}

#[tokio::test]
async fn dates_outside_the_documented_domain_are_refused_naming_the_field() {
    let app = app().await;
    let base = format!("/api/v1/partnerships/{LANCASHIRE}");
    let cases = [
        (format!("{base}/grid?from=0001-01-01"), "from"),
        (format!("{base}/grid?to=2100-01-01"), "to"),
        (format!("{base}/hotspots?from=1999-12-31"), "from"),
        (format!("{base}/emerging?to=9999-12-31"), "to"),
        (
            format!("{base}/emerging?from=0001-01-01&to=9999-12-31&step=week"),
            "from",
        ),
        (format!("{base}/comparison?to=9999-12-31"), "to"),
        (format!("{base}/comparison?from=0001-01-01"), "from"),
        (format!("{base}/comparison?from=-200000-01-01"), "from"),
        (
            format!("{base}/comparison?from=%2B200000-01-01&to=%2B200000-12-31"),
            "to",
        ),
        (format!("{base}/regional-hotspots?from=0001-01-01"), "from"),
    ];
    for (path, field) in cases {
        let response = app.get(&path).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        let body: Value = response.json().await.unwrap();
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(&format!("`{field}`")), "{path}: {message}");
        assert!(message.contains("2000-01-01"), "{path}: {message}");
    }
    // Auditors' time filters and agreements' terms keep to the same domain.
    let response = app
        .get_as(
            &token(Role::Auditor, LANCASHIRE, None),
            "/api/v1/audit?from=%2B262000-01-01T00:00:00Z",
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("`from`"),
        "{body}"
    );
    let response = app
        .client
        .post(app.url("/api/v1/admin/agreements"))
        .bearer_auth(token(Role::Admin, LANCASHIRE, None))
        .json(&json!({"from": LANCASHIRE, "to": "E06000009", "scopes": ["releases"], "valid_from": "-200000-01-01"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("`valid_from`"),
        "{body}"
    );
}

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
    let test_db = atlas_postgres::test_db::TestDatabase::new().await;
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

#[tokio::test]
async fn bad_input_where_the_caller_may_not_go_is_refused_by_the_policy_first() {
    let app = app().await;
    let viewer = token(Role::PartnerViewer, LANCASHIRE, None);
    let agency = app
        .register_agency("Lancashire Constabulary", &[LANCASHIRE])
        .await;
    let analyst = token(Role::AgencyAnalyst, LANCASHIRE, Some(agency));
    let release = format!("/api/v1/partnerships/{LANCASHIRE}/releases");
    let malformed = "{\"name\": 5, \"kind\": \"wizard\", ";
    let wrong_shape = "{\"unexpected\": [1, 2, 3]}";
    let cases: Vec<(Method, String, Option<&str>, &str)> = vec![
        (
            Method::POST,
            "/api/v1/admin/agencies".to_owned(),
            Some(malformed),
            &viewer,
        ),
        (
            Method::POST,
            "/api/v1/admin/agencies".to_owned(),
            Some(wrong_shape),
            &analyst,
        ),
        (
            Method::POST,
            "/api/v1/admin/agreements".to_owned(),
            Some(malformed),
            &viewer,
        ),
        (
            Method::POST,
            "/api/v1/admin/agreements".to_owned(),
            Some(wrong_shape),
            &analyst,
        ),
        (
            Method::PUT,
            "/api/v1/admin/users/someone".to_owned(),
            Some(malformed),
            &viewer,
        ),
        (
            Method::PUT,
            "/api/v1/admin/users/someone".to_owned(),
            Some(wrong_shape),
            &analyst,
        ),
        (Method::POST, release.clone(), Some(malformed), &viewer),
        (Method::POST, release.clone(), Some(wrong_shape), &analyst),
        (
            Method::POST,
            "/api/v1/admin/agreements/not-a-uuid/revoke".to_owned(),
            None,
            &viewer,
        ),
        (
            Method::POST,
            format!("{release}/not-a-uuid/approve"),
            None,
            &analyst,
        ),
        (Method::GET, format!("{release}/not-a-uuid"), None, &analyst),
        (
            Method::GET,
            "/api/v1/audit?from=yesterday&limit=many".to_owned(),
            None,
            &viewer,
        ),
    ];
    for (method, path, body, bearer) in cases {
        let mut request = app
            .client
            .request(method.clone(), app.url(&path))
            .bearer_auth(bearer);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request.send().await.unwrap();
        let id = request_id(&response);
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
        let message = body["message"].as_str().unwrap();
        for detail in [
            "line",
            "column",
            "unknown field",
            "missing field",
            "uuid",
            "UUID",
            "invalid",
        ] {
            assert!(!message.contains(detail), "{method} {path}: {message}");
        }
        let entries = entries_of(&app, &id).await;
        assert_eq!(entries.len(), 1, "{method} {path}");
        assert_eq!(entries[0].1, "denied", "{method} {path}");
    }
    // The caller the policy allows learns what is wrong, and that is audited too.
    let response = app
        .client
        .post(app.url("/api/v1/admin/agencies"))
        .bearer_auth(token(Role::Admin, LANCASHIRE, None))
        .header("content-type", "application/json")
        .body(wrong_shape)
        .send()
        .await
        .unwrap();
    let id = request_id(&response);
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("unexpected"),
        "{body}"
    );
    assert_eq!(entries_of(&app, &id).await[0].1, "failed");
}

#[tokio::test]
async fn the_audit_writer_has_connections_of_its_own() {
    let app = spawn_ready_app_with(|settings| {
        settings.database.pool_size = 1;
        settings.audit.connections = 1;
    })
    .await;
    app.import_lancashire_cluster().await;
    assert_eq!(
        app.get("/api/v1/partnerships").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.count(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = 'atlas-audit'"
        )
        .await,
        1,
        "the audit writer's connection is its own, named atlas-audit"
    );
    // Requests queueing for the one request connection never hold up each other's entries.
    let readers: Vec<_> = (0..8)
        .map(|reader| {
            let token = named_token(
                &format!("reader{reader}"),
                Role::PartnershipAnalyst,
                LANCASHIRE,
                None,
            );
            tokio::spawn(hammer(
                &app,
                token,
                vec!["/api/v1/partnerships".to_owned()],
                10,
            ))
        })
        .collect();
    for reader in readers {
        for answer in reader.await.unwrap() {
            assert_eq!(answer.expect("answered").0, StatusCode::OK);
        }
    }
}

/// The `analysis` sample of `metric` on `/metrics`.
async fn analysis_metric(app: &TestApp, metric: &str, analysis: &str) -> u64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    let prefix = format!("{metric}{{analysis=\"{analysis}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {prefix}on /metrics: {text}"))
}

/// A client sends `path` as an analyst over its own connection, waits until the `analysis` is
/// computing, and leaves: the analysis stops within a minute and is counted as abandoned; the
/// same question from a client that waits is answered in full and not counted.
async fn assert_analysis_stops_when_its_client_leaves(app: &TestApp, analysis: &str, path: &str) {
    let analyst = token(Role::PartnershipAnalyst, LANCASHIRE, None);
    let mut client = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    client
        .write_all(
            format!(
                "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {analyst}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let asked = Instant::now();
    while analysis_metric(app, "atlas_analyses_running", analysis).await == 0 {
        assert!(
            asked.elapsed() < Duration::from_secs(30),
            "the {analysis} analysis never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(client);
    let left = Instant::now();
    while analysis_metric(app, "atlas_analyses_running", analysis).await > 0 {
        assert!(
            left.elapsed() < Duration::from_secs(60),
            "the {analysis} analysis is still running a minute after its client left"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        analysis_metric(app, "atlas_analyses_abandoned_total", analysis).await,
        1,
        "the {analysis} analysis ran to its end although its client had gone"
    );

    let response = app.get_as(&analyst, path).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        analysis_metric(app, "atlas_analyses_running", analysis).await,
        0
    );
    assert_eq!(
        analysis_metric(app, "atlas_analyses_abandoned_total", analysis).await,
        1
    );
}

/// Gives Lancashire one record on 2024-01-10: an analysis needs data to work on (without, it
/// answers "no data" at once).
async fn contribute_a_record(app: &TestApp) {
    let police = app
        .register_agency_of_kind("Lancashire Police", AgencyKind::Police, &[LANCASHIRE])
        .await;
    let cell = app
        .whole_cells(LANCASHIRE)
        .await
        .into_iter()
        .next()
        .unwrap();
    let rows = format!(
        "subject,record_kind,occurred_on,h3,indicators,age\n{:064x},incident,2024-01-10,{cell},missing,15\n",
        1
    );
    let response = app
        .upload(police, "text/csv", rows.into_bytes(), "/api/v1/extracts")
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn an_emerging_analysis_stops_when_its_client_disconnects() {
    let app = app().await;
    contribute_a_record(&app).await;
    // Lancashire at resolution 9 in weeks, with k = 2 and a time lag of 8: as many bins as the
    // budget allows (and more than the five windows that do not overlap a trend needs), seconds
    // of work.
    let weeks = MAX_BINS / app.coverage(LANCASHIRE, 9).await.len();
    let from = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    let to = from + Days::new(7 * weeks as u64 - 1);
    let path = format!(
        "/api/v1/partnerships/{LANCASHIRE}/emerging?resolution=9&step=week&k=2&time_lag=8&from={from}&to={to}"
    );
    assert_analysis_stops_when_its_client_leaves(&app, "emerging", &path).await;
}

#[tokio::test]
async fn a_hotspot_permutation_test_stops_when_its_client_disconnects() {
    let app = app().await;
    contribute_a_record(&app).await;
    // Lancashire at resolution 9 with k = 3 and as many permutations as keep within the budget
    // of 50 million cells × permutations: seconds of work.
    let permutations = (40_000_000 / app.coverage(LANCASHIRE, 9).await.len()).min(9_999);
    let path = format!(
        "/api/v1/partnerships/{LANCASHIRE}/hotspots?resolution=9&k=3&adjust=none&permutations={permutations}"
    );
    assert_analysis_stops_when_its_client_leaves(&app, "hotspots", &path).await;
}
