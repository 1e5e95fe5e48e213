//! Transport security through real connections: mutual TLS, plain HTTP refused in production,
//! security headers and request size limits.

use atlas_access::Role;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{named_token, spawn_app_with, token};

/// A certificate authority, a server certificate for localhost and a client certificate, all
/// PEM, written into `dir`.
struct Pki {
    ca: String,
    server_cert: std::path::PathBuf,
    server_key: std::path::PathBuf,
    ca_file: std::path::PathBuf,
    client_identity: Vec<u8>,
}

fn make_pki(dir: &std::path::Path) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client = CertificateParams::new(vec!["partner.example".to_owned()])
        .unwrap()
        .signed_by(&client_key, &ca)
        .unwrap();
    let paths = (
        dir.join("server.crt"),
        dir.join("server.key"),
        dir.join("ca.crt"),
    );
    std::fs::write(&paths.0, server.pem()).unwrap();
    std::fs::write(&paths.1, server_key.serialize_pem()).unwrap();
    std::fs::write(&paths.2, ca.pem()).unwrap();
    Pki {
        ca: ca.pem(),
        server_cert: paths.0,
        server_key: paths.1,
        ca_file: paths.2,
        client_identity: format!("{}{}", client.pem(), client_key.serialize_pem()).into_bytes(),
    }
}

fn https_client(pki: &Pki, identity: bool) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca.as_bytes()).unwrap());
    if identity {
        builder = builder.identity(reqwest::Identity::from_pem(&pki.client_identity).unwrap());
    }
    builder.build().unwrap()
}

#[tokio::test]
async fn with_mutual_tls_a_client_without_a_certificate_is_refused() {
    let test_db = atlas_postgres::test_db::TestDatabase::new().await;
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let app = spawn_app_with(&test_db, None, |settings| {
        settings.server.tls_cert = Some(pki.server_cert.clone());
        settings.server.tls_key = Some(pki.server_key.clone());
        settings.server.tls_client_ca = Some(pki.ca_file.clone());
    })
    .await;
    let url = format!("https://localhost:{}/healthz", app.port);
    let with_certificate = https_client(&pki, true).get(&url).send().await.unwrap();
    assert_eq!(with_certificate.status(), StatusCode::OK);
    assert!(
        https_client(&pki, false).get(&url).send().await.is_err(),
        "a client without a certificate must not get an answer"
    );
    // A certificate from another authority is refused too.
    let stranger_dir = tempfile::tempdir().unwrap();
    let stranger = make_pki(stranger_dir.path());
    let foreign = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca.as_bytes()).unwrap())
        .identity(reqwest::Identity::from_pem(&stranger.client_identity).unwrap())
        .build()
        .unwrap();
    assert!(foreign.get(&url).send().await.is_err());
}

#[tokio::test]
async fn in_production_plain_http_reaches_only_the_health_checks() {
    let test_db = atlas_postgres::test_db::TestDatabase::new().await;
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let app = spawn_app_with(&test_db, None, |settings| {
        settings.server.require_tls = true;
        settings.auth.dev_signing = false;
        settings.server.tls_cert = Some(pki.server_cert.clone());
        settings.server.tls_key = Some(pki.server_key.clone());
        settings.server.plain_port = Some(0);
    })
    .await;
    let https = https_client(&pki, false);
    let analyst = token(Role::PartnershipAnalyst, "E10000017", None);
    let secure = https
        .get(format!(
            "https://localhost:{}/api/v1/partnerships",
            app.port
        ))
        .bearer_auth(&analyst)
        .send()
        .await
        .unwrap();
    assert_eq!(secure.status(), StatusCode::OK);
    assert_eq!(
        secure.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );

    let plain_port = app.plain_port.expect("a plain port is bound");
    let plain = |path: &str| {
        reqwest::Client::new()
            .get(format!("http://127.0.0.1:{plain_port}{path}"))
            .bearer_auth(&analyst)
            .send()
    };
    assert_eq!(plain("/healthz").await.unwrap().status(), StatusCode::OK);
    assert_eq!(plain("/readyz").await.unwrap().status(), StatusCode::OK);
    for path in ["/api/v1/partnerships", "/api/v1/openapi.json", "/metrics"] {
        let refused = plain(path).await.unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(!refused.headers().contains_key("strict-transport-security"));
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"], "https_required");
    }
}

