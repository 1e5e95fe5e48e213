//! Regional requests through real HTTP: Blackburn with Darwen asks the regional group of
//! Blackpool, Lancashire and Rochdale for 2024-Q1. Refused whole while one member does not share
//! its releases; then each member accepts in its own queue and a second analyst approves; the
//! summary is assembled only once all three have answered, from their published figures alone;
//! both sides' audit trails show every step.

use atlas_access::Role;
use atlas_domain::{AgencyKind, GssCode};
use diesel_async::{AsyncConnection as _, AsyncPgConnection};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::analysis::{BLACKPOOL, Planted, planted, upload_csv};
use crate::requests::send;
use crate::support::{TestApp, named_token, token};

const LANCASHIRE: &str = "E10000017";
const ROCHDALE: &str = "E08000005";
const BLACKBURN: &str = "E06000008";
const GROUP: &str = "Lancashire cluster";

/// Uploads 2024-Q1 records of `children` children spread over `code`'s cells by an agency of
/// `kind` serving it.
async fn records_of(app: &TestApp, code: &str, kind: AgencyKind, children: usize) {
    let agency = app
        .register_agency_of_kind(&format!("{code} {kind:?}"), kind, &[code])
        .await;
    let cells: Vec<_> = app.whole_cells(code).await.into_iter().take(40).collect();
    let mut rows = String::from("subject,record_kind,occurred_on,h3,indicators,age\n");
    for child in 0..children {
        rows.push_str(&format!(
            "{:064x},incident,2024-02-{:02},{},missing,{}\n",
            900_000 + child + code.len() * 1_000 + usize::from(code.as_bytes()[7]) * 10_000,
            1 + child % 28,
            cells[child % cells.len()],
            11 + child % 7,
        ));
    }
    upload_csv(app, agency, rows).await;
}

