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
    let named: Vec<&str> = html
        .split('"')
        .filter(|part| part.starts_with("/assets/"))
        .collect();
    assert!(named.len() >= 4, "{named:?}");
    for path in named {
        let asset = app.get(path).await;
        assert_eq!(asset.status(), StatusCode::OK, "{path}");
        let kind = asset.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(
            (path.ends_with(".js") && kind.starts_with("text/javascript"))
                || (path.ends_with(".css") && kind.starts_with("text/css")),
            "{path}: {kind}"
        );
        assert!(!asset.bytes().await.unwrap().is_empty());
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
