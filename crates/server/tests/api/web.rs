//! The web application through real HTTP: the page and every asset it names are served from
//! the binary under a policy that allows only them, and the demo sign-in list exists only on a
//! demo instance.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::spawn_ready_app_with;

#[tokio::test]
async fn the_page_and_its_assets_are_served_from_the_binary() {
    let app = spawn_ready_app_with(|_| {}).await;
    let page = app.get("/").await;
    assert_eq!(page.status(), StatusCode::OK);
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        policy.contains("script-src 'self'") && policy.contains("default-src 'none'"),
        "{policy}"
    );
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("atlas-tile-url"),
        "no base map unless configured"
    );
    // The page's assets, and the modules they import in turn, are all served.
    let mut named: Vec<String> = html
        .split('"')
        .filter(|part| part.starts_with("/assets/"))
        .map(str::to_owned)
        .collect();
    assert!(named.len() >= 4, "{named:?}");
    let mut served = std::collections::BTreeSet::new();
    while let Some(path) = named.pop() {
        if !served.insert(path.clone()) {
            continue;
        }
        let asset = app.get(&path).await;
        assert_eq!(asset.status(), StatusCode::OK, "{path}");
        let kind = asset.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(
            (path.ends_with(".js") && kind.starts_with("text/javascript"))
                || (path.ends_with(".css") && kind.starts_with("text/css")),
            "{path}: {kind}"
        );
        let text = asset.text().await.unwrap();
        assert!(!text.is_empty());
        named.extend(
            text.split('\'')
                .filter_map(|part| part.strip_prefix("./"))
                .filter(|module| module.ends_with(".js"))
                .map(|module| format!("/assets/{module}")),
        );
    }
    for module in [
        "map",
        "upload",
        "comparison",
        "partner",
        "audit",
        "releases",
        "core",
    ] {
        assert!(
            served.contains(&format!("/assets/{module}.js")),
            "{served:?}"
        );
    }
    let licence = app
        .get("/assets/leaflet-LICENSE.txt")
        .await
        .text()
        .await
        .unwrap();
    assert!(licence.contains("BSD 2-Clause"));
    assert_eq!(
        app.get("/assets/secrets.txt").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/v1/demo/users").await.status(),
        StatusCode::NOT_FOUND,
        "not a demo instance"
    );
}

#[tokio::test]
async fn a_demo_instance_lists_its_users_for_the_sign_in_page() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.json");
    std::fs::write(
        &file,
        r#"[{"id": "lancashire-analyst", "describe": "partnership analyst, Lancashire (E10000017)", "token": "x.y.z"}]"#,
    )
    .unwrap();
    let listed = file.clone();
    let app = spawn_ready_app_with(move |settings| {
        settings.auth.dev_signing = true;
        settings.auth.demo_users_file = Some(listed.clone());
    })
    .await;
    let response = app.get("/api/v1/demo/users").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["users"][0]["id"], "lancashire-analyst");
    assert_eq!(body["users"][0]["token"], "x.y.z");

    // The file alone, without development signing, is not enough.
    let app = spawn_ready_app_with(move |settings| {
        settings.auth.demo_users_file = Some(file.clone());
    })
    .await;
    assert_eq!(
        app.get("/api/v1/demo/users").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_map_offers_every_value_of_the_domain_vocabularies() {
    let app = spawn_ready_app_with(|_| {}).await;
    let script = app.get("/assets/map.js").await.text().await.unwrap();
    let values: Vec<String> = atlas_domain::AgencyKind::ALL
        .iter()
        .map(ToString::to_string)
        .chain(
            atlas_domain::RecordKind::ALL
                .iter()
                .map(ToString::to_string),
        )
        .chain(atlas_domain::Indicator::ALL.iter().map(ToString::to_string))
        .chain(atlas_domain::AgeBand::ALL.iter().map(ToString::to_string))
        .collect();
    for value in values {
        assert!(
            script.contains(&format!("'{value}'")),
            "map.js lacks `{value}`"
        );
    }
}

#[tokio::test]
async fn a_configured_base_map_and_identity_provider_are_named_in_the_page_and_allowed_by_its_policy()
 {
    let app = spawn_ready_app_with(|settings| {
        settings.web.tile_url = Some("https://tiles.example.org/osm/{z}/{x}/{y}.png".to_owned());
        settings.web.tile_attribution = "© OpenStreetMap contributors & \"friends\"".to_owned();
        settings.web.oidc = Some(atlas_app::settings::OidcSettings {
            authorization_endpoint: Some("https://idp.example.org/realms/atlas/auth".to_owned()),
            token_endpoint: Some("https://login.example.org/realms/atlas/token".to_owned()),
            client_id: "atlas-web".to_owned(),
            scope: "openid".to_owned(),
            end_session_endpoint: None,
        });
    })
    .await;
    let page = app.get("/").await;
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        policy.contains("img-src 'self' data: blob: https://tiles.example.org;"),
        "{policy}"
    );
    assert!(
        policy.contains("connect-src 'self' https://login.example.org;"),
        "the page may call the token endpoint: {policy}"
    );
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<meta name="atlas-oidc-client-id" content="atlas-web">"#));
    assert!(html.contains(
        r#"<meta name="atlas-tile-url" content="https://tiles.example.org/osm/{z}/{x}/{y}.png">"#
    ));
    assert!(html.contains("© OpenStreetMap contributors &amp; &quot;friends&quot;"));
}
