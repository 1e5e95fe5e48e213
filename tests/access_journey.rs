//! An administrator sets up development tokens and a sharing agreement from the command line,
//! analysts use the API, and an auditor verifies the trail, which catches an entry altered by a
//! superuser who bypassed the append-only trigger.

use std::time::Duration;

use atlas_e2e::{Server, TestDatabase, atlas, import_lancashire_cluster, run_ok};

#[tokio::test]
async fn tokens_agreements_and_a_verified_audit_trail_from_the_command_line() {
    let test_db = TestDatabase::new().await;
    let url = test_db.url();
    let dir = tempfile::tempdir().unwrap();
    import_lancashire_cluster(url, dir.path());

    let server = Server::start(url, dir.path());
    server.wait_until_ready(Duration::from_secs(30)).await;
    let keys = dir.path().join("keys");
    let again = atlas(url)
        .args(["token", "keygen", "--dir", keys.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        again.status.code(),
        Some(1),
        "keygen never overwrites a key"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));

    let agreement = run_ok(
        url,
        &[
            "agreement",
            "add",
            "--from",
            "E10000017",
            "--to",
            "E06000009",
            "--scope",
            "releases",
        ],
    );
    let agreement = agreement.trim();
    assert_eq!(agreement.len(), 36, "prints the agreement id: {agreement}");
    let listed = run_ok(url, &["agreement", "list"]);
    assert!(
        listed.contains(agreement) && listed.contains("active"),
        "{listed}"
    );

    run_ok(
        url,
        &[
            "user",
            "register",
            "--sub",
            "ana@lancashire",
            "--partnership",
            "E10000017",
            "--role",
            "partnership_analyst",
        ],
    );
    // An agency that serves only Blackpool cannot have staff registered in Lancashire.
    let blackpool_police = run_ok(
        url,
        &[
            "agency",
            "add",
            "--partnership",
            "E06000009",
            "--kind",
            "police",
            "--name",
            "Blackpool Police",
        ],
    );
    let refused = atlas(url)
        .args([
            "user",
            "register",
            "--sub",
            "una@blackpool-police",
            "--partnership",
            "E10000017",
            "--agency",
            blackpool_police.trim(),
            "--role",
            "agency_analyst",
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("does not serve partnership E10000017"),
        "{message}"
    );
    let users = run_ok(url, &["user", "list"]);
    assert!(
        users.contains("ana@lancashire") && users.contains("active"),
        "{users}"
    );
    let analyst = server.token(&[
        "--sub",
        "ana@lancashire",
        "--role",
        "partnership_analyst",
        "--partnership",
        "E10000017",
        "--ttl",
        "10m",
    ]);
    let client = reqwest::Client::new();
    for path in ["/api/v1/partnerships", "/api/v1/admin/agreements"] {
        client
            .get(server.url(path))
            .bearer_auth(&analyst)
            .send()
            .await
            .unwrap();
    }
    let admin = server.token(&[
        "--sub",
        "root@lancashire",
        "--role",
        "admin",
        "--partnership",
        "E10000017",
    ]);
    let agreements: serde_json::Value = client
        .get(server.url("/api/v1/admin/agreements"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(agreements["agreements"][0]["id"], agreement);
    run_ok(url, &["agreement", "revoke", agreement]);
    assert!(run_ok(url, &["agreement", "list"]).contains("revoked"));

    let verified = run_ok(url, &["audit", "verify"]);
    // Agreement added and revoked, an agency added and a user registered (CLI; the refused
    // registration left none), two analyst requests (one denied), one admin request.
    let mut lines = verified.lines();
    assert_eq!(
        lines.next(),
        Some(
            "audit trail intact: 7 entries in 2 chains verified from the start of every chain, \
             every hash verifies"
        )
    );

    let admin_client = atlas_store::connect_admin(url, Duration::from_secs(5))
        .await
        .unwrap();
    let denied: i64 = admin_client
        .query_one(
            "SELECT id FROM audit_log WHERE outcome = 'denied' AND subject = 'ana@lancashire'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    admin_client
        .batch_execute(&format!(
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only;
             UPDATE audit_log SET outcome = 'allowed' WHERE id = {denied};
             ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only;"
        ))
        .await
        .unwrap();
    let check = atlas(url).args(["audit", "verify"]).output().unwrap();
    assert_eq!(
        check.status.code(),
        Some(1),
        "a broken chain fails the command"
    );
    let message = String::from_utf8_lossy(&check.stderr);
    assert!(
        message.contains(&format!("audit trail broken at entry {denied}"))
            && message.contains("altered"),
        "{message}"
    );
}

#[tokio::test]
async fn development_signing_is_refused_outside_development() {
    let test_db = TestDatabase::new().await;
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    run_ok(
        test_db.url(),
        &["token", "keygen", "--dir", keys.to_str().unwrap()],
    );
    let refused = atlas(test_db.url())
        .env("ATLAS_ENV", "production")
        .args([
            "token",
            "issue",
            "--key",
            keys.join("dev-signing.pem").to_str().unwrap(),
            "--sub",
            "someone",
            "--role",
            "admin",
            "--partnership",
            "E10000017",
        ])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("development signing is off"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let unknown_role = atlas(test_db.url())
        .args([
            "token",
            "issue",
            "--key",
            keys.join("dev-signing.pem").to_str().unwrap(),
            "--sub",
            "someone",
            "--role",
            "superuser",
            "--partnership",
            "E10000017",
        ])
        .output()
        .unwrap();
    assert_eq!(unknown_role.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown_role.stderr).contains("unknown role `superuser`"));
}
