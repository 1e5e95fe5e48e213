//! Signing in to the web application through a council's identity provider, a real one:
//! `oidc-provider` (OpenID Certified) configured as a council configures Entra ID for Atlas
//! (tests/support/oidc/provider.mjs). Atlas is pointed at it with its issuer and discovery,
//! reads its Entra-like claims through `[auth.claims]`, and the page runs the authorization
//! code flow with PKCE, renews its token with the rotating refresh token before it expires,
//! keeps working across a key rotation (the old key withdrawn, the new one picked up without a
//! restart), comes back to the same place after signing in again, and signing out ends the
//! provider's session too.

use std::time::Duration;

use atlas_e2e::browser::{Browser, CouncilProvider};
use atlas_e2e::{Server, TestDatabase, free_port, import_lancashire_cluster};
use serde_json::{Value, json};

/// How long the provider's access tokens live: the page renews them a third of that before.
const ACCESS_TOKEN_SECS: u64 = 24;

/// The `kid` of the token the page holds.
async fn token_kid(browser: &Browser) -> Value {
    browser
        .run(
            "const token = sessionStorage.getItem('atlas-token'); return token ? JSON.parse(atob(token.split('.')[0].replace(/-/g, '+').replace(/_/g, '/'))).kid : null;",
            vec![],
        )
        .await
}

/// Signs in at the provider's own pages (its development login and consent forms).
async fn sign_in_at_the_provider(browser: &Browser, login: &str) {
    browser
        .wait_until(
            "the provider's sign-in form",
            "return document.querySelector(\"input[name='login']\") !== null;",
        )
        .await;
    browser.type_into("input[name='login']", login).await;
    browser
        .type_into("input[name='password']", "any password")
        .await;
    browser.click("button[type='submit']").await;
    browser
        .wait_until(
            "the provider's consent form",
            "return document.querySelector(\"input[name='prompt'][value='consent']\") !== null;",
        )
        .await;
    browser.click("button[type='submit']").await;
}

#[tokio::test]
async fn an_analyst_signs_in_through_a_councils_identity_provider() {
    let test_db = TestDatabase::new().await;
    let url = test_db.url();
    let dir = tempfile::tempdir().expect("a temporary directory");
    import_lancashire_cluster(url, dir.path());
    let port = free_port();
    let origin = format!("http://127.0.0.1:{port}");
    let provider = CouncilProvider::start(&origin, ACCESS_TOKEN_SECS).await;
    // Three settings point Atlas at the provider; the claims are where Entra puts them.
    let config = dir.path().join("council.toml");
    std::fs::write(
        &config,
        format!(
            r#"[auth]
issuer = "{issuer}"
discovery = true
min_refresh_secs = 1
[auth.claims]
partnership = "extn.partnership"
[auth.claims.role_values]
"Atlas.PartnershipAnalyst" = "partnership_analyst"
[web.oidc]
client_id = "atlas-web"
scope = "openid atlas"
"#,
            issuer = provider.issuer
        ),
    )
    .expect("the configuration is written");
    let server = Server::start_configured(url, port, dir.path(), &config, &[]);
    server.wait_until_ready(Duration::from_secs(30)).await;
    let browser = Browser::start().await;

    // A return that this tab did not start (a forged state) signs nobody in.
    browser
        .client
        .goto(&server.url("/?code=code-1&state=forged"))
        .await
        .expect("the page opens");
    browser
        .wait_until(
            "the refusal",
            "return document.getElementById('sign-in-error').textContent.includes('not started from this tab');",
        )
        .await;
    assert_eq!(
        browser
            .run(
                "return [sessionStorage.getItem('atlas-token'), window.location.search];",
                vec![]
            )
            .await,
        json!([null, ""]),
        "no token is kept and the code leaves the address"
    );

    // The real flow: to the provider, signing in there, and back to the map as its user, whose
    // partnership and roles Atlas read from the Entra-like claims.
    browser.click("#oidc-sign-in").await;
    sign_in_at_the_provider(&browser, "alice").await;
    browser
        .wait_until(
            "the signed-in map",
            // Drawn: cells, or (no agency has uploaded here) the words "No data".
            "return document.getElementById('who').textContent.includes('alice') && /cells? drawn|^No data/.test(document.getElementById('status').textContent);",
        )
        .await;
    let who = browser
        .run("return document.getElementById('who').textContent;", vec![])
        .await;
    assert!(
        who.as_str()
            .is_some_and(|who| who.contains("partnership analyst") && who.contains("E10000017")),
        "{who}"
    );
    assert_eq!(
        browser.run("return window.location.search;", vec![]).await,
        json!(""),
        "the code does not stay in the address"
    );
    let first_kid = provider.state().await["kid"].clone();
    assert_eq!(token_kid(&browser).await, first_kid);
    browser.screenshot("sign-in-oidc").await;

    // Before the token expires the page renews it with the refresh token: the analyst is never
    // thrown out, and no warning is shown.
    let first_token = browser
        .run("return sessionStorage.getItem('atlas-token');", vec![])
        .await;
    browser
        .wait_until(
            "the token renewed",
            &format!(
                "return sessionStorage.getItem('atlas-token') !== {first_token} && sessionStorage.getItem('atlas-token') !== null;"
            ),
        )
        .await;
    assert_eq!(
        browser
            .run(
                "return [document.getElementById('session-ending').hidden, document.getElementById('sign-in').hidden];",
                vec![]
            )
            .await,
        json!([true, true])
    );

    // The provider rotates its key, withdrawing the old one: the next renewal brings a token
    // signed with the new key, which Atlas fetches without a restart, and the map still draws.
    let new_kid = provider.rotate_key().await;
    browser
        .wait_until(
            "a token signed with the new key",
            &format!(
                "const token = sessionStorage.getItem('atlas-token'); return token !== null && JSON.parse(atob(token.split('.')[0].replace(/-/g, '+').replace(/_/g, '/'))).kid === '{new_kid}';"
            ),
        )
        .await;
    assert_eq!(
        browser
            .run(
                "return fetch('/api/v1/session', { headers: { Authorization: `Bearer ${sessionStorage.getItem('atlas-token')}` } }).then((response) => response.status);",
                vec![]
            )
            .await,
        json!(200),
        "Atlas verifies the new key's token without a restart"
    );

    // Signing in again (as the warning before a session ends offers) comes back to the same
    // place: the map, with its layer and period as they were.
    browser
        .run(
            "document.getElementById('layer').value = 'records'; document.getElementById('from').value = '2025-01-01'; document.getElementById('stay-signed-in').click(); return true;",
            vec![],
        )
        .await;
    browser
        .wait_until(
            "back on the map after signing in again",
            "return window.location.hash === '#map' && document.getElementById('who').textContent.includes('alice') && document.getElementById('layer').value === 'records' && document.getElementById('from').value === '2025-01-01' && /cells? drawn|^No data/.test(document.getElementById('status').textContent);",
        )
        .await;

    // Signing out ends the provider's session too (RP-initiated logout, confirmed at the
    // provider), and comes back to the sign-in page.
    browser.click("#sign-out").await;
    browser
        .wait_until(
            "the provider's sign-out confirmation",
            "return document.querySelector(\"button[name='logout']\") !== null;",
        )
        .await;
    browser.click("button[name='logout']").await;
    browser
        .wait_until(
            "the sign-in page after the provider's logout",
            "return !document.getElementById('sign-in').hidden && !document.getElementById('organisation').hidden && sessionStorage.getItem('atlas-token') === null;",
        )
        .await;
    assert_eq!(
        provider.state().await["logouts"],
        1,
        "the provider's session was ended"
    );

    browser.close().await;
}

