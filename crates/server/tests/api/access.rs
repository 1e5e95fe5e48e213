//! Access control through real HTTP: the token attack corpus, the full role matrix with its
//! audit entries, and rate limiting.

use atlas_access::Role;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{AUDIENCE, ISSUER, SIGNING, TestApp, now, spawn_ready_app_with, token};

const RSA_PRIVATE: &str = include_str!("../fixtures/rsa-test-private.pem");
const RSA_PUBLIC: &str = include_str!("../fixtures/rsa-test-public.pem");
const RSA_KID: &str = "rsa-test";

const LANCASHIRE: &str = "E10000017";
const BLACKPOOL: &str = "E06000009";
const ROCHDALE: &str = "E08000005";

/// An app that trusts the test Ed25519 key (JWKS) and an RS256 key (PEM), with the Lancashire
/// cluster imported.
async fn app_with_two_keys() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let public = dir.path().join("rsa-public.pem");
    std::fs::write(&public, RSA_PUBLIC).unwrap();
    let app = spawn_ready_app_with(|settings| {
        settings.auth.keys = vec![atlas_app::settings::PemKeySettings {
            kid: Some(RSA_KID.to_owned()),
            algorithm: "RS256".to_owned(),
            file: public.clone(),
        }];
    })
    .await;
    app.import_lancashire_cluster().await;
    app
}

/// Valid claims for a Lancashire partnership analyst.
fn claims() -> Value {
    let now = now();
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "analyst", "iat": now, "nbf": now,
        "exp": now + 600, "partnership": LANCASHIRE, "roles": ["partnership_analyst"],
    })
}