#[tokio::test]
async fn responses_carry_security_headers_and_data_is_never_cached() {
    let app = crate::support::spawn_app().await;
    let data = app.get("/api/v1/partnerships").await;
    let headers = data.headers();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'")
    );
    assert!(
        !headers.contains_key("strict-transport-security"),
        "HSTS only over TLS"
    );
    let health = app.get("/healthz").await;
    assert_eq!(health.headers()["x-content-type-options"], "nosniff");
    assert!(!health.headers().contains_key("cache-control"));
}

#[tokio::test]
async fn oversized_json_bodies_are_refused() {
    let app = crate::support::spawn_app().await;
    let admin = token(Role::Admin, "E10000017", None);
    let response = app
        .client
        .post(app.url("/api/v1/admin/agencies"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(format!(
            "{{\"name\": \"{}\", \"kind\": \"vcs\", \"partnerships\": []}}",
            "x".repeat(100 * 1024)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "payload_too_large");
}

#[tokio::test]
async fn a_partner_instance_fetches_a_published_release_over_mutual_tls() {
    use serde_json::json;
    const BLACKPOOL: &str = "E06000009";
    const LANCASHIRE: &str = "E10000017";
    let test_db = atlas_postgres::test_db::TestDatabase::new().await;
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let app = spawn_app_with(&test_db, None, |settings| {
        settings.server.tls_cert = Some(pki.server_cert.clone());
        settings.server.tls_key = Some(pki.server_key.clone());
        settings.server.tls_client_ca = Some(pki.ca_file.clone());
    })
    .await;
    app.import_lancashire_cluster().await;
    let url = |path: &str| format!("https://localhost:{}{path}", app.port);
    let client = https_client(&pki, true);
    let admin = token(Role::Admin, BLACKPOOL, None);
    let agreed = client
        .post(url("/api/v1/admin/agreements"))
        .bearer_auth(&admin)
        .json(&json!({"from": BLACKPOOL, "to": LANCASHIRE, "scopes": ["releases"], "valid_from": "2024-01-01"}))
        .send()
        .await
        .unwrap();
    assert_eq!(agreed.status(), StatusCode::CREATED);
    // A quarter no agency contributed to has nothing to release: not a table of zeros.
    let preparer = named_token("ana@blackpool", Role::PartnershipAnalyst, BLACKPOOL, None);
    let empty = client
        .post(url(&format!("/api/v1/partnerships/{BLACKPOOL}/releases")))
        .bearer_auth(&preparer)
        .json(&json!({"period": "2024-Q1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), StatusCode::CONFLICT);
    let refusal: Value = empty.json().await.unwrap();
    assert!(
        refusal["message"]
            .as_str()
            .unwrap()
            .contains("no agency has contributed records"),
        "{refusal}"
    );
    let police = app.register_agency("Blackpool Police", &[BLACKPOOL]).await;
    let mut rows = String::from("subject,record_kind,occurred_on,lat,lon\n");
    for child in 0..12 {
        rows.push_str(&format!(
            "{child:064x},incident,2024-02-1{},53.8175,-3.0357\n",
            child % 9
        ));
    }
    let uploaded = client
        .post(url("/api/v1/extracts"))
        .bearer_auth(app.agency_token(police).await)
        .header("content-type", "text/csv")
        .body(rows)
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), StatusCode::CREATED);
    let releases = url(&format!("/api/v1/partnerships/{BLACKPOOL}/releases"));
    let prepared: Value = client
        .post(&releases)
        .bearer_auth(&preparer)
        .json(&json!({"period": "2024-Q1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let one = format!("{releases}/{}", prepared["id"].as_str().unwrap());
    let approver = named_token("bo@blackpool", Role::PartnershipAnalyst, BLACKPOOL, None);
    let approved = client
        .post(format!("{one}/approve"))
        .bearer_auth(&approver)
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), StatusCode::OK);

    // Lancashire's instance: its client certificate and its viewer's token.
    let viewer = token(Role::PartnerViewer, LANCASHIRE, None);
    let fetched = client.get(&one).bearer_auth(&viewer).send().await.unwrap();
    assert_eq!(fetched.status(), StatusCode::OK);
    let release: Value = fetched.json().await.unwrap();
    assert_eq!(release["status"], "published");
    assert!(
        https_client(&pki, false)
            .get(&one)
            .bearer_auth(&viewer)
            .send()
            .await
            .is_err(),
        "without the instance's certificate there is no answer at all"
    );
}
