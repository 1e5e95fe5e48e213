//! Requests for summaries through real HTTP: Lancashire asks Blackpool, which shares its
//! releases with it, for 2024-Q1; Blackpool's analyst questions, accepts (a release is prepared)
//! and a second analyst approves; Lancashire then reads it. A request without an agreement is
//! refused; a declined request shows its reason; every step is audited.

use atlas_access::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::analysis::{BLACKPOOL, Planted, planted};
use crate::support::{TestApp, named_token, token};

const LANCASHIRE: &str = "E10000017";
const ROCHDALE: &str = "E08000005";

/// `crate::releases::send`, the answer read as JSON where it is.
pub(crate) async fn send(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let (status, text) = crate::releases::send(app, token, method, path, body).await;
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn asking(purpose: &str) -> Value {
    let needed_by = chrono::Utc::now().date_naive() + chrono::Days::new(30);
    json!({
        "periods": ["2024-Q1"],
        "breakdowns": ["agency_kind", "indicator"],
        "purpose": purpose,
        "needed_by": needed_by.to_string(),
    })
}

#[tokio::test]
#[expect(clippy::too_many_lines)] // One journey, both sides, in order.
async fn a_neighbour_asks_for_a_summary_and_reads_the_release_the_owner_approves() {
    let Planted { app, .. } = planted().await;
    let admin = token(Role::Admin, LANCASHIRE, None);
    let (status, _) = send(
        &app,
        &admin,
        Method::POST,
        "/api/v1/admin/agreements",
        Some(json!({"from": BLACKPOOL, "to": LANCASHIRE, "scopes": ["releases"], "valid_from": "2024-01-01"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let lancashire = named_token(
        "lena@lancashire",
        Role::PartnershipAnalyst,
        LANCASHIRE,
        None,
    );
    let blackpool = named_token("bea@blackpool", Role::PartnershipAnalyst, BLACKPOOL, None);
    let approver = named_token("bo@blackpool", Role::PartnershipAnalyst, BLACKPOOL, None);
    let asked = format!("/api/v1/partnerships/{BLACKPOOL}/summary-requests");

    // Outside any agreement, or to one's own partnership: refused with the reason.
    let rochdale = token(Role::PartnershipAnalyst, ROCHDALE, None);
    let (status, body) = send(
        &app,
        &rochdale,
        Method::POST,
        &asked,
        Some(asking("Regional picture")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.to_string().contains("no sharing agreement"), "{body}");
    let (status, _) = send(
        &app,
        &blackpool,
        Method::POST,
        &asked,
        Some(asking("Ourselves")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Checked: a quarter not closed, an unknown breakdown.
    let mut open = asking("Too soon");
    open["periods"] = json!(["2099-Q1"]);
    let (status, _) = send(&app, &lancashire, Method::POST, &asked, Some(open)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let mut unknown = asking("Postcodes");
    unknown["breakdowns"] = json!(["postcode"]);
    let (status, body) = send(&app, &lancashire, Method::POST, &asked, Some(unknown)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.to_string().contains("agency_kind"), "{body}");

    // Lancashire asks Blackpool for 2024-Q1 by agency kind.
    let (status, request) = send(
        &app,
        &lancashire,
        Method::POST,
        &asked,
        Some(asking("Pan-Lancashire CSE sub-group")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{request}");
    assert_eq!(request["state"], "open");
    assert_eq!(request["requester"], LANCASHIRE);
    let id = request["id"].as_str().unwrap().to_owned();
    let on =
        |action: &str| format!("/api/v1/partnerships/{BLACKPOOL}/summary-requests/{id}/{action}");

    // Blackpool's queue shows it; Blackpool asks a question, Lancashire replies.
    let (status, lists) = send(&app, &blackpool, Method::GET, &asked, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(lists["incoming"][0]["id"], id.as_str());
    assert_eq!(lists["incoming"][0]["overdue"], false);
    let (status, questioned) = send(
        &app,
        &blackpool,
        Method::POST,
        &on("question"),
        Some(json!({"text": "Records or children?"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{questioned}");
    assert_eq!(questioned["state"], "question");
    let (status, replied) = send(
        &app,
        &lancashire,
        Method::POST,
        &on("reply"),
        Some(json!({"text": "Records, by agency kind."})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{replied}");
    assert_eq!(replied["state"], "open");
    assert_eq!(replied["messages"].as_array().unwrap().len(), 2);
    // Only the owner answers: Lancashire cannot accept its own request to Blackpool.
    let (status, _) = send(&app, &lancashire, Method::POST, &on("accept"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Blackpool accepts: the quarter's release is prepared and awaits a second analyst.
    let (status, accepted) = send(&app, &blackpool, Method::POST, &on("accept"), None).await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    assert_eq!(accepted["state"], "accepted");
    assert_eq!(accepted["releases"][0]["status"], "awaiting_approval");
    let release = accepted["releases"][0]["id"].as_str().unwrap().to_owned();
    let read = format!("/api/v1/partnerships/{BLACKPOOL}/releases/{release}");
    let mine = format!("/api/v1/partnerships/{LANCASHIRE}/summary-requests");
    let (_, lists) = send(&app, &lancashire, Method::GET, &mine, None).await;
    assert_eq!(lists["outgoing"][0]["state"], "accepted");
    assert_eq!(
        lists["outgoing"][0]["releases"],
        json!([]),
        "the requester sees no unapproved release"
    );
    let (status, _) = send(&app, &lancashire, Method::GET, &read, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A second Blackpool analyst approves; Lancashire's analyst reads the release.
    let (status, _) = send(
        &app,
        &approver,
        Method::POST,
        &format!("{read}/approve"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, lists) = send(&app, &lancashire, Method::GET, &mine, None).await;
    assert_eq!(lists["outgoing"][0]["state"], "answered");
    assert_eq!(lists["outgoing"][0]["releases"][0]["status"], "published");
    let (status, published) = send(&app, &lancashire, Method::GET, &read, None).await;
    assert_eq!(status, StatusCode::OK, "{published}");
    assert_eq!(published["period"], "2024-Q1");

    // A second request, declined with a reason the requester sees; then it cannot change.
    let (_, second) = send(
        &app,
        &lancashire,
        Method::POST,
        &asked,
        Some(asking("Monthly figures")),
    )
    .await;
    let second_id = second["id"].as_str().unwrap().to_owned();
    let on_second = |action: &str| {
        format!("/api/v1/partnerships/{BLACKPOOL}/summary-requests/{second_id}/{action}")
    };
    let (status, declined) = send(
        &app,
        &blackpool,
        Method::POST,
        &on_second("decline"),
        Some(json!({"text": "Already answered by the 2024-Q1 release."})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{declined}");
    let (_, lists) = send(&app, &lancashire, Method::GET, &mine, None).await;
    let shown = lists["outgoing"]
        .as_array()
        .unwrap()
        .iter()
        .find(|request| request["id"] == second_id.as_str())
        .unwrap();
    assert_eq!(shown["state"], "declined");
    assert_eq!(
        shown["decline_reason"],
        "Already answered by the 2024-Q1 release."
    );
    let (status, _) = send(&app, &blackpool, Method::POST, &on_second("accept"), None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = send(
        &app,
        &blackpool,
        Method::POST,
        &on_second("decline"),
        Some(json!({"text": " "})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Every step is in the audit trail, under the partnership asked.
    for (action, at_least) in [
        ("summary_request.create", 2),
        ("summary_request.answer", 3),
        ("summary_request.read", 3),
        ("release.prepare", 1),
        ("release.approve", 1),
    ] {
        let count = app
            .count(&format!(
                "SELECT count(*) FROM audit_log WHERE action = '{action}' AND outcome = 'allowed'"
            ))
            .await;
        assert!(count >= at_least, "{action}: {count}");
    }
    assert!(
        app.count(&format!(
            "SELECT count(*) FROM audit_log WHERE action = 'summary_request.create' AND outcome = 'denied' AND partnership_code = '{BLACKPOOL}'"
        ))
        .await
            >= 2,
        "the refused requests are audited too"
    );
}