/// Agreements: each of `from` shares its releases with Blackburn with Darwen.
async fn share_releases(app: &TestApp, from: &[&str]) {
    let admin = token(Role::Admin, LANCASHIRE, None);
    for code in from {
        let (status, body) = send(
            app,
            &admin,
            Method::POST,
            "/api/v1/admin/agreements",
            Some(json!({"from": code, "to": BLACKBURN, "scopes": ["releases"], "valid_from": "2024-01-01"})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
}

/// The kinds of what is waiting for the caller of `token` in `code`.
async fn waiting(app: &TestApp, token: &str, code: &str) -> Vec<String> {
    let (status, list) = send(
        app,
        token,
        Method::GET,
        &format!("/api/v1/partnerships/{code}/waiting"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["kind"].as_str().unwrap().to_owned())
        .collect()
}

/// The published numbers of a regional summary's member values.
fn member_values(summary: &Value) -> Vec<Value> {
    summary["summary"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|period| period["tables"].as_array().unwrap().iter())
        .flat_map(|table| table["rows"].as_array().unwrap().iter())
        .flat_map(|row| row["values"].as_array().unwrap().iter().cloned())
        .collect()
}

#[tokio::test]
#[expect(clippy::too_many_lines)] // One journey, every side, in order.
async fn a_regional_request_is_assembled_from_every_members_published_release() {
    let Planted { app, .. } = planted().await;
    app.import_areas(&[BLACKBURN]).await;
    records_of(&app, LANCASHIRE, AgencyKind::Police, 40).await;
    records_of(&app, ROCHDALE, AgencyKind::Education, 30).await;
    let members: Vec<(String, GssCode)> = [BLACKPOOL, LANCASHIRE, ROCHDALE]
        .into_iter()
        .map(|code| (GROUP.to_owned(), GssCode::parse(code).unwrap()))
        .collect();
    let mut conn = AsyncPgConnection::establish(&app.database_url())
        .await
        .unwrap();
    assert_eq!(
        atlas_store::partnerships::replace_regional_groups(&mut conn, &members)
            .await
            .unwrap(),
        1
    );
    let viewer = named_token("vic@blackburn", Role::PartnerViewer, BLACKBURN, None);
    let (status, groups) = send(&app, &viewer, Method::GET, "/api/v1/regional-groups", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        groups["groups"],
        json!([{"name": GROUP, "members": [BLACKPOOL, ROCHDALE, LANCASHIRE]}])
    );
    let needed_by = chrono::Utc::now().date_naive() + chrono::Days::new(30);
    let asking = json!({
        "group": GROUP,
        "periods": ["2024-Q1"],
        "breakdowns": ["agency_kind", "age_band", "record_kind"],
        "purpose": "Pan-Lancashire CSE sub-group, quarterly picture",
        "needed_by": needed_by.to_string(),
    });
    let regional = format!("/api/v1/partnerships/{BLACKBURN}/regional-requests");

    // Refused whole, naming the member that does not share its releases; an unknown group is
    // 404; another partnership's path is 403.
    share_releases(&app, &[BLACKPOOL, LANCASHIRE]).await;
    let (status, body) = send(&app, &viewer, Method::POST, &regional, Some(asking.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains(ROCHDALE),
        "{body}"
    );
    assert!(
        !body["message"].as_str().unwrap().contains(BLACKPOOL),
        "{body}"
    );
    let mut unknown = asking.clone();
    unknown["group"] = json!("Nowhere");
    let (status, _) = send(&app, &viewer, Method::POST, &regional, Some(unknown)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let elsewhere = format!("/api/v1/partnerships/{LANCASHIRE}/regional-requests");
    let (status, _) = send(
        &app,
        &viewer,
        Method::POST,
        &elsewhere,
        Some(asking.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.count("SELECT count(*) FROM summary_requests").await,
        0,
        "nothing is asked of anyone when the request is refused"
    );

    // With Rochdale's agreement, one request to each member, in each member's queue.
    share_releases(&app, &[ROCHDALE]).await;
    let (status, made) = send(&app, &viewer, Method::POST, &regional, Some(asking.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["state"], "waiting");
    assert_eq!(
        made["waiting_for"],
        json!([BLACKPOOL, ROCHDALE, LANCASHIRE])
    );
    assert_eq!(made["summary"], json!([]));
    let id = made["id"].as_str().unwrap().to_owned();
    let mine = format!("{regional}/{id}");

    for (turn, member) in [BLACKPOOL, LANCASHIRE, ROCHDALE].into_iter().enumerate() {
        let analyst = named_token(
            &format!("ana@{member}"),
            Role::PartnershipAnalyst,
            member,
            None,
        );
        let approver = named_token(
            &format!("bo@{member}"),
            Role::PartnershipAnalyst,
            member,
            None,
        );
        let queue = format!("/api/v1/partnerships/{member}/summary-requests");
        let (status, lists) = send(&app, &analyst, Method::GET, &queue, None).await;
        assert_eq!(status, StatusCode::OK, "{lists}");
        let incoming = lists["incoming"].as_array().unwrap();
        assert_eq!(incoming.len(), 1, "{lists}");
        assert_eq!(incoming[0]["regional_request"], id.as_str());
        assert_eq!(incoming[0]["requester"], BLACKBURN);
        let request = incoming[0]["id"].as_str().unwrap();
        assert_eq!(
            waiting(&app, &analyst, member).await,
            ["request_to_answer"],
            "{member}"
        );
        let (status, accepted) = send(
            &app,
            &analyst,
            Method::POST,
            &format!("{queue}/{request}/accept"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{accepted}");
        // Accepted but not yet approved: still waiting for this member.
        let (_, pending) = send(&app, &viewer, Method::GET, &mine, None).await;
        assert_eq!(pending["state"], "waiting");
        assert!(
            pending["waiting_for"]
                .as_array()
                .unwrap()
                .contains(&json!(member))
        );
        let release = accepted["releases"][0]["id"].as_str().unwrap();
        assert_eq!(waiting(&app, &analyst, member).await, Vec::<String>::new());
        assert_eq!(
            waiting(&app, &approver, member).await,
            ["release_to_approve"],
            "the second analyst is asked to approve"
        );
        let (status, _) = send(
            &app,
            &approver,
            Method::POST,
            &format!("/api/v1/partnerships/{member}/releases/{release}/approve"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (_, progress) = send(&app, &viewer, Method::GET, &mine, None).await;
        if turn < 2 {
            assert_eq!(progress["state"], "waiting", "{progress}");
            assert_eq!(progress["summary"], json!([]), "nothing assembled early");
        } else {
            assert_eq!(progress["state"], "assembled", "{progress}");
        }
    }

    // Assembled: three columns, each member's figures exactly as its release publishes them,
    // totals the sums of what is shown, no count from 1 to the threshold anywhere.
    let (status, summary) = send(&app, &viewer, Method::GET, &mine, None).await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    let period = &summary["summary"][0];
    assert_eq!(period["period"], "2024-Q1");
    let columns: Vec<String> = period["partnerships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|code| code.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(columns, [BLACKPOOL, ROCHDALE, LANCASHIRE]);
    let tables: Vec<&str> = period["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|table| table["breakdown"].as_str().unwrap())
        .collect();
    assert_eq!(
        tables,
        ["headline", "agency_kind", "age_band", "record_kind"]
    );
    let headline = &period["tables"][0]["rows"][0];
    assert_eq!(headline["category"], "children");
    let mut sum = 0;
    for (column, answer) in summary["answers"].as_array().unwrap().iter().enumerate() {
        assert_eq!(answer["state"], "answered");
        let release = answer["releases"][0]["id"].as_str().unwrap();
        let code = answer["partnership"].as_str().unwrap();
        let (status, published) = send(
            &app,
            &viewer,
            Method::GET,
            &format!("/api/v1/partnerships/{code}/releases/{release}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{published}");
        let children = &published["content"]["summary"]["children"];
        assert_eq!(headline["values"][column], *children, "{code}");
        sum += children.as_u64().unwrap_or_default();
        let age_bands = &published["content"]["summary"]["children_by_age_band"];
        for row in period["tables"][2]["rows"].as_array().unwrap() {
            let category = row["category"].as_str().unwrap();
            assert_eq!(
                row["values"][column], age_bands[category],
                "{code} {category}"
            );
        }
    }
    assert_eq!(headline["total"]["sum"], sum);
    for value in member_values(&summary) {
        match value {
            Value::Number(number) => {
                let number = number.as_u64().unwrap();
                assert!(number == 0 || number > 5, "{number} in {summary}");
            }
            Value::String(text) => assert_eq!(text, "c"),
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(
        waiting(&app, &viewer, BLACKBURN).await,
        ["regional_summary_ready"]
    );
    let (status, listed) = send(&app, &viewer, Method::GET, &regional, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["requests"][0]["state"], "assembled");

    // Each member's list of outside readers shows the regional summary read.
    let blackpool = token(Role::PartnershipAnalyst, BLACKPOOL, None);
    let (status, readers) = send(
        &app,
        &blackpool,
        Method::GET,
        &format!("/api/v1/partnerships/{BLACKPOOL}/readers"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{readers}");
    assert!(
        readers["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|read| read["caller_partnership"] == BLACKBURN
                && read["action"] == "summary_request.read"),
        "{readers}"
    );

    // A partner viewer's role does not read its own partnership's releases: asked by Rochdale's
    // viewer, the group's summary leaves Rochdale out rather than show its releases.
    let admin = token(Role::Admin, LANCASHIRE, None);
    for from in [BLACKPOOL, LANCASHIRE] {
        let (status, body) = send(
            &app,
            &admin,
            Method::POST,
            "/api/v1/admin/agreements",
            Some(json!({"from": from, "to": ROCHDALE, "scopes": ["releases"], "valid_from": "2024-01-01"})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let rochdale_viewer = token(Role::PartnerViewer, ROCHDALE, None);
    let (status, asked) = send(
        &app,
        &rochdale_viewer,
        Method::POST,
        &format!("/api/v1/partnerships/{ROCHDALE}/regional-requests"),
        Some(asking.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{asked}");
    let own = asked["answers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|answer| answer["partnership"] == ROCHDALE)
        .unwrap();
    assert_eq!(own["state"], "left_out", "{asked}");
    assert_eq!(own["releases"], json!([]));

    // Another partnership's analysts cannot read it.
    let stranger = token(Role::PartnershipAnalyst, LANCASHIRE, None);
    let (status, _) = send(
        &app,
        &stranger,
        Method::GET,
        &format!("/api/v1/partnerships/{LANCASHIRE}/regional-requests/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Both sides' audit trails show every step: the requester's the request and its reads,
    // each member's the request made to it, its acceptance and its release.
    let auditor = token(Role::Auditor, LANCASHIRE, None);
    let trail = |partnership: &str| {
        let (app, auditor) = (&app, auditor.clone());
        let path = format!("/api/v1/audit?partnership={partnership}&limit=1000");
        async move {
            let (status, page) = send(app, &auditor, Method::GET, &path, None).await;
            assert_eq!(status, StatusCode::OK);
            page["entries"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|entry| entry["outcome"] == "allowed")
                .map(|entry| entry["action"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let requester = trail(BLACKBURN).await;
    for action in [
        "regional_request.create",
        "summary_request.read",
        "release.read",
    ] {
        assert!(
            requester.iter().any(|seen| seen == action),
            "{action}: {requester:?}"
        );
    }
    for member in [BLACKPOOL, LANCASHIRE, ROCHDALE] {
        let owner = trail(member).await;
        for action in [
            "regional_request.create",
            "summary_request.answer",
            "release.prepare",
            "release.approve",
            "release.read",
        ] {
            assert!(
                owner.iter().any(|seen| seen == action),
                "{member} {action}: {owner:?}"
            );
        }
    }
}
