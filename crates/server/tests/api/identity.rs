//! Keys from the identity provider (docs/access.md, "Keys from the provider"): discovery, the
//! key set cached and fetched again for a new key, a flood of forged key ids, an outage, and
//! the page's sign-in endpoints from the discovery document. The provider here is a stand-in
//! serving the two documents (the browser tests run a certified provider, `oidc-provider`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use atlas_access::Role;
use atlas_access::keys::SigningKey;
use atlas_access::token::{TokenRequest, issue};
use atlas_app::settings::OidcSettings;
use atlas_domain::GssCode;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{AUDIENCE, TestApp, now, spawn_app_with};

/// What the stand-in provider publishes, and how often its key set was read.
struct Published {
    issuer: Mutex<String>,
    keys: Mutex<Vec<Value>>,
    key_set_reads: AtomicUsize,
    down: AtomicBool,
}

/// A stand-in identity provider on a free port.
struct StandInProvider {
    base: String,
    published: Arc<Published>,
}

impl StandInProvider {
    async fn start(keys: &[&SigningKey]) -> Self {
        Self::serve(keys, None).await
    }

    /// The provider over HTTPS at `https://localhost:<port>` with `certificate` (PEM chain,
    /// PEM key) when given.
    async fn serve(keys: &[&SigningKey], certificate: Option<(&str, &str)>) -> Self {
        let published = Arc::new(Published {
            issuer: Mutex::new(String::new()),
            keys: Mutex::new(Vec::new()),
            key_set_reads: AtomicUsize::new(0),
            down: AtomicBool::new(false),
        });
        let shared = web::Data::from(Arc::clone(&published));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .route(
                    "/.well-known/openid-configuration",
                    web::get().to(|published: web::Data<Published>| async move {
                        if published.down.load(Ordering::SeqCst) {
                            return HttpResponse::ServiceUnavailable().finish();
                        }
                        let issuer = published.issuer.lock().unwrap().clone();
                        HttpResponse::Ok().json(json!({
                            "issuer": issuer,
                            "jwks_uri": format!("{issuer}/keys"),
                            "authorization_endpoint": format!("{issuer}/authorize"),
                            "token_endpoint": format!("{issuer}/token"),
                            "end_session_endpoint": format!("{issuer}/logout"),
                        }))
                    }),
                )
                .route(
                    "/keys",
                    web::get().to(|published: web::Data<Published>| async move {
                        published.key_set_reads.fetch_add(1, Ordering::SeqCst);
                        if published.down.load(Ordering::SeqCst) {
                            return HttpResponse::ServiceUnavailable().finish();
                        }
                        let keys = published.keys.lock().unwrap().clone();
                        HttpResponse::Ok()
                            .insert_header(("cache-control", "public, max-age=3600"))
                            .json(json!({ "keys": keys }))
                    }),
                )
        })
        .workers(1);
        let (server, scheme, host) = match certificate {
            None => (server.bind(("127.0.0.1", 0)).unwrap(), "http", "127.0.0.1"),
            Some((chain, key)) => {
                use rustls_pki_types::pem::PemObject as _;
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let config = rustls::ServerConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_no_client_auth()
                    .with_single_cert(
                        rustls_pki_types::CertificateDer::pem_slice_iter(chain.as_bytes())
                            .collect::<Result<_, _>>()
                            .unwrap(),
                        rustls_pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
                    )
                    .unwrap();
                (
                    server.bind_rustls_0_23(("127.0.0.1", 0), config).unwrap(),
                    "https",
                    "localhost",
                )
            }
        };
        let base = format!("{scheme}://{host}:{}", server.addrs()[0].port());
        tokio::spawn(server.run());
        *published.issuer.lock().unwrap() = base.clone();
        let provider = Self { base, published };
        provider.publish(keys);
        provider
    }

    fn publish(&self, keys: &[&SigningKey]) {
        *self.published.keys.lock().unwrap() = keys
            .iter()
            .map(|key| key.jwks()["keys"][0].clone())
            .collect();
    }

    fn reads(&self) -> usize {
        self.published.key_set_reads.load(Ordering::SeqCst)
    }

    /// A Lancashire analyst's token from this provider, signed with `key`.
    fn token(&self, key: &SigningKey) -> String {
        issue(
            key,
            &TokenRequest {
                subject: "idp:alice".to_owned(),
                partnership: GssCode::parse("E10000017").unwrap(),
                agency: None,
                roles: vec![Role::PartnershipAnalyst],
                ttl_secs: 600,
            },
            &self.base,
            AUDIENCE,
            now(),
        )
        .unwrap()
    }
}

