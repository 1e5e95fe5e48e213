//! The national export through real HTTP: every partnership, the stable schema, nothing from 1
//! to the threshold, admins only, audited.

use atlas_access::Role;
use reqwest::StatusCode;
use serde_json::Value;

use crate::analysis::{BLACKPOOL, Planted, planted};
use crate::support::token;

#[tokio::test]
async fn the_national_export_is_controlled_stable_and_for_admins() {
    let Planted { app, .. } = planted().await;
    let admin = token(Role::Admin, BLACKPOOL, None);
    let path = "/api/v1/exports/national?period=2024-Q1";
    let response = app.get_as(&admin, path).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["schema"], "atlas-national-export/2");
    let rows = body["rows"].as_array().unwrap();
    let codes: std::collections::BTreeSet<&str> = rows
        .iter()
        .map(|row| row["gss_code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes.len(),
        3,
        "every partnership of the instance: {codes:?}"
    );
    for row in rows {
        let value = row["value"].as_str().unwrap();
        match row["measure"].as_str().unwrap() {
            "records" | "children" => assert!(
                value == "c" || value == "x" || value.parse::<u64>().is_ok_and(|n| n == 0 || n > 5),
                "{row}"
            ),
            "rate_per_10000" | "population_0_17" => assert!(
                value == "x" || value == "c" || value.parse::<f64>().is_ok(),
                "{row}"
            ),
            other => panic!("unknown measure {other}"),
        }
    }
    let blackpool_children = rows
        .iter()
        .find(|row| row["gss_code"] == BLACKPOOL && row["measure"] == "children")
        .unwrap();
    assert_ne!(
        blackpool_children["value"], "c",
        "the cluster's 70 children and more"
    );
    let rochdale_records = rows
        .iter()
        .find(|row| {
            row["gss_code"] == "E08000005"
                && row["measure"] == "records"
                && row["breakdown"] == "all"
        })
        .unwrap();
    // No agency contributes to Rochdale: no data, which is not zero.
    assert_eq!(rochdale_records["value"], "x");
    assert_eq!(rochdale_records["note"], atlas_app::export::NO_DATA);

    let csv = app
        .get_as(&admin, &format!("{path}&format=csv"))
        .await
        .text()
        .await
        .unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "schema,gss_code,partnership,period,measure,breakdown,value,note"
    );
    assert_eq!(lines.count(), rows.len());
    let again: Value = app.get_as(&admin, path).await.json().await.unwrap();
    assert_eq!(again, body, "the same question gives the same answer");

    for (query, says) in [
        ("period=2024", "calendar quarter"),
        ("", "`period` is required"),
        ("period=2024-Q1&format=xml", "json or csv"),
        (
            &format!(
                "period={}",
                atlas_analytics::gate::label(
                    atlas_analytics::emerging::Step::Quarter,
                    chrono::Utc::now().date_naive()
                )
            ) as &str,
            "has not ended",
        ),
    ] {
        let response = app
            .get_as(&admin, &format!("/api/v1/exports/national?{query}"))
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        assert!(response.text().await.unwrap().contains(says), "{query}");
    }
    let analyst = token(Role::PartnershipAnalyst, BLACKPOOL, None);
    assert_eq!(
        app.get_as(&analyst, path).await.status(),
        StatusCode::FORBIDDEN
    );
    let audited = app
        .count("SELECT count(*) FROM audit_log WHERE action = 'export.national' AND outcome = 'allowed'")
        .await;
    assert!(audited >= 3, "{audited}");
}

#[tokio::test]
async fn a_correction_is_an_audited_revision_that_every_product_then_serves_marked_revised() {
    let Planted { app, police, .. } = planted().await;
    let admin = token(Role::Admin, BLACKPOOL, None);
    let path = "/api/v1/exports/national?period=2024-Q1";
    let database = app.database();
    let blackpool = atlas_domain::GssCode::parse(BLACKPOOL).unwrap();
    let today = chrono::Utc::now().date_naive();
    let entry = || {
        atlas_store::audit::NewEntry::operator(
            "cli:test".to_owned(),
            "summary.revise",
            format!("summaries/{BLACKPOOL}/2024-Q1"),
        )
    };
    // Nothing frozen yet: nothing to revise.
    let refused = atlas_app::products::revise(&database, &blackpool, "2024-Q1", today, &entry())
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("nothing to revise"),
        "{refused}"
    );
    let first: Value = app.get_as(&admin, path).await.json().await.unwrap();
    let records_of = |export: &Value| {
        export["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| {
                row["gss_code"] == BLACKPOOL
                    && row["measure"] == "records"
                    && row["breakdown"] == "all"
            })
            .cloned()
            .unwrap()
    };
    assert_eq!(records_of(&first)["note"], "");

    // Forty late records for January 2024: the frozen quarter does not move.
    let mut rows = String::from("subject,record_kind,occurred_on,lat,lon,indicators\n");
    for child in 0..40 {
        rows.push_str(&format!(
            "{:064x},incident,2024-01-20,53.8175,-3.0357,missing\n",
            800_000 + child
        ));
    }
    let response = app
        .upload(police, "text/csv", rows.into_bytes(), "/api/v1/extracts")
        .await;
    assert_eq!(response.status(), reqwest::StatusCode::CREATED);
    let unchanged: Value = app.get_as(&admin, path).await.json().await.unwrap();
    assert_eq!(unchanged, first);

    // The administrator's revision: a new version, audited, served marked revised.
    let version = atlas_app::products::revise(&database, &blackpool, "2024-Q1", today, &entry())
        .await
        .unwrap();
    assert_eq!(version, 2);
    let revised: Value = app.get_as(&admin, path).await.json().await.unwrap();
    let (before, after) = (records_of(&first), records_of(&revised));
    assert_eq!(after["note"], "revised");
    let (before, after) = (
        before["value"].as_str().unwrap().parse::<i64>().unwrap(),
        after["value"].as_str().unwrap().parse::<i64>().unwrap(),
    );
    assert!((after - before - 40).abs() <= 4, "{before} then {after}");
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE action = 'summary.revise'")
            .await,
        1
    );
    let bad = atlas_app::products::revise(&database, &blackpool, "2024-13", today, &entry())
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("not a quarter"), "{bad}");
}
