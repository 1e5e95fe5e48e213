//! Releases through real HTTP: prepared by one analyst, approved by another, read by partner
//! viewers of agreed partnerships only once approved, never holding a value from 1 to the
//! threshold or a cell finer than the release's resolution; withdrawn and audited.

use atlas_access::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::analysis::{BLACKPOOL, Planted, planted};
use crate::support::{TestApp, named_token, token};

const LANCASHIRE: &str = "E10000017";
const ROCHDALE: &str = "E08000005";

/// Sends `method path` with `token` (and a JSON body) and returns the status and the text.
pub(crate) async fn send(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, String) {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

/// Every published number of a release's table: cells and totals.
fn published_numbers(content: &Value) -> Vec<Value> {
    let mut numbers = Vec::new();
    for row in content["rows"].as_array().unwrap() {
        numbers.extend(row["values"].as_array().unwrap().iter().cloned());
        numbers.push(row["total"].clone());
    }
    numbers.extend(content["column_totals"].as_array().unwrap().iter().cloned());
    numbers.push(content["grand_total"].clone());
    numbers.push(content["summary"]["children"].clone());
    for table in [
        "records_by_indicator",
        "children_by_age_band",
        "records_by_record_kind",
    ] {
        let figures = content["summary"][table].as_object().unwrap();
        assert!(!figures.is_empty(), "{table} is empty in {content}");
        numbers.extend(figures.values().cloned());
    }
    numbers
}

/// No published value lies from 1 to the threshold; everything else is a number or `c`.
fn assert_disclosure_controlled(content: &Value) {
    let threshold = content["threshold"].as_u64().unwrap();
    for value in published_numbers(content) {
        match value {
            Value::String(text) => assert_eq!(text, "c"),
            Value::Number(number) => {
                let number = number.as_u64().unwrap();
                assert!(
                    number == 0 || number > threshold,
                    "{number} published in {content}"
                );
            }
            other => panic!("unexpected value {other}"),
        }
    }
}

#[tokio::test]
async fn a_release_is_seen_by_agreed_partners_only_once_a_second_analyst_approves_it() {
    use reqwest::Method;
    let Planted { app, .. } = planted().await;
    let preparer = named_token("ana@blackpool", Role::PartnershipAnalyst, BLACKPOOL, None);
    let approver = named_token("bo@blackpool", Role::PartnershipAnalyst, BLACKPOOL, None);
    let viewer = token(Role::PartnerViewer, LANCASHIRE, None);
    let stranger = token(Role::PartnerViewer, ROCHDALE, None);
    let admin = token(Role::Admin, BLACKPOOL, None);
    let (status, body) = send(
        &app,
        &admin,
        Method::POST,
        "/api/v1/admin/agreements",
        Some(json!({"from": BLACKPOOL, "to": LANCASHIRE, "scopes": ["releases"], "valid_from": "2024-01-01"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let releases = format!("/api/v1/partnerships/{BLACKPOOL}/releases");

    // Bad questions get clear answers.
    for (body, expected, says) in [
        (
            json!({"period": "2024-13"}),
            StatusCode::BAD_REQUEST,
            "calendar quarter",
        ),
        (
            json!({"period": "2024-Q1", "resolution": 8}),
            StatusCode::BAD_REQUEST,
            "finer",
        ),
        (
            json!({"period": "2024-Q1", "colour": "red"}),
            StatusCode::BAD_REQUEST,
            "colour",
        ),
    ] {
        let (status, text) = send(&app, &preparer, Method::POST, &releases, Some(body)).await;
        assert_eq!(status, expected, "{text}");
        assert!(text.contains(says), "{text}");
    }
    let (status, text) = send(
        &app,
        &viewer,
        Method::POST,
        &releases,
        Some(json!({"period": "2024-Q1"})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "partners cannot prepare: {text}"
    );

    // Prepared: the table is protected, at resolution 6, and awaits approval.
    let (status, text) = send(
        &app,
        &preparer,
        Method::POST,
        &releases,
        Some(json!({"period": "2024-Q1", "resolution": 6})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let prepared: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(prepared["status"], "awaiting_approval");
    assert_eq!(prepared["version"], 1);
    let content = &prepared["content"];
    assert_disclosure_controlled(content);
    assert!(
        content["perturbation"]
            .as_str()
            .unwrap()
            .contains("cell-key"),
        "counts above the threshold pass the gate's perturbation: {prepared}"
    );
    assert_eq!(
        prepared["rounding"], 1,
        "perturbation takes rounding's place"
    );
    for row in content["rows"].as_array().unwrap() {
        let cell: h3o::CellIndex = row["cell"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            cell.resolution(),
            h3o::Resolution::Six,
            "nothing finer than the release"
        );
    }
    assert!(
        content["summary"]["children"].as_u64().unwrap() >= 70,
        "the cluster's children: {}",
        content["summary"]
    );
    assert!(
        content["summary"]["rate_per_10000"].is_null(),
        "no population imported"
    );
    let id = prepared["id"].as_str().unwrap().to_owned();
    let one = format!("{releases}/{id}");

    // Unapproved: invisible to partners.
    let (status, text) = send(&app, &viewer, Method::GET, &releases, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["releases"],
        json!([])
    );
    let (status, _) = send(&app, &viewer, Method::GET, &one, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Two people: the preparer cannot approve.
    let (status, text) = send(
        &app,
        &preparer,
        Method::POST,
        &format!("{one}/approve"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{text}");
    assert!(text.contains("second partnership analyst"), "{text}");
    let (status, text) = send(
        &app,
        &approver,
        Method::POST,
        &format!("{one}/approve"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let approved: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(approved["status"], "published");
    assert_eq!(approved["approved_by"], "bo@blackpool");
    assert_eq!(
        approved["content"], prepared["content"],
        "approval changes nothing published"
    );

    // Published: the agreed partner reads it, in JSON and CSV; others get 403.
    let (status, text) = send(&app, &viewer, Method::GET, &releases, None).await;
    assert_eq!(status, StatusCode::OK);
    let listed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(listed["releases"].as_array().unwrap().len(), 1);
    assert!(
        listed["releases"][0].get("content").is_none(),
        "lists hold no tables"
    );
    let (status, text) = send(&app, &viewer, Method::GET, &one, None).await;
    assert_eq!(status, StatusCode::OK);
    let read: Value = serde_json::from_str(&text).unwrap();
    assert_disclosure_controlled(&read["content"]);
    let (status, csv) = send(
        &app,
        &viewer,
        Method::GET,
        &format!("{one}?format=csv"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header = reader.headers().unwrap().clone();
    assert_eq!(&header[0], "hex_id", "{csv}");
    assert_eq!(&header[1], "near", "{csv}");
    assert_eq!(&header[2], "police", "{csv}");
    assert_eq!(&header[header.len() - 1], "wkt", "{csv}");
    for record in reader.records() {
        let record = record.unwrap();
        assert!(
            record[record.len() - 1].starts_with("POLYGON (("),
            "{record:?}"
        );
        assert!(
            !record[1].is_empty(),
            "every row says where it is: {record:?}"
        );
        for value in record.iter().skip(2).take(record.len() - 3) {
            assert!(
                value == "c" || value.parse::<u64>().is_ok_and(|n| n == 0 || n > 5),
                "{record:?}"
            );
        }
    }
    let (status, _) = send(&app, &stranger, Method::GET, &releases, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no agreement, no releases");
    let (status, _) = send(&app, &stranger, Method::GET, &one, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The partner page starts from who shares with the caller's partnership.
    let (status, text) = send(&app, &viewer, Method::GET, "/api/v1/sharing", None).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"partnership": LANCASHIRE, "sharing": [{"code": BLACKPOOL, "name": "Blackpool", "scopes": ["releases"]}]})
    );
    let (_, text) = send(&app, &stranger, Method::GET, "/api/v1/sharing", None).await;
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["sharing"],
        json!([])
    );
    for role in [Role::AgencyAnalyst, Role::Admin, Role::Auditor] {
        let (status, _) = send(
            &app,
            &token(role, LANCASHIRE, None),
            Method::GET,
            "/api/v1/sharing",
            None,
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role} may not list sharing");
    }

    // One release in force per quarter, and one resolution for them all.
    let (status, text) = send(
        &app,
        &preparer,
        Method::POST,
        &releases,
        Some(json!({"period": "2024-Q1"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{text}");
    let (status, text) = send(
        &app,
        &preparer,
        Method::POST,
        &releases,
        Some(json!({"period": "2024-Q2", "resolution": 7})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{text}");
    assert!(text.contains("resolution 6"), "{text}");

    // Withdrawn: partners no longer see it. They may already hold it, so the quarter is never
    // released again (two versions could be subtracted); a quarter withdrawn before approval
    // can be.
    let (status, text) = send(
        &app,
        &preparer,
        Method::POST,
        &format!("{one}/withdraw"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let (_, text) = send(&app, &viewer, Method::GET, &releases, None).await;
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["releases"],
        json!([])
    );
    let (status, _) = send(&app, &viewer, Method::GET, &one, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, text) = send(
        &app,
        &preparer,
        Method::POST,
        &releases,
        Some(json!({"period": "2024-Q1"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{text}");
    assert!(text.contains("subtract"), "{text}");
    let (status, text) = send(
        &app,
        &preparer,
        Method::POST,
        &releases,
        Some(json!({"period": "2024-Q2"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let second: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(second["version"], 2);
    let second_path = format!("{releases}/{}", second["id"].as_str().unwrap());
    let (status, _) = send(
        &app,
        &approver,
        Method::POST,
        &format!("{second_path}/withdraw"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, text) = send(
        &app,
        &preparer,
        Method::POST,
        &releases,
        Some(json!({"period": "2024-Q2"})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "never published, so released afresh: {text}"
    );
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["version"], 3);

    // Every step is in the audit trail, with who did it.
    for (action, subject) in [
        ("release.prepare", "ana@blackpool"),
        ("release.approve", "bo@blackpool"),
    ] {
        let entries = app
            .count(&format!(
                "SELECT count(*) FROM audit_log WHERE action = '{action}' AND subject = '{subject}' AND outcome = 'allowed'"
            ))
            .await;
        assert!(entries >= 1, "{action} by {subject}");
    }
    let content_changes = app
        .count(&format!(
            "SELECT count(*) FROM releases WHERE id = '{id}' AND content = '{}'::jsonb",
            prepared["content"].to_string().replace('\'', "''")
        ))
        .await;
    assert_eq!(content_changes, 1, "the stored content is what was shown");
}