/// An app trusting only `provider`'s published keys, found by discovery, with the page's
/// sign-in endpoints from it too.
async fn app_of(
    provider: &StandInProvider,
    test_db: &atlas_postgres::test_db::TestDatabase,
) -> TestApp {
    let issuer = provider.base.clone();
    spawn_app_with(test_db, None, move |settings| {
        settings.auth.issuer = issuer;
        settings.auth.discovery = true;
        settings.auth.jwks_file = None;
        settings.auth.keys.clear();
        settings.auth.min_refresh_secs = 2;
        settings.web.oidc = Some(OidcSettings {
            authorization_endpoint: None,
            token_endpoint: None,
            client_id: "atlas-web".to_owned(),
            scope: "openid".to_owned(),
            end_session_endpoint: None,
        });
    })
    .await
}

async fn status_of(app: &TestApp, token: &str) -> StatusCode {
    app.get_as(token, "/api/v1/partnerships").await.status()
}

#[tokio::test]
async fn keys_come_from_the_provider_and_rotate_without_a_restart() {
    let (first, second) = (
        SigningKey::generate().unwrap(),
        SigningKey::generate().unwrap(),
    );
    let provider = StandInProvider::start(&[&first]).await;
    let test_db = atlas_postgres::test_db::TestDatabase::new().await;
    let app = app_of(&provider, &test_db).await;
    app.wait_until_ready(Duration::from_secs(20)).await;
    assert_eq!(
        status_of(&app, &provider.token(&first)).await,
        StatusCode::OK
    );
    let after_start = provider.reads();
    assert_eq!(
        after_start, 1,
        "one fetch at start, then served from the cache"
    );

    // The page's sign-in endpoints come from the discovery document, and its CSP allows the
    // token endpoint.
    let page = app.get("/").await;
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let html = page.text().await.unwrap();
    assert!(
        html.contains(&format!("content=\"{}/authorize\"", provider.base))
            && html.contains(&format!("content=\"{}/logout\"", provider.base)),
        "{html}"
    );
    assert!(
        csp.contains(&format!("connect-src 'self' {}", provider.base)),
        "{csp}"
    );

    // The provider adds a key and starts signing with it: the first token naming it (once
    // `min_refresh_secs` have passed since the last fetch) has the key set fetched again,
    // without a restart.
    provider.publish(&[&first, &second]);
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(
        status_of(&app, &provider.token(&second)).await,
        StatusCode::OK
    );
    assert_eq!(provider.reads(), after_start + 1);

    // A flood of tokens naming keys nobody has: at most one fetch per `min_refresh_secs`
    // (2 s here), however many arrive at once, and every one refused.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let before_flood = provider.reads();
    let forged: Vec<String> = (0..120)
        .map(|n| {
            let token = provider.token(&first);
            let (_, rest) = token.split_once('.').unwrap();
            let header = base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                json!({ "alg": "EdDSA", "kid": format!("forged-{n}") }).to_string(),
            );
            format!("{header}.{rest}")
        })
        .collect();
    let statuses =
        futures_util::future::join_all(forged.iter().map(|token| status_of(&app, token))).await;
    assert!(
        statuses
            .iter()
            .all(|status| *status == StatusCode::UNAUTHORIZED)
    );
    let flood_reads = provider.reads() - before_flood;
    assert!(
        (1..=2).contains(&flood_reads),
        "{flood_reads} fetches for 120 forged key ids"
    );

    // The old key is withdrawn: once the set is fetched again, its tokens are refused and the
    // new key's still accepted.
    provider.publish(&[&second]);
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(status_of(&app, &forged[0]).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        status_of(&app, &provider.token(&first)).await,
        StatusCode::UNAUTHORIZED,
        "the withdrawn key verifies nothing"
    );
    assert_eq!(
        status_of(&app, &provider.token(&second)).await,
        StatusCode::OK
    );

    // The provider goes down: the last keys fetched stay in use, and readiness says since when.
    provider.published.down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(status_of(&app, &forged[1]).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        status_of(&app, &provider.token(&second)).await,
        StatusCode::OK
    );
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK);
    let ready: Value = ready.json().await.unwrap();
    assert!(
        ready["keys"]
            .as_str()
            .is_some_and(|keys| keys.contains("load them again failed")),
        "{ready}"
    );
}

#[tokio::test]
async fn readiness_waits_for_the_providers_keys_and_the_issuer_must_match() {
    let key = SigningKey::generate().unwrap();
    let provider = StandInProvider::start(&[&key]).await;
    // The discovery document names another issuer: its keys are not trusted.
    let right = provider.base.clone();
    *provider.published.issuer.lock().unwrap() = "https://elsewhere.example".to_owned();
    let test_db = atlas_postgres::test_db::TestDatabase::new().await;
    let app = app_of(&provider, &test_db).await;
    app.wait_for_readyz(StatusCode::SERVICE_UNAVAILABLE, Duration::from_secs(20))
        .await;
    let body: Value = app.get("/readyz").await.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("signing keys have not been fetched"),
        "{body}"
    );
    assert_eq!(
        status_of(&app, &provider.token(&key)).await,
        StatusCode::UNAUTHORIZED
    );

    // Put right, the next token (after the 2 s between fetches) has the keys fetched, and the
    // service turns ready.
    *provider.published.issuer.lock().unwrap() = right;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(status_of(&app, &provider.token(&key)).await, StatusCode::OK);
    app.wait_for_readyz(StatusCode::OK, Duration::from_secs(5))
        .await;
}

