//! Signing in to the web application through the organisation's identity provider: the page
//! runs the OpenID Connect authorization code flow with PKCE against the provider named in
//! `[web.oidc]`, the server accepts the access token it gets as it accepts any token, and
//! signing out ends the provider's session too.

use std::time::Duration;

use atlas_e2e::browser::{Browser, IdentityProvider};
use atlas_e2e::{Server, TestDatabase, free_port, import_lancashire_cluster};

#[tokio::test]
async fn an_analyst_signs_in_through_the_identity_provider() {
    let test_db = TestDatabase::new().await;
    let url = test_db.url();
    let dir = tempfile::tempdir().expect("a temporary directory");
    import_lancashire_cluster(url, dir.path());
    // The provider's access token: signed with a key the server trusts, as a real provider's
    // would be through its published key set.
    let keys_server = Server::start(url, dir.path());
    let token = keys_server.token(&[
        "--sub",
        "idp:alice",
        "--role",
        "partnership_analyst",
        "--partnership",
        "E10000017",
    ]);
    drop(keys_server);
    let provider = IdentityProvider::start(token).await;
    let port = free_port();
    let (authorize, token_endpoint, logout) = (
        format!("{}/authorize", provider.base),
        format!("{}/token", provider.base),
        format!("{}/logout", provider.base),
    );
    let server = Server::start_with(
        url,
        port,
        dir.path(),
        &[
            ("ATLAS__WEB__OIDC__AUTHORIZATION_ENDPOINT", &authorize),
            ("ATLAS__WEB__OIDC__TOKEN_ENDPOINT", &token_endpoint),
            ("ATLAS__WEB__OIDC__CLIENT_ID", "atlas-web"),
            ("ATLAS__WEB__OIDC__SCOPE", "openid"),
            ("ATLAS__WEB__OIDC__END_SESSION_ENDPOINT", &logout),
        ],
    );
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
        serde_json::json!([null, ""]),
        "no token is kept and the code leaves the address"
    );

    // The real flow: to the provider and back, then the map as the provider's user.
    browser.click("#oidc-sign-in").await;
    browser
        .wait_until(
            "the signed-in map",
            // Drawn: cells, or (no agency has uploaded here) the words "No data".
            "return document.getElementById('who').textContent.includes('idp:alice') && /cells? drawn|^No data/.test(document.getElementById('status').textContent);",
        )
        .await;
    assert_eq!(
        browser.run("return window.location.search;", vec![]).await,
        serde_json::json!(""),
        "the code does not stay in the address"
    );
    browser.screenshot("sign-in-oidc").await;

    // Signing out ends the provider's session too, and comes back to the sign-in page.
    browser.click("#sign-out").await;
    browser
        .wait_until(
            "the sign-in page after the provider's logout",
            "return !document.getElementById('sign-in').hidden && !document.getElementById('organisation').hidden && sessionStorage.getItem('atlas-token') === null;",
        )
        .await;
    assert_eq!(provider.logouts(), 1, "the provider's session was ended");
    browser.close().await;
}
