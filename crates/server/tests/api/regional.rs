//! Cross-border hotspots through real HTTP: a cluster straddling the Blackpool–Lancashire
//! boundary is found whole once Lancashire shares `regional_hotspots` with Blackpool, and
//! Blackpool sees its own cells only, with its own counts and bins (no z or p), and Lancashire's
//! side as a summary; closed quarters only, no filters.

use std::collections::BTreeSet;

use atlas_access::Role;
use atlas_domain::AgencyKind;
use h3o::{CellIndex, Resolution};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::analysis::{BLACKPOOL, Planted, planted};
use crate::support::{TestApp, token};

const LANCASHIRE: &str = "E10000017";

async fn upload(app: &TestApp, agency: uuid::Uuid, rows: &[(CellIndex, u32)], seed: u32) {
    let mut text = String::from("subject,record_kind,occurred_on,h3,indicators,age\n");
    let mut child = seed;
    for (cell, count) in rows {
        for _ in 0..*count {
            child += 1;
            text.push_str(&format!(
                "{child:064x},incident,2024-05-10,{cell},missing,14\n"
            ));
        }
    }
    let response = app
        .upload(agency, "text/csv", text.into_bytes(), "/api/v1/extracts")
        .await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{}",
        response.text().await.unwrap()
    );
}