/// A pasted token cannot be renewed: the page warns before it ends, signs out when it ends
/// keeping the place, and a new token for the same person comes back to the same page with the
/// same period.
#[tokio::test]
async fn a_pasted_token_warns_before_it_ends_and_the_next_comes_back_to_the_same_place() {
    let test_db = TestDatabase::new().await;
    let url = test_db.url();
    let dir = tempfile::tempdir().expect("a temporary directory");
    import_lancashire_cluster(url, dir.path());
    let server = Server::start(url, dir.path());
    server.wait_until_ready(Duration::from_secs(30)).await;
    let browser = Browser::start().await;
    browser
        .client
        .goto(&server.url("/"))
        .await
        .expect("the page opens");

    let pasted = |ttl: &str| {
        server.token(&[
            "--sub",
            "pasted:bob",
            "--role",
            "partnership_analyst",
            "--partnership",
            "E10000017",
            "--ttl",
            ttl,
        ])
    };
    browser.type_into("#token", &pasted("15s")).await;
    browser.click("#token-form button[type='submit']").await;
    browser
        .wait_until(
            "the map for the pasted token",
            "return document.getElementById('who').textContent.includes('pasted:bob') && /cells? drawn|^No data/.test(document.getElementById('status').textContent);",
        )
        .await;
    browser
        .run(
            "document.getElementById('from').value = '2025-03-01'; document.getElementById('from').dispatchEvent(new Event('change')); return true;",
            vec![],
        )
        .await;
    browser
        .wait_until(
            "the warning before the session ends",
            "return !document.getElementById('session-ending').hidden && document.getElementById('session-ending-text').textContent.startsWith('Your session ends at');",
        )
        .await;
    browser
        .wait_until(
            "the sign-in page when the session ended",
            "return !document.getElementById('sign-in').hidden && document.getElementById('sign-in-error').textContent.includes('Your session ended');",
        )
        .await;
    browser.type_into("#token", &pasted("1h")).await;
    browser.click("#token-form button[type='submit']").await;
    browser
        .wait_until(
            "back on the map with the same period",
            "return document.getElementById('who').textContent.includes('pasted:bob') && document.getElementById('from').value === '2025-03-01' && /cells? drawn|^No data/.test(document.getElementById('status').textContent);",
        )
        .await;
    browser.close().await;
}