#[tokio::test]
async fn claims_are_read_where_the_provider_puts_them_and_the_session_says_so() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    // An Entra-like layout: app role values of the provider's own, the partnership in a
    // directory extension claim (a name with a dot, taken whole), no `nbf`.
    let app = crate::support::spawn_ready_app_with(|settings| {
        settings.auth.claims = atlas_access::token::ClaimNames {
            partnership: "extn.partnership".to_owned(),
            role_values: [(
                "Atlas.PartnershipAnalyst".to_owned(),
                "partnership_analyst".to_owned(),
            )]
            .into(),
            ..atlas_access::token::ClaimNames::default()
        };
    })
    .await;
    let sign = |claims: &Value| {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(crate::support::SIGNING.0.kid().to_owned());
        let key =
            EncodingKey::from_ed_pem(crate::support::SIGNING.0.private_pem().as_bytes()).unwrap();
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    };
    let now = now();
    let entra = json!({
        "iss": crate::support::ISSUER, "aud": AUDIENCE, "sub": "AAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
        "iat": now, "exp": now + 600, "ver": "2.0",
        "roles": ["Atlas.PartnershipAnalyst", "Directory.Reader"],
        "extn.partnership": ["E10000017"],
    });
    let session = app.get_as(&sign(&entra), "/api/v1/session").await;
    assert_eq!(session.status(), StatusCode::OK);
    let session: Value = session.json().await.unwrap();
    assert_eq!(
        session,
        json!({
            "subject": "AAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
            "partnership": "E10000017",
            "roles": ["partnership_analyst"],
        })
    );
    // The service's own claim names are not read any more: such a token is refused, saying
    // which claim is missing.
    let mut unmapped = entra.clone();
    unmapped.as_object_mut().unwrap().remove("extn.partnership");
    unmapped["partnership"] = json!("E10000017");
    let refused = app.get_as(&sign(&unmapped), "/api/v1/session").await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("no `extn.partnership` claim"),
        "{body}"
    );
}

#[tokio::test]
async fn a_key_file_copying_the_providers_set_does_not_conflict_with_it() {
    // The operator kept the file of the provider's keys they used before turning discovery on:
    // the same kid in both is one key, and tokens verify.
    let provider = StandInProvider::start(&[&crate::support::SIGNING.0]).await;
    let test_db = atlas_postgres::test_db::TestDatabase::new().await;
    let issuer = provider.base.clone();
    let app = spawn_app_with(&test_db, None, move |settings| {
        settings.auth.issuer = issuer;
        settings.auth.discovery = true;
        settings.auth.min_refresh_secs = 2;
    })
    .await;
    app.wait_until_ready(Duration::from_secs(20)).await;
    assert_eq!(
        status_of(&app, &provider.token(&crate::support::SIGNING.0)).await,
        StatusCode::OK
    );
    let ready: Value = app.get("/readyz").await.json().await.unwrap();
    assert!(ready.get("keys").is_none(), "{ready}");
}

#[tokio::test]
async fn a_provider_over_https_is_trusted_through_the_configured_authority_only() {
    // The council's own certificate authority signs the provider's certificate.
    let certified = atlas_postgres::test_db::LocalhostCertificate::generate();
    let key = SigningKey::generate().unwrap();
    let provider =
        StandInProvider::serve(&[&key], Some((&certified.certificate, &certified.key))).await;
    assert!(provider.base.starts_with("https://localhost:"));
    let dir = tempfile::tempdir().unwrap();
    let authority_file = dir.path().join("council-ca.pem");
    std::fs::write(&authority_file, &certified.authority).unwrap();

    // Without the council's authority the provider's certificate is not trusted: no keys, not
    // ready.
    let untrusting_db = atlas_postgres::test_db::TestDatabase::new().await;
    let untrusting = app_of(&provider, &untrusting_db).await;
    untrusting
        .wait_for_readyz(StatusCode::SERVICE_UNAVAILABLE, Duration::from_secs(20))
        .await;
    assert_eq!(
        status_of(&untrusting, &provider.token(&key)).await,
        StatusCode::UNAUTHORIZED
    );

    // With it (auth.provider_ca_file), the keys are fetched over HTTPS and tokens verify.
    let test_db = atlas_postgres::test_db::TestDatabase::new().await;
    let issuer_url = provider.base.clone();
    let app = spawn_app_with(&test_db, None, move |settings| {
        settings.auth.issuer = issuer_url;
        settings.auth.discovery = true;
        settings.auth.jwks_file = None;
        settings.auth.provider_ca_file = Some(authority_file);
    })
    .await;
    app.wait_until_ready(Duration::from_secs(20)).await;
    assert_eq!(status_of(&app, &provider.token(&key)).await, StatusCode::OK);
}