#[tokio::test]
async fn a_cluster_across_the_boundary_is_found_whole_once_the_neighbour_shares() {
    let Planted { app, police, .. } = planted().await;
    let (blackpool, lancashire) = (
        app.coverage(BLACKPOOL, 8).await,
        app.coverage(LANCASHIRE, 8).await,
    );
    let lancashire_r9 = app.whole_cells(LANCASHIRE).await;
    let blackpool_r9 = app.whole_cells(BLACKPOOL).await;
    let has_whole_child = |cell: &CellIndex, r9: &BTreeSet<CellIndex>| {
        cell.children(Resolution::Nine)
            .any(|child| r9.contains(&child))
    };
    // A Blackpool cell whose ring lies mostly in Lancashire alone. Cells along the boundary
    // belong to both coverages, so the cell itself may be one of them.
    let across = |cell: &CellIndex| {
        cell.grid_disk::<Vec<_>>(1)
            .into_iter()
            .filter(|n| {
                lancashire.contains(n)
                    && !blackpool.contains(n)
                    && has_whole_child(n, &lancashire_r9)
            })
            .collect::<Vec<_>>()
    };
    let border = *blackpool
        .iter()
        .filter(|cell| has_whole_child(cell, &blackpool_r9))
        .max_by_key(|cell| across(cell).len())
        .unwrap();
    let other_side = across(&border);
    assert!(other_side.len() >= 2, "{border}: {other_side:?}");
    let child_in = |cell: &CellIndex, r9: &BTreeSet<CellIndex>| {
        cell.children(Resolution::Nine)
            .find(|child| r9.contains(child))
            .unwrap()
    };
    upload(
        &app,
        police,
        &[(child_in(&border, &blackpool_r9), 4)],
        500_000,
    )
    .await;
    let lancashire_police = app
        .register_agency_of_kind("Lancashire Police", AgencyKind::Police, &[LANCASHIRE])
        .await;
    let theirs: Vec<(CellIndex, u32)> = other_side
        .iter()
        .map(|cell| (child_in(cell, &lancashire_r9), 12))
        .collect();
    upload(&app, lancashire_police, &theirs, 600_000).await;

    let analyst = token(Role::PartnershipAnalyst, BLACKPOOL, None);
    let path =
        format!("/api/v1/partnerships/{BLACKPOOL}/regional-hotspots?from=2024-04-01&to=2024-06-30");
    let alone: Value = app.get_as(&analyst, &path).await.json().await.unwrap();
    assert_eq!(alone["settings"]["merged"], json!([BLACKPOOL]));
    assert_eq!(
        alone["settings"]["not_merged"],
        json!([LANCASHIRE]),
        "no agreement yet"
    );
    assert_eq!(alone["neighbours"], json!([]));

    let admin = token(Role::Admin, LANCASHIRE, None);
    let created = app
        .client
        .post(app.url("/api/v1/admin/agreements"))
        .bearer_auth(&admin)
        .json(&json!({"from": LANCASHIRE, "to": BLACKPOOL, "scopes": ["regional_hotspots"], "valid_from": "2024-01-01"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let merged: Value = app.get_as(&analyst, &path).await.json().await.unwrap();
    assert_eq!(merged["settings"]["merged"], json!([BLACKPOOL, LANCASHIRE]));
    let cells = merged["cells"].as_array().unwrap();
    assert!(
        cells
            .iter()
            .all(|cell| blackpool.contains(&cell["cell"].as_str().unwrap().parse().unwrap())),
        "only Blackpool's own cells are returned"
    );
    assert_eq!(cells.len(), blackpool.len());
    let find = |answer: &Value| {
        answer["cells"]
            .as_array()
            .unwrap()
            .iter()
            .find(|cell| cell["cell"] == border.to_string())
            .cloned()
            .unwrap()
    };
    let (before, after) = (find(&alone), find(&merged));
    assert_eq!(
        after["value"], before["value"],
        "Blackpool's own count, not Lancashire's"
    );
    assert_eq!(after["bin"], 3, "found whole across the boundary: {after}");
    assert!(
        before["bin"].as_i64().unwrap() < 3,
        "not found from Blackpool's side alone: {before}"
    );
    assert_eq!(
        after.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["bin", "cell", "value"],
        "the bin and the own count only: no z or p, which mix the neighbour's counts in"
    );
    assert_eq!(merged["settings"]["quarters"], json!(["2024-Q2"]));
    assert_eq!(merged["settings"]["min_children_nearby"], 5);
    let summary = &merged["neighbours"][0];
    assert_eq!(summary["code"], LANCASHIRE);
    assert!(summary["hot_cells"].as_u64().unwrap() >= 1, "{summary}");
    assert!(
        summary.get("cells").is_some() && summary.as_object().unwrap().len() == 4,
        "a summary, no cell-level figures"
    );

    // Without small-area populations imported, the LSOAs shipped with Atlas stand in for both
    // partnerships; imported ones are used once there.
    assert_eq!(merged["settings"]["adjust"], "population");
    assert!(
        merged["settings"]["population"]["sources"][0]
            .as_str()
            .unwrap()
            .contains("shipped with Atlas")
    );
    app.import_populations().await;
    let adjusted: Value = app.get_as(&analyst, &path).await.json().await.unwrap();
    assert_eq!(
        adjusted["settings"]["adjust"], "population",
        "{}",
        adjusted["settings"]
    );
    assert_eq!(adjusted["settings"]["test"], "poisson");
    assert!(adjusted["settings"]["warning"].is_null());
    assert!(
        adjusted["settings"]["population"]["small_areas"]
            .as_u64()
            .unwrap()
            > 100,
        "Blackpool's and Lancashire's small areas"
    );
    assert!(
        !adjusted["settings"]["population"]["sources"][0]
            .as_str()
            .unwrap()
            .contains("shipped with Atlas"),
        "the imported ones"
    );

    let viewer = token(Role::PartnerViewer, LANCASHIRE, None);
    assert_eq!(
        app.get_as(&viewer, &path).await.status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn regional_hotspots_refuse_filters_and_periods_that_have_not_ended() {
    let Planted { app, .. } = planted().await;
    let analyst = token(Role::PartnershipAnalyst, BLACKPOOL, None);
    let today = chrono::Utc::now().date_naive();
    for (query, says) in [
        ("sexes=F", "`sexes`: regional hotspots take no filters"),
        ("indicators=missing", "`indicators`"),
        ("age_bands=13-15", "`age_bands`"),
        (
            "alpha=0.0371",
            "`alpha`: regional hotspots take 0.01, 0.05 or 0.1",
        ),
        (
            "permutations=37",
            "`permutations`: regional hotspots take 0 or 999",
        ),
        (&format!("from={today}") as &str, "closed periods only"),
    ] {
        let response = app
            .get_as(
                &analyst,
                &format!("/api/v1/partnerships/{BLACKPOOL}/regional-hotspots?{query}"),
            )
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        let text = response.text().await.unwrap();
        assert!(text.contains(says), "{query}: {text}");
    }
}