/// `claims` signed with the trusted Ed25519 key.
fn signed(claims: &Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(SIGNING.0.kid().to_owned());
    let key = EncodingKey::from_ed_pem(SIGNING.0.private_pem().as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

fn with(changes: &[(&str, Value)]) -> String {
    let mut claims = claims();
    for (name, value) in changes {
        claims[*name] = value.clone();
    }
    signed(&claims)
}

fn without(name: &str) -> String {
    let mut claims = claims();
    claims.as_object_mut().unwrap().remove(name);
    signed(&claims)
}

fn encode_part(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

#[tokio::test]
async fn every_forged_or_invalid_token_is_answered_401_without_detail() {
    let app = app_with_two_keys().await;
    let now = now();
    let ed_kid = SIGNING.0.kid().to_owned();

    let alg_none = format!(
        "{}.{}.",
        encode_part(&json!({"alg": "none", "typ": "JWT", "kid": ed_kid})),
        encode_part(&claims())
    );
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some(RSA_KID.to_owned());
    let hs256_with_public_key = jsonwebtoken::encode(
        &hs_header,
        &claims(),
        &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()),
    )
    .unwrap();
    let other_key = atlas_access::keys::SigningKey::generate().unwrap();
    let mut wrong_key_header = Header::new(Algorithm::EdDSA);
    wrong_key_header.kid = Some(ed_kid.clone());
    let wrong_key = jsonwebtoken::encode(
        &wrong_key_header,
        &claims(),
        &EncodingKey::from_ed_pem(other_key.private_pem().as_bytes()).unwrap(),
    )
    .unwrap();
    let mut unknown_kid_header = Header::new(Algorithm::EdDSA);
    unknown_kid_header.kid = Some("no-such-key".to_owned());
    let unknown_kid = jsonwebtoken::encode(
        &unknown_kid_header,
        &claims(),
        &EncodingKey::from_ed_pem(SIGNING.0.private_pem().as_bytes()).unwrap(),
    )
    .unwrap();
    let huge = with(&[("padding", json!("x".repeat(100 * 1024)))]);
    assert!(huge.len() > 100 * 1024);

    let corpus: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("malformed token", Some("Bearer not-a-token".to_owned())),
        ("three garbage parts", Some("Bearer abc.def.ghi".to_owned())),
        ("not a bearer scheme", Some(format!("Basic {}", with(&[])))),
        ("alg none", Some(format!("Bearer {alg_none}"))),
        (
            "HS256 signed with the RSA public key",
            Some(format!("Bearer {hs256_with_public_key}")),
        ),
        ("wrong key", Some(format!("Bearer {wrong_key}"))),
        (
            "expired",
            Some(format!(
                "Bearer {}",
                with(&[("exp", json!(now - 3_600)), ("nbf", json!(now - 7_200))])
            )),
        ),
        (
            "nbf in the future",
            Some(format!("Bearer {}", with(&[("nbf", json!(now + 3_600))]))),
        ),
        (
            "wrong iss",
            Some(format!(
                "Bearer {}",
                with(&[("iss", json!("https://evil.example"))])
            )),
        ),
        (
            "wrong aud",
            Some(format!(
                "Bearer {}",
                with(&[("aud", json!("another-service"))])
            )),
        ),
        ("unknown kid", Some(format!("Bearer {unknown_kid}"))),
        ("missing sub", Some(format!("Bearer {}", without("sub")))),
        ("missing exp", Some(format!("Bearer {}", without("exp")))),
        ("a 100 KB token", Some(format!("Bearer {huge}"))),
    ];
    let before = app.count("SELECT count(*) FROM audit_log").await;
    let mut bodies = Vec::new();
    for (name, authorization) in &corpus {
        let mut request = app.client.get(app.url("/api/v1/partnerships"));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(
            response.headers()["www-authenticate"],
            "Bearer realm=\"safeguard-atlas\"",
            "{name}"
        );
        bodies.push(response.text().await.unwrap());
    }
    assert!(
        bodies.iter().all(|body| *body == bodies[0]),
        "every refusal must read the same, so it says nothing of why: {bodies:?}"
    );
    let body: Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(body["error"], "unauthorized");
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log").await,
        before,
        "unauthenticated requests name no subject and are logged, not audited"
    );

    // The same claims, properly signed with either trusted key, are accepted; `nbf` is
    // checked when present (above) but not required, as Keycloak leaves it out.
    let good_ed = app.get_as(&with(&[]), "/api/v1/partnerships").await;
    assert_eq!(good_ed.status(), StatusCode::OK);
    assert_eq!(
        app.get_as(&without("nbf"), "/api/v1/partnerships")
            .await
            .status(),
        StatusCode::OK
    );

    // A token the provider signed but did not map for Atlas is refused with 403 saying which
    // claim to map: its holder cannot forge anything with that.
    for (name, token, says) in [
        (
            "missing partnership",
            without("partnership"),
            "no `partnership` claim",
        ),
        ("missing roles", without("roles"), "no `roles` claim"),
        (
            "roles of the wrong type",
            with(&[("roles", json!(7))]),
            "not a list of strings",
        ),
        (
            "roles naming no role of this service",
            with(&[("roles", json!(["superuser"]))]),
            "names no role of this service",
        ),
        (
            "partnership not a GSS code",
            with(&[("partnership", json!("Lancashire"))]),
            "GSS code",
        ),
    ] {
        let response = app.get_as(&token, "/api/v1/partnerships").await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{name}");
        let body: Value = response.json().await.unwrap();
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(says) && message.contains("identity provider's administrator"),
            "{name}: {body}"
        );
    }
    let mut rsa_header = Header::new(Algorithm::RS256);
    rsa_header.kid = Some(RSA_KID.to_owned());
    let good_rsa = jsonwebtoken::encode(
        &rsa_header,
        &claims(),
        &EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        app.get_as(&good_rsa, "/api/v1/partnerships").await.status(),
        StatusCode::OK
    );
    // An RS256 token presented under the Ed25519 key's kid is refused: keys are pinned.
    let mut confused = Header::new(Algorithm::RS256);
    confused.kid = Some(ed_kid);
    let confused = jsonwebtoken::encode(
        &confused,
        &claims(),
        &EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        app.get_as(&confused, "/api/v1/partnerships").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

/// A CSV extract of `rows` rows at `(lat, lon)`, different for each `seed`.
fn extract_at(lat: f64, lon: f64, rows: u32, seed: u32) -> Vec<u8> {
    let mut text = String::from("subject,record_kind,occurred_on,lat,lon,indicators\n");
    for child in 0..rows {
        text.push_str(&format!(
            "{:064x},incident,2024-03-{:02},{lat},{lon},missing\n",
            seed * 1_000 + child,
            1 + child % 28
        ));
    }
    text.into_bytes()
}

async fn upload(app: &TestApp, agency: uuid::Uuid, body: Vec<u8>) -> String {
    let response = app
        .upload(agency, "text/csv", body, "/api/v1/extracts")
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let batch: Value = response.json().await.unwrap();
    batch["batch_id"].as_str().unwrap().to_owned()
}

/// One request of the matrix and the status each role must get, in [`ROLES`] order.
struct Cell {
    method: Method,
    path: String,
    body: Option<(&'static str, Vec<u8>)>,
    expected: [u16; 6],
}

const ROLES: [Role; 6] = [
    Role::AgencyAnalyst,
    Role::PartnershipAnalyst,
    Role::PartnerViewer,
    Role::Admin,
    Role::Auditor,
    Role::BoardMember,
];

fn cell(method: Method, path: &str, expected: [u16; 6]) -> Cell {
    Cell {
        method,
        path: path.to_owned(),
        body: None,
        expected,
    }
}

#[tokio::test]
async fn every_role_on_every_endpoint_gets_what_the_matrix_says_and_leaves_one_audit_entry() {
    let app = spawn_ready_app_with(|_| {}).await;
    app.import_lancashire_cluster().await;
    // Own agency in the caller's partnership (Lancashire), and agencies in Blackpool (another
    // partnership) and Rochdale (a partnership that shares its releases with Lancashire).
    let own_agency = app
        .register_agency("Lancashire Police", &[LANCASHIRE])
        .await;
    let blackpool_agency = app.register_agency("Blackpool Police", &[BLACKPOOL]).await;
    let rochdale_agency = app.register_agency("Rochdale Police", &[ROCHDALE]).await;
    let own_batch = upload(&app, own_agency, extract_at(53.7590, -2.6990, 12, 1)).await;
    let other_batch = upload(&app, blackpool_agency, extract_at(53.8175, -3.0357, 9, 2)).await;
    let agreed_batch = upload(&app, rochdale_agency, extract_at(53.6158, -2.1561, 7, 3)).await;
    let admin = token(Role::Admin, LANCASHIRE, None);
    let created = app
        .client
        .post(app.url("/api/v1/admin/agreements"))
        .bearer_auth(&admin)
        .json(&json!({"from": ROCHDALE, "to": LANCASHIRE, "scopes": ["releases"], "valid_from": "2024-01-01"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);

    let principals: Vec<String> = ROLES
        .iter()
        .map(|role| {
            let agency = (*role == Role::AgencyAnalyst).then_some(own_agency);
            token(*role, LANCASHIRE, agency)
        })
        .collect();

    let mut cells = vec![
        cell(Method::GET, "/api/v1/partnerships", [200; 6]),
        cell(
            Method::GET,
            &format!("/api/v1/partnerships/{LANCASHIRE}"),
            [200; 6],
        ),
        cell(
            Method::GET,
            &format!("/api/v1/partnerships/{BLACKPOOL}"),
            [200; 6],
        ),
        cell(
            Method::GET,
            &format!("/api/v1/partnerships/{ROCHDALE}"),
            [200; 6],
        ),
        cell(Method::GET, "/api/v1/regional-groups", [200; 6]),
        cell(Method::GET, "/api/v1/session", [200; 6]),
        cell(
            Method::GET,
            &format!("/api/v1/partnerships/{LANCASHIRE}/places"),
            [200; 6],
        ),
    ];
    for (code, grid, hotspots) in [
        (
            LANCASHIRE,
            [200, 200, 403, 403, 403, 403],
            [403, 200, 403, 403, 403, 403],
        ),
        (BLACKPOOL, [403; 6], [403; 6]),
        (ROCHDALE, [403; 6], [403; 6]),
    ] {
        cells.push(cell(
            Method::GET,
            &format!("/api/v1/partnerships/{code}/grid"),
            grid,
        ));
        cells.push(cell(
            Method::GET,
            &format!("/api/v1/partnerships/{code}/hotspots"),
            hotspots,
        ));
        for requests in ["summary-requests", "regional-requests", "waiting"] {
            cells.push(cell(
                Method::GET,
                &format!("/api/v1/partnerships/{code}/{requests}"),
                if code == LANCASHIRE {
                    [403, 200, 200, 403, 403, 403]
                } else {
                    [403; 6]
                },
            ));
        }
        cells.push(cell(
            Method::GET,
            &format!("/api/v1/partnerships/{code}/self-assessment"),
            if code == LANCASHIRE {
                [403, 200, 403, 403, 403, 200]
            } else {
                [403; 6]
            },
        ));
        cells.push(cell(
            Method::GET,
            &format!("/api/v1/partnerships/{code}/profiles"),
            if code == LANCASHIRE {
                [403, 200, 403, 403, 403, 200]
            } else {
                [403; 6]
            },
        ));
        cells.push(cell(
            Method::GET,
            &format!("/api/v1/partnerships/{code}/readers"),
            if code == LANCASHIRE {
                [403, 200, 403, 403, 200, 403]
            } else {
                [403, 403, 403, 403, 200, 403]
            },
        ));
        cells.push(cell(
            Method::GET,
            &format!("/api/v1/partnerships/{code}/emerging"),
            // Lancashire's analyst is allowed, but its few months of records are too short a
            // period (400), which is audited as failed.
            if code == LANCASHIRE {
                [403, 400, 403, 403, 403, 403]
            } else {
                [403; 6]
            },
        ));
    }
    for (batch, expected) in [
        (&own_batch, [200, 200, 403, 403, 403, 403]),
        (&other_batch, [403; 6]),
        (&agreed_batch, [403; 6]),
    ] {
        cells.push(cell(
            Method::GET,
            &format!("/api/v1/batches/{batch}"),
            expected,
        ));
    }
    for (batch, expected) in [
        (&own_batch, [200, 403, 403, 403, 403, 403]),
        (&other_batch, [403; 6]),
        (&agreed_batch, [403; 6]),
    ] {
        cells.push(cell(
            Method::GET,
            &format!("/api/v1/batches/{batch}/rejections"),
            expected,
        ));
    }
    cells.push(Cell {
        method: Method::POST,
        path: "/api/v1/extracts".to_owned(),
        body: Some(("text/csv", extract_at(53.7590, -2.6990, 5, 4))),
        expected: [201, 403, 403, 403, 403, 403],
    });
    cells.extend([
        cell(
            Method::GET,
            "/api/v1/admin/agencies",
            [403, 403, 403, 200, 403, 403],
        ),
        cell(
            Method::GET,
            "/api/v1/admin/agreements",
            [403, 403, 403, 200, 403, 403],
        ),
        cell(Method::GET, "/api/v1/audit", [403, 403, 403, 403, 200, 403]),
        cell(
            Method::GET,
            "/api/v1/audit/verify",
            [403, 403, 403, 403, 200, 403],
        ),
    ]);
    cells.push(Cell {
        method: Method::POST,
        path: "/api/v1/admin/agencies".to_owned(),
        body: Some((
            "application/json",
            json!({"name": "Lancashire Youth Justice", "kind": "yot", "partnerships": [LANCASHIRE]})
                .to_string()
                .into_bytes(),
        )),
        expected: [403, 403, 403, 201, 403, 403],
    });
    cells.push(Cell {
        method: Method::POST,
        path: "/api/v1/admin/agreements".to_owned(),
        body: Some((
            "application/json",
            json!({"from": BLACKPOOL, "to": LANCASHIRE, "scopes": ["releases"], "valid_from": "2024-01-01", "valid_to": "2024-12-31"})
                .to_string()
                .into_bytes(),
        )),
        expected: [403, 403, 403, 201, 403, 403],
    });
    cells.push(Cell {
        method: Method::PUT,
        path: "/api/v1/admin/users/newcomer@lancashire".to_owned(),
        body: Some((
            "application/json",
            json!({"partnership": LANCASHIRE, "roles": ["partnership_analyst"]})
                .to_string()
                .into_bytes(),
        )),
        expected: [403, 403, 403, 200, 403, 403],
    });
    cells.push(cell(
        Method::POST,
        "/api/v1/admin/users/newcomer@lancashire/disable",
        [403, 403, 403, 200, 403, 403],
    ));
    let agreement_id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    cells.push(cell(
        Method::POST,
        &format!("/api/v1/admin/agreements/{agreement_id}/revoke"),
        [403, 403, 403, 200, 403, 403],
    ));
    // Withdrawal changes the batch, so it comes last.
    for (batch, expected) in [
        (&other_batch, [403; 6]),
        (&agreed_batch, [403; 6]),
        (&own_batch, [200, 403, 403, 403, 403, 403]),
    ] {
        cells.push(cell(
            Method::DELETE,
            &format!("/api/v1/batches/{batch}"),
            expected,
        ));
    }

    let foreign = [other_batch.as_str(), agreed_batch.as_str()];
    let mut walked = 0;
    for cell in &cells {
        for (role, (principal, expected)) in ROLES.iter().zip(principals.iter().zip(cell.expected))
        {
            let before = app.count("SELECT count(*) FROM audit_log").await;
            let mut request = app
                .client
                .request(cell.method.clone(), app.url(&cell.path))
                .bearer_auth(principal);
            if let Some((content_type, body)) = &cell.body {
                request = request
                    .header("content-type", *content_type)
                    .body(body.clone());
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body = response.text().await.unwrap();
            assert_eq!(
                status, expected,
                "{role} {} {}: {body}",
                cell.method, cell.path
            );
            if !cell.path.starts_with("/api/v1/audit") {
                for batch in foreign {
                    assert!(
                        !body.contains(batch),
                        "{role} {} {} returned another partnership's batch",
                        cell.method,
                        cell.path
                    );
                }
            }
            if status == 403 {
                let error: Value = serde_json::from_str(&body).unwrap();
                assert_eq!(error["error"], "forbidden");
            }
            let after = app.count("SELECT count(*) FROM audit_log").await;
            assert_eq!(
                after,
                before + 1,
                "{role} {} {} must leave exactly one audit entry",
                cell.method,
                cell.path
            );
            walked += 1;
        }
    }
    assert_eq!(walked, cells.len() * ROLES.len());

    // Denials are recorded as such, with who asked for what.
    let denied = app
        .count(&format!(
            "SELECT count(*) FROM audit_log WHERE outcome = 'denied' AND action = 'batch.read' \
             AND resource = '/api/v1/batches/{other_batch}' AND subject = 'admin@{LANCASHIRE}'"
        ))
        .await;
    assert_eq!(denied, 1);
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
async fn the_audit_trail_is_filtered_and_paged_for_auditors() {
    let app = spawn_ready_app_with(|_| {}).await;
    app.import_lancashire_cluster().await;
    let analyst = token(Role::PartnershipAnalyst, LANCASHIRE, None);
    for code in [LANCASHIRE, BLACKPOOL, ROCHDALE] {
        let response = app
            .get_as(
                &analyst,
                &format!("/api/v1/partnerships/{code}?boundary=false"),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let auditor = token(Role::Auditor, LANCASHIRE, None);
    let page: Value = app
        .get_as(
            &auditor,
            &format!("/api/v1/audit?subject=partnership_analyst@{LANCASHIRE}&action=reference.read&limit=2"),
        )
        .await
        .json()
        .await
        .unwrap();
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{page}");
    assert_eq!(
        entries[0]["resource"],
        format!("/api/v1/partnerships/{ROCHDALE}")
    );
    assert_eq!(entries[0]["parameters"]["boundary"], "false");
    assert_eq!(
        entries[0]["rows_returned"], "c",
        "1 to 5 rows are not shown exactly"
    );
    assert_eq!(entries[0]["outcome"], "allowed");
    assert!(
        entries[0]["request_id"]
            .as_str()
            .is_some_and(|id| id.len() == 36)
    );
    let next = page["next_before_id"].as_i64().unwrap();
    let rest: Value = app
        .get_as(
            &auditor,
            &format!("/api/v1/audit?subject=partnership_analyst@{LANCASHIRE}&before_id={next}"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["entries"].as_array().unwrap().len(), 1);
    assert!(rest["next_before_id"].is_null());
    let bad = app.get_as(&auditor, "/api/v1/audit?limit=5000").await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let bad = app.get_as(&auditor, "/api/v1/audit?format=xml").await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    // The same entries as a CSV export, one row each.
    let csv = app
        .get_as(
            &auditor,
            &format!("/api/v1/audit?subject=partnership_analyst@{LANCASHIRE}&action=reference.read&limit=2&format=csv"),
        )
        .await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().take(5).collect::<Vec<_>>(),
        ["id", "occurred_at", "request_id", "subject", "roles"]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert_eq!(rows[0][0], entries[0]["id"].to_string());
    assert_eq!(&rows[0][12], "c", "rows returned as the JSON shows them");
}

#[tokio::test]
async fn verification_starts_from_the_servers_signed_checkpoint_and_refuses_an_altered_one() {
    let checkpoints = tempfile::tempdir().unwrap();
    let dir = checkpoints.path().to_owned();
    let app = spawn_ready_app_with(|settings| {
        settings.audit.checkpoint_dir = Some(dir.clone());
    })
    .await;
    app.import_lancashire_cluster().await;
    let analyst = token(Role::PartnershipAnalyst, LANCASHIRE, None);
    let auditor = token(Role::Auditor, LANCASHIRE, None);
    let read = |path: &'static str| {
        let (app, analyst) = (&app, &analyst);
        async move { assert_eq!(app.get_as(analyst, path).await.status(), StatusCode::OK) }
    };
    let verify = || async {
        let response = app.get_as(&auditor, "/api/v1/audit/verify").await;
        (response.status(), response.json::<Value>().await.unwrap())
    };
    read("/api/v1/partnerships").await;
    let (status, first) = verify().await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["intact"], true, "{first}");
    assert!(first["since_checkpoint"].is_null(), "no checkpoint yet");
    // What the schedule does: verify, then sign the chains' heads into the directory.
    let database = app.database();
    let (checked, written) = atlas_app::audit_trail::checkpoint(&database, &dir, false)
        .await
        .unwrap();
    assert_eq!(checked.verification.first_broken, None);
    let written = written.unwrap();
    read("/api/v1/partnerships").await;
    let (_, since) = verify().await;
    assert_eq!(since["intact"], true, "{since}");
    assert!(since["since_checkpoint"].is_string(), "{since}");
    assert!(
        since["entries"].as_u64().unwrap() < first["entries"].as_u64().unwrap() + 2,
        "only what followed the checkpoint is read: {since} {first}"
    );
    // A checkpoint edited on disk is not trusted: verification refuses rather than start there.
    let text = std::fs::read_to_string(&written).unwrap();
    let edited = text.replacen("\"entries\": ", "\"entries\": 1", 1);
    assert_ne!(edited, text);
    std::fs::write(&written, edited).unwrap();
    let (status, refused) = verify().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{refused}");
    assert!(
        refused["message"].as_str().is_some_and(
            |message| message.contains("not signed with this server's audit.chain_key")
        ),
        "{refused}"
    );
}

#[tokio::test]
async fn a_caller_beyond_its_rate_limit_gets_429_with_retry_after() {
    let app = spawn_ready_app_with(|settings| {
        settings.server.rate_limit_per_second = 1;
        settings.server.rate_limit_burst = 3;
    })
    .await;
    let analyst = token(Role::PartnershipAnalyst, LANCASHIRE, None);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(app.get_as(&analyst, "/api/v1/partnerships").await.status());
    }
    assert_eq!(&statuses[..3], [StatusCode::OK; 3]);
    let limited = app.get_as(&analyst, "/api/v1/partnerships").await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");
    // Another caller is not affected.
    let other = token(Role::PartnershipAnalyst, BLACKPOOL, None);
    assert_eq!(
        app.get_as(&other, "/api/v1/partnerships").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_shared_rate_limit_counts_a_callers_requests_across_processes() {
    let test_db = atlas_postgres::test_db::TestDatabase::new().await;
    let limited = |shared: bool| {
        move |settings: &mut atlas_app::Settings| {
            settings.server.rate_limit_per_second = 1;
            settings.server.rate_limit_burst = 3;
            settings.server.rate_limit_shared = shared;
        }
    };
    let analyst = token(Role::PartnershipAnalyst, LANCASHIRE, None);
    // Each process's own limit: a caller alternating between two gets twice the burst through.
    let (a, b) = (
        crate::support::spawn_app_with(&test_db, None, limited(false)).await,
        crate::support::spawn_app_with(&test_db, None, limited(false)).await,
    );
    a.wait_until_ready(std::time::Duration::from_secs(20)).await;
    b.wait_until_ready(std::time::Duration::from_secs(20)).await;
    let mut admitted = 0;
    for n in 0..8 {
        let app = if n % 2 == 0 { &a } else { &b };
        if app.get_as(&analyst, "/api/v1/partnerships").await.status() == StatusCode::OK {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 6, "three through each process");
    // Shared in PostgreSQL: the burst is the caller's, whichever process answers.
    let other = token(Role::PartnershipAnalyst, BLACKPOOL, None);
    let (c, d) = (
        crate::support::spawn_app_with(&test_db, None, limited(true)).await,
        crate::support::spawn_app_with(&test_db, None, limited(true)).await,
    );
    c.wait_until_ready(std::time::Duration::from_secs(20)).await;
    d.wait_until_ready(std::time::Duration::from_secs(20)).await;
    let mut statuses = Vec::new();
    for n in 0..8 {
        let app = if n % 2 == 0 { &c } else { &d };
        statuses.push(app.get_as(&other, "/api/v1/partnerships").await);
    }
    let admitted = statuses
        .iter()
        .filter(|response| response.status() == StatusCode::OK)
        .count();
    assert_eq!(admitted, 3, "three in all across both processes");
    let refused = statuses
        .iter()
        .find(|response| response.status() == StatusCode::TOO_MANY_REQUESTS)
        .unwrap();
    assert!(refused.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn revoked_and_expired_agreements_are_listed_as_such() {
    let app = spawn_ready_app_with(|_| {}).await;
    app.import_lancashire_cluster().await;
    let admin = token(Role::Admin, LANCASHIRE, None);
    let post = |body: Value| {
        app.client
            .post(app.url("/api/v1/admin/agreements"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    let refused = [
        (
            json!({"from": LANCASHIRE, "to": LANCASHIRE, "scopes": ["releases"], "valid_from": "2024-01-01"}),
            400,
        ),
        (
            json!({"from": LANCASHIRE, "to": BLACKPOOL, "scopes": ["grids"], "valid_from": "2024-01-01"}),
            400,
        ),
        (
            json!({"from": LANCASHIRE, "to": BLACKPOOL, "scopes": [], "valid_from": "2024-01-01"}),
            400,
        ),
        (
            json!({"from": LANCASHIRE, "to": BLACKPOOL, "scopes": ["releases"], "valid_from": "2024-02-01", "valid_to": "2024-01-01"}),
            400,
        ),
        (
            json!({"from": LANCASHIRE, "to": "E10000099", "scopes": ["releases"], "valid_from": "2024-01-01"}),
            404,
        ),
        (
            json!({"from": LANCASHIRE, "to": BLACKPOOL, "scopes": ["releases"]}),
            400,
        ),
    ];
    for (body, status) in refused {
        let response = post(body.clone()).await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{body}");
    }
    let created: Value = post(json!({"from": LANCASHIRE, "to": BLACKPOOL, "scopes": ["releases"], "valid_from": "2024-01-01"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let revoke = |id: String| {
        app.client
            .post(app.url(&format!("/api/v1/admin/agreements/{id}/revoke")))
            .bearer_auth(&admin)
            .send()
    };
    assert_eq!(
        revoke(id.to_owned()).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        revoke(id.to_owned()).await.unwrap().status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        revoke(uuid::Uuid::new_v4().to_string())
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    let listed: Value = app
        .get_as(&admin, "/api/v1/admin/agreements")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        listed["agreements"][0]["revoked_at"].is_string(),
        "{listed}"
    );
}

#[tokio::test]
async fn a_registration_holds_its_subject_to_its_partnership_agency_and_roles() {
    let app = spawn_ready_app_with(|_| {}).await;
    app.import_lancashire_cluster().await;
    let admin = token(Role::Admin, LANCASHIRE, None);
    let register = |subject: &'static str, body: Value| {
        app.client
            .put(app.url(&format!("/api/v1/admin/users/{subject}")))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    // Tokens from the support module have the subject `<role>@<partnership>`.
    let registered = register(
        "partnership_analyst@E10000017",
        json!({"partnership": LANCASHIRE, "roles": ["partnership_analyst", "auditor"]}),
    )
    .await
    .unwrap();
    assert_eq!(registered.status(), StatusCode::OK);
    let analyst = token(Role::PartnershipAnalyst, LANCASHIRE, None);
    assert_eq!(
        app.get_as(&analyst, "/api/v1/partnerships").await.status(),
        StatusCode::OK
    );
    // Registered elsewhere: the token's partnership no longer matches.
    register(
        "partnership_analyst@E10000017",
        json!({"partnership": BLACKPOOL, "roles": ["partnership_analyst"]}),
    )
    .await
    .unwrap();
    let mismatch = app.get_as(&analyst, "/api/v1/partnerships").await;
    assert_eq!(mismatch.status(), StatusCode::FORBIDDEN);
    let body: Value = mismatch.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("partnership"),
        "{body}"
    );
    // Registered with other roles only: nothing is left of the token.
    register(
        "partnership_analyst@E10000017",
        json!({"partnership": LANCASHIRE, "roles": ["auditor"]}),
    )
    .await
    .unwrap();
    assert_eq!(
        app.get_as(&analyst, "/api/v1/partnerships").await.status(),
        StatusCode::FORBIDDEN
    );
    // Disabled: refused at once.
    register(
        "partnership_analyst@E10000017",
        json!({"partnership": LANCASHIRE, "roles": ["partnership_analyst"]}),
    )
    .await
    .unwrap();
    let disabled = app
        .client
        .post(app.url("/api/v1/admin/users/partnership_analyst@E10000017/disable"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status(), StatusCode::OK);
    let refused = app.get_as(&analyst, "/api/v1/partnerships").await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let denied = app
        .count("SELECT count(*) FROM audit_log WHERE outcome = 'denied' AND subject = 'partnership_analyst@E10000017'")
        .await;
    assert_eq!(denied, 3, "refusals by registration are audited as denials");
    let bad = register(
        "someone",
        json!({"partnership": LANCASHIRE, "roles": ["superuser"]}),
    )
    .await
    .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let unknown = register(
        "someone",
        json!({"partnership": "E10000099", "roles": ["admin"]}),
    )
    .await
    .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn with_registration_required_an_unregistered_subject_is_refused() {
    let app = spawn_ready_app_with(|settings| settings.auth.require_registration = true).await;
    let stranger = token(Role::PartnershipAnalyst, LANCASHIRE, None);
    let refused = app.get_as(&stranger, "/api/v1/partnerships").await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("not registered"),
        "{body}"
    );
}

/// The total of `field` over a grid's cells.
fn grid_total(grid: &Value, field: &str) -> u64 {
    grid["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|cell| cell[field].as_u64().unwrap())
        .sum()
}

// Before need-to-know, the agency analyst of Lancashire Police read all 13 records, the social
// care team's single record in Lancaster included, with its exact date; and an analyst without
// an agency read the whole grid.
#[tokio::test]
async fn agency_analysts_read_only_their_own_agencys_records() {
    let app = spawn_ready_app_with(|_| {}).await;
    app.import_lancashire_cluster().await;
    let police = app
        .register_agency("Lancashire Police", &[LANCASHIRE])
        .await;
    let social_care = app
        .register_agency_of_kind(
            "Lancashire Children's Social Care",
            atlas_domain::AgencyKind::SocialCare,
            &[LANCASHIRE],
        )
        .await;
    upload(&app, police, extract_at(53.7590, -2.6990, 12, 1)).await;
    upload(&app, social_care, extract_at(54.0466, -2.8007, 1, 2)).await;
    // Records are stored at resolution 9; the grid's resolution-8 cell is its parent.
    let lancaster = h3o::LatLng::new(54.0466, -2.8007)
        .unwrap()
        .to_cell(h3o::Resolution::Nine)
        .parent(h3o::Resolution::Eight)
        .unwrap()
        .to_string();
    let path = format!("/api/v1/partnerships/{LANCASHIRE}/grid");

    let whole: Value = app
        .get_as(&token(Role::PartnershipAnalyst, LANCASHIRE, None), &path)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(grid_total(&whole, "records"), 13, "{whole}");

    let own = app
        .get_as(&token(Role::AgencyAnalyst, LANCASHIRE, Some(police)), &path)
        .await;
    assert_eq!(own.status(), StatusCode::OK);
    let own: Value = own.json().await.unwrap();
    assert_eq!(grid_total(&own, "records"), 12, "{own}");
    assert!(
        !own.to_string().contains(&lancaster),
        "the social care record's cell is not the police analyst's: {own}"
    );
    let csv = app
        .get_as(
            &token(Role::AgencyAnalyst, LANCASHIRE, Some(social_care)),
            &format!("{path}?format=csv"),
        )
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 2, "one cell of its own: {csv}");
    assert!(csv.contains(&lancaster), "{csv}");

    let no_agency = app
        .get_as(&token(Role::AgencyAnalyst, LANCASHIRE, None), &path)
        .await;
    assert_eq!(no_agency.status(), StatusCode::FORBIDDEN);
    let body: Value = no_agency.json().await.unwrap();
    assert_eq!(body["message"], "your token names no agency");
}

// Before need-to-know, the Blackpool-only agency's token naming Lancashire read Lancashire's
// whole grid, and registrations took any agency with any partnership.
#[tokio::test]
async fn a_tokens_agency_must_serve_its_partnership() {
    let app = spawn_ready_app_with(|_| {}).await;
    app.import_lancashire_cluster().await;
    let lancashire_police = app
        .register_agency("Lancashire Police", &[LANCASHIRE])
        .await;
    let blackpool_police = app.register_agency("Blackpool Police", &[BLACKPOOL]).await;
    upload(&app, lancashire_police, extract_at(53.7590, -2.6990, 12, 1)).await;
    let grid = format!("/api/v1/partnerships/{LANCASHIRE}/grid");

    for (agency, what) in [
        (blackpool_police, "an agency serving only Blackpool"),
        (uuid::Uuid::new_v4(), "an agency that does not exist"),
    ] {
        for role in [Role::AgencyAnalyst, Role::PartnershipAnalyst] {
            let refused = app
                .get_as(&token(role, LANCASHIRE, Some(agency)), &grid)
                .await;
            assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{what}, {role}");
            let body: Value = refused.json().await.unwrap();
            let message = body["message"].as_str().unwrap();
            assert!(message.contains("agency"), "{what}: {message}");
            assert!(!message.contains(BLACKPOOL), "{what}: {message}");
        }
    }
    let denied = app
        .count(&format!(
            "SELECT count(*) FROM audit_log WHERE outcome = 'denied' AND action = 'grid.read' \
             AND resource = '{grid}'"
        ))
        .await;
    assert_eq!(denied, 4, "each refusal is audited as a denial");
    // Its own partnership is fine.
    let own = app
        .get_as(
            &token(Role::AgencyAnalyst, BLACKPOOL, Some(blackpool_police)),
            &format!("/api/v1/partnerships/{BLACKPOOL}/grid"),
        )
        .await;
    assert_eq!(own.status(), StatusCode::OK);

    let admin = token(Role::Admin, LANCASHIRE, None);
    let register = |agency: uuid::Uuid, partnership: &str| {
        app.client
            .put(app.url("/api/v1/admin/users/una@blackpool-police"))
            .bearer_auth(&admin)
            .json(
                &json!({"partnership": partnership, "agency": agency, "roles": ["agency_analyst"]}),
            )
            .send()
    };
    let refused = register(blackpool_police, LANCASHIRE).await.unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("does not serve"),
        "{body}"
    );
    assert_eq!(
        register(blackpool_police, BLACKPOOL)
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

// Before need-to-know, Lancashire's analyst saw that the batch put exactly 3 rows in Blackpool.
#[tokio::test]
async fn a_batch_shows_each_partnership_only_its_own_rows() {
    let app = spawn_ready_app_with(|_| {}).await;
    app.import_lancashire_cluster().await;
    let constabulary = app
        .register_agency("Lancashire Constabulary", &[LANCASHIRE, BLACKPOOL])
        .await;
    let mut extract = extract_at(53.7590, -2.6990, 8, 1);
    let blackpool_rows = String::from_utf8(extract_at(53.8175, -3.0357, 3, 2)).unwrap();
    extract.extend_from_slice(blackpool_rows.split_once('\n').unwrap().1.as_bytes());
    let batch = upload(&app, constabulary, extract).await;
    let path = format!("/api/v1/batches/{batch}");

    let own: Value = app
        .get_as(
            &token(Role::AgencyAnalyst, LANCASHIRE, Some(constabulary)),
            &path,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(own["rows_total"], 11, "{own}");
    assert_eq!(own["rows_accepted"], 11, "{own}");
    assert_eq!(own["partnerships"], json!({LANCASHIRE: 8, BLACKPOOL: 3}));

    for (code, other, rows) in [(LANCASHIRE, BLACKPOOL, 8), (BLACKPOOL, LANCASHIRE, 3)] {
        let seen = app
            .get_as(&token(Role::PartnershipAnalyst, code, None), &path)
            .await;
        assert_eq!(seen.status(), StatusCode::OK);
        let seen: Value = seen.json().await.unwrap();
        assert_eq!(seen["partnerships"], json!({code: rows}), "{seen}");
        assert_eq!(seen["rows_accepted"], rows, "{seen}");
        for hidden in ["rows_total", "rows_rejected", "quality"] {
            assert!(seen.get(hidden).is_none(), "{code} sees {hidden}: {seen}");
        }
        assert!(!seen["partnerships"].to_string().contains(other), "{seen}");
    }
}

#[tokio::test]
async fn a_partnership_lists_who_read_its_records_and_small_row_counts_are_c() {
    let app = spawn_ready_app_with(|_| {}).await;
    app.import_lancashire_cluster().await;
    let blackpool_police = app.register_agency("Blackpool Police", &[BLACKPOOL]).await;
    upload(&app, blackpool_police, extract_at(53.8175, -3.0357, 4, 1)).await;
    let lancashire = token(Role::PartnershipAnalyst, LANCASHIRE, None);
    let blackpool = token(Role::PartnershipAnalyst, BLACKPOOL, None);
    // Without an agreement Lancashire's comparison shows no figures of Blackpool, so it used
    // none of its records; under a `comparison` agreement it reads Blackpool's (frozen,
    // gated) summaries. Blackpool's own grid read is not a read by someone else.
    let comparison =
        format!("/api/v1/partnerships/{LANCASHIRE}/comparison?from=2024-01-01&to=2024-06-30");
    assert_eq!(
        app.get_as(&lancashire, &comparison).await.status(),
        StatusCode::OK
    );
    let created = app
        .client
        .post(app.url("/api/v1/admin/agreements"))
        .bearer_auth(token(Role::Admin, LANCASHIRE, None))
        .json(&json!({"from": BLACKPOOL, "to": LANCASHIRE, "scopes": ["comparison"], "valid_from": "2024-01-01"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(
        app.get_as(&lancashire, &comparison).await.status(),
        StatusCode::OK
    );
    let grid = app
        .get_as(
            &blackpool,
            &format!("/api/v1/partnerships/{BLACKPOOL}/grid"),
        )
        .await;
    assert_eq!(grid.status(), StatusCode::OK);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM audit_log WHERE action = 'analysis.read' \
             AND records_of @> ARRAY['{BLACKPOOL}', '{LANCASHIRE}']"
        ))
        .await,
        1,
        "the comparison's entry keeps the partnerships whose records it used"
    );

    let readers = format!("/api/v1/partnerships/{BLACKPOOL}/readers");
    let page = app.get_as(&blackpool, &readers).await;
    assert_eq!(page.status(), StatusCode::OK);
    let page: Value = page.json().await.unwrap();
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{page}");
    assert_eq!(
        entries[0]["subject"],
        format!("partnership_analyst@{LANCASHIRE}")
    );
    assert_eq!(entries[0]["caller_partnership"], LANCASHIRE);
    assert_eq!(entries[0]["action"], "analysis.read");
    assert_eq!(
        entries[0]["resource"],
        format!("/api/v1/partnerships/{LANCASHIRE}/comparison")
    );
    assert_eq!(entries[0]["outcome"], "allowed");
    assert_eq!(entries[0]["rows_returned"], "c", "{page}");
    assert!(entries[0]["occurred_at"].is_string());
    assert!(page["next_before_id"].is_null());

    let auditor = token(Role::Auditor, ROCHDALE, None);
    let audited: Value = app.get_as(&auditor, &readers).await.json().await.unwrap();
    assert_eq!(audited["entries"], page["entries"]);
    assert_eq!(
        app.get_as(&lancashire, &readers).await.status(),
        StatusCode::FORBIDDEN,
        "a partnership's readers are its own business"
    );
    assert_eq!(
        app.get_as(&blackpool, &format!("{readers}?limit=0"))
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );

    // The trail itself shows small row counts as c too, and exact counts above 5.
    let trail: Value = app
        .get_as(&auditor, "/api/v1/audit?action=analysis.read")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(trail["entries"][0]["rows_returned"], "c", "{trail}");
    let records_of = trail["entries"][0]["records_of"].as_array().unwrap();
    assert!(records_of.contains(&json!(BLACKPOOL)), "{trail}");
    assert!(records_of.contains(&json!(LANCASHIRE)), "{trail}");
}
