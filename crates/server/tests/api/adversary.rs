//! The neighbour who wants to work out a small count, through the HTTP API alone
//! (docs/privacy.md, "Threat model"). Blackpool's analyst attacks Lancashire, which shares
//! `comparison`, `regional_hotspots` and `releases` with Blackpool; each attack tries to recover
//! Lancashire's counts from 1 to 5 exactly.
//!
//! Against the API before the publication gate (commit a527819, these tests with the
//! `comparison` scope left out of the agreement and each final assertion replaced by a print;
//! `cargo test -p atlas-server --test api -- adversary --nocapture`), the attacks recovered
//! Lancashire's small counts exactly: differencing windows a day apart 5 of 5, the Gi*
//! inversion of regional hotspots 5 of 5 (totals 0, 1, 3, 6, 10, 15 read off the z-scores), the
//! release against the live comparison 5 of 5, the national export either side of a late batch
//! 6 of 10. Each test asserts that none does now.

use std::collections::{BTreeMap, BTreeSet};

use atlas_access::Role;
use atlas_domain::AgencyKind;
use h3o::CellIndex;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::analysis::{BLACKPOOL, Planted, planted};
use crate::support::{TestApp, named_token, token};

const LANCASHIRE: &str = "E10000017";

/// The victim: Lancashire's police, and the agreements that let Blackpool see Lancashire.
struct Victim {
    app: TestApp,
    police: uuid::Uuid,
    cells: Vec<CellIndex>,
    next_child: u32,
}

async fn victim() -> Victim {
    let Planted { app, .. } = planted().await;
    let police = app
        .register_agency_of_kind("Lancashire Police", AgencyKind::Police, &[LANCASHIRE])
        .await;
    let admin = token(Role::Admin, LANCASHIRE, None);
    let created = app
        .client
        .post(app.url("/api/v1/admin/agreements"))
        .bearer_auth(&admin)
        .json(&json!({"from": LANCASHIRE, "to": BLACKPOOL, "scopes": ["releases", "comparison", "regional_hotspots"], "valid_from": "2024-01-01"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    // Lancashire's cells far from Blackpool, so the Gi* attack's cells see none of them.
    let blackpool = app.coverage(BLACKPOOL, 9).await;
    let cells: Vec<CellIndex> = app
        .whole_cells(LANCASHIRE)
        .await
        .into_iter()
        .filter(|cell| !blackpool.contains(cell))
        .step_by(997)
        .take(40)
        .collect();
    Victim {
        app,
        police,
        cells,
        next_child: 700_000,
    }
}

impl Victim {
    /// Lancashire's police upload `count` records on each of `days` (new children each).
    async fn records(&mut self, days: &[(&str, u32)]) {
        let mut text = String::from("subject,record_kind,occurred_on,h3,indicators,age\n");
        for (day, count) in days {
            for _ in 0..*count {
                self.next_child += 1;
                let cell = self.cells[self.next_child as usize % self.cells.len()];
                text.push_str(&format!(
                    "{:064x},incident,{day},{cell},missing,14\n",
                    self.next_child
                ));
            }
        }
        let response = self
            .app
            .client
            .post(self.app.url("/api/v1/extracts"))
            .header("content-type", "text/csv")
            .bearer_auth(token(Role::AgencyAnalyst, LANCASHIRE, Some(self.police)))
            .body(text)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "{}",
            response.text().await.unwrap()
        );
    }

    async fn get(&self, as_token: &str, path: &str) -> Value {
        let response = self.app.get_as(as_token, path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.json().await.unwrap()
    }
}

/// Lancashire's records flagged `missing` over the window of Blackpool's comparison, when
/// shown as a number.
fn neighbour_missing(comparison: &Value) -> Option<i64> {
    comparison["members"]
        .as_array()?
        .iter()
        .find(|member| member["code"] == LANCASHIRE)
        .and_then(|member| member["records_by_indicator"]["missing"].as_i64())
}

#[tokio::test]
async fn windows_a_day_apart_do_not_isolate_a_day() {
    let mut victim = victim().await;
    // 30 records at the start of April 2024, then 1 to 5 records on the 11th to 15th.
    victim
        .records(&[
            ("2024-04-01", 10),
            ("2024-04-02", 10),
            ("2024-04-03", 10),
            ("2024-04-11", 1),
            ("2024-04-12", 2),
            ("2024-04-13", 3),
            ("2024-04-14", 4),
            ("2024-04-15", 5),
        ])
        .await;
    let analyst = token(Role::PartnershipAnalyst, BLACKPOOL, None);
    let missing = |to: &str| {
        format!("/api/v1/partnerships/{BLACKPOOL}/comparison?from=2024-04-01&to={to}&by=month")
    };
    let mut recovered = 0;
    for (day, truth) in [(11, 1), (12, 2), (13, 3), (14, 4), (15, 5)] {
        let before = victim
            .get(&analyst, &missing(&format!("2024-04-{}", day - 1)))
            .await;
        let after = victim
            .get(&analyst, &missing(&format!("2024-04-{day}")))
            .await;
        if let (Some(before), Some(after)) = (neighbour_missing(&before), neighbour_missing(&after))
            && after - before == truth
        {
            recovered += 1;
        }
    }
    assert_eq!(recovered, 0, "single-day counts recovered by differencing");
}

#[tokio::test]
async fn overlapping_windows_give_no_new_equations_and_nothing_to_average() {
    let mut victim = victim().await;
    victim
        .records(&[
            ("2024-01-05", 9),
            ("2024-02-05", 3),
            ("2024-03-05", 12),
            ("2024-04-05", 4),
            ("2024-05-05", 8),
        ])
        .await;
    let analyst = token(Role::PartnershipAnalyst, BLACKPOOL, None);
    // Every window the API accepts, from any day of January to May to any later day up to the
    // end of May: the attacker's system of equations.
    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut windows = 0;
    for from in [
        "2024-01-01",
        "2024-01-17",
        "2024-02-09",
        "2024-03-30",
        "2024-04-02",
    ] {
        for to in [
            "2024-02-14",
            "2024-03-03",
            "2024-04-29",
            "2024-05-01",
            "2024-05-31",
        ] {
            if from > to {
                continue;
            }
            let answer = victim
                .get(
                    &analyst,
                    &format!(
                        "/api/v1/partnerships/{BLACKPOOL}/comparison?from={from}&to={to}&by=month"
                    ),
                )
                .await;
            windows += 1;
            let member = answer["members"]
                .as_array()
                .unwrap()
                .iter()
                .find(|member| member["code"] == LANCASHIRE)
                .unwrap()
                .clone();
            let periods = member["periods"].as_array().unwrap();
            // A window's total is the sum of its periods' figures: no equation beyond them.
            let numbers: Option<Vec<i64>> = periods
                .iter()
                .map(|period| period["records"].as_i64())
                .collect();
            if let Some(numbers) = numbers {
                assert_eq!(member["records"].as_i64(), Some(numbers.iter().sum()));
            } else {
                assert_eq!(member["records"], "c");
            }
            for period in periods {
                seen.entry(period["period"].as_str().unwrap().to_owned())
                    .or_default()
                    .insert(period["records"].to_string());
            }
        }
    }
    assert!(windows >= 15);
    for (period, values) in &seen {
        assert_eq!(
            values.len(),
            1,
            "{period} is answered the same in every window, so averaging removes no noise"
        );
    }
    assert_eq!(seen["2024-02"], BTreeSet::from(["\"c\"".to_owned()]));
    assert_eq!(seen["2024-04"], BTreeSet::from(["\"c\"".to_owned()]));
}

/// The Gi* inversion: from two of Blackpool's own cells whose neighbourhoods hold only
/// Blackpool's cells, the z-scores give the merged study area's mean and spread, and the mean
/// times the number of cells, less Blackpool's own values, is Lancashire's total in the window.
/// `None` when the answer holds no z-scores.
fn invert(
    answer: &Value,
    own: &BTreeSet<CellIndex>,
    lancashire: &BTreeSet<CellIndex>,
) -> Option<i64> {
    let cells = answer["cells"].as_array()?;
    let n = answer["study_area_cells"].as_f64()?;
    let mut values: BTreeMap<CellIndex, f64> = BTreeMap::new();
    let mut z: BTreeMap<CellIndex, f64> = BTreeMap::new();
    for cell in cells {
        let index: CellIndex = cell["cell"].as_str()?.parse().ok()?;
        values.insert(index, cell["value"].as_f64()?);
        z.insert(index, cell["z"].as_f64()?);
    }
    // Interior cells: the whole ring is Blackpool's and none of it is Lancashire's.
    let interior: Vec<(f64, f64)> = own
        .iter()
        .filter(|cell| {
            cell.grid_disk::<Vec<_>>(1)
                .iter()
                .all(|n| own.contains(n) && !lancashire.contains(n))
        })
        .map(|cell| {
            let local: f64 = cell
                .grid_disk::<Vec<_>>(1)
                .iter()
                .map(|n| values.get(n).copied().unwrap_or(0.0))
                .sum();
            (local, z[cell])
        })
        .collect();
    let (low, high) = (
        interior
            .iter()
            .copied()
            .min_by(|a, b| a.0.total_cmp(&b.0))?,
        interior
            .iter()
            .copied()
            .max_by(|a, b| a.0.total_cmp(&b.0))?,
    );
    if (high.0 - low.0).abs() < 0.5 {
        return None;
    }
    // z = (L − 7 mean) / (s √((7n − 49)/(n − 1))) for a full uniform ring.
    let c = ((7.0 * n - 49.0) / (n - 1.0)).sqrt();
    let s = (high.0 - low.0) / (c * (high.1 - low.1));
    let mean = (high.0 - high.1 * s * c) / 7.0;
    let own_total: f64 = values.values().sum();
    #[expect(clippy::cast_possible_truncation, reason = "a count")]
    Some((mean * n - own_total).round() as i64)
}

#[tokio::test]
async fn regional_hotspots_cannot_be_inverted_to_the_neighbours_counts() {
    let mut victim = victim().await;
    victim
        .records(&[
            ("2024-03-21", 1),
            ("2024-03-22", 2),
            ("2024-03-23", 3),
            ("2024-03-24", 4),
            ("2024-03-25", 5),
        ])
        .await;
    let own = victim.app.coverage(BLACKPOOL, 8).await;
    let lancashire = victim.app.coverage(LANCASHIRE, 8).await;
    let analyst = token(Role::PartnershipAnalyst, BLACKPOOL, None);
    let mut totals = Vec::new();
    for day in 20..=25 {
        let answer = victim
            .app
            .get_as(
                &analyst,
                &format!(
                    "/api/v1/partnerships/{BLACKPOOL}/regional-hotspots?from=2024-03-01&to=2024-03-{day}&resolution=8"
                ),
            )
            .await;
        let answer: Value = answer.json().await.unwrap();
        totals.push(invert(&answer, &own, &lancashire));
        assert!(
            answer["cells"]
                .as_array()
                .unwrap()
                .iter()
                .all(|cell| cell.get("z").is_none() && cell.get("p").is_none()),
            "no z or p mixing Lancashire's counts in"
        );
    }
    let recovered = totals
        .windows(2)
        .zip(1..=5)
        .filter(|(pair, truth)| matches!(pair, [Some(a), Some(b)] if b - a == *truth))
        .count();
    assert_eq!(
        recovered, 0,
        "single-day counts recovered from z-scores: {totals:?}"
    );
}

#[tokio::test]
async fn a_release_cannot_be_subtracted_from_the_comparison_after_a_late_batch() {
    let mut victim = victim().await;
    let quarters = [
        ("2024-Q2", "2024-05-10", "2024-04-01", "2024-06-30"),
        ("2024-Q3", "2024-08-10", "2024-07-01", "2024-09-30"),
        ("2024-Q4", "2024-11-10", "2024-10-01", "2024-12-31"),
        ("2025-Q1", "2025-02-10", "2025-01-01", "2025-03-31"),
        ("2025-Q2", "2025-05-10", "2025-04-01", "2025-06-30"),
    ];
    let preparer = named_token("ana@lancs", Role::PartnershipAnalyst, LANCASHIRE, None);
    let approver = named_token("bo@lancs", Role::PartnershipAnalyst, LANCASHIRE, None);
    let viewer = token(Role::PartnerViewer, BLACKPOOL, None);
    let analyst = token(Role::PartnershipAnalyst, BLACKPOOL, None);
    let mut recovered = 0;
    for (late, (period, day, from, to)) in (1_i64..=5).zip(quarters) {
        victim.records(&[(day, 20)]).await;
        let releases = format!("/api/v1/partnerships/{LANCASHIRE}/releases");
        let prepared: Value = victim
            .app
            .client
            .post(victim.app.url(&releases))
            .bearer_auth(&preparer)
            .json(&json!({"period": period}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = prepared["id"].as_str().unwrap().to_owned();
        let approved = victim
            .app
            .client
            .post(victim.app.url(&format!("{releases}/{id}/approve")))
            .bearer_auth(&approver)
            .send()
            .await
            .unwrap();
        assert_eq!(approved.status(), StatusCode::OK);
        // A late batch for the released quarter.
        victim.records(&[(day, u32::try_from(late).unwrap())]).await;
        let release = victim.get(&viewer, &format!("{releases}/{id}")).await;
        let comparison = victim
            .get(
                &analyst,
                &format!("/api/v1/partnerships/{BLACKPOOL}/comparison?from={from}&to={to}"),
            )
            .await;
        let released = release["content"]["summary"]["records_by_indicator"]["missing"].as_i64();
        let live = neighbour_missing(&comparison);
        if let (Some(released), Some(live)) = (released, live)
            && live - released == late
        {
            recovered += 1;
        }
    }
    assert_eq!(
        recovered, 0,
        "late records recovered from release and comparison"
    );
}

#[tokio::test]
async fn the_national_export_does_not_move_with_a_late_batch() {
    let mut victim = victim().await;
    let admin = token(Role::Admin, LANCASHIRE, None);
    let mut recovered = 0;
    for (late, (period, day)) in (1_i64..=5).zip([
        ("2024-Q2", "2024-05-10"),
        ("2024-Q3", "2024-08-10"),
        ("2024-Q4", "2024-11-10"),
        ("2025-Q1", "2025-02-10"),
        ("2025-Q2", "2025-05-10"),
    ]) {
        victim.records(&[(day, 20)]).await;
        let path = format!("/api/v1/exports/national?period={period}");
        let figure = |export: &Value, measure: &str| {
            export["rows"]
                .as_array()
                .unwrap()
                .iter()
                .find(|row| {
                    row["gss_code"] == LANCASHIRE
                        && row["measure"] == measure
                        && row["breakdown"] == "all"
                })
                .and_then(|row| row["value"].as_str()?.parse::<i64>().ok())
        };
        let before = victim.get(&admin, &path).await;
        victim.records(&[(day, u32::try_from(late).unwrap())]).await;
        let after = victim.get(&admin, &path).await;
        for measure in ["records", "children"] {
            if let (Some(a), Some(b)) = (figure(&before, measure), figure(&after, measure))
                && b - a == late
            {
                recovered += 1;
            }
        }
        assert_eq!(before, after, "a frozen quarter is served identically");
    }
    assert_eq!(recovered, 0, "late records recovered from two exports");
}

#[tokio::test]
async fn many_cross_boundary_questions_from_one_subject_are_flagged() {
    let victim = victim().await;
    let analyst = token(Role::PartnershipAnalyst, BLACKPOOL, None);
    // The distinct cross-boundary questions a subject may ask in a day unflagged (atlas-server's
    // `query_audit::FLAG_AFTER`).
    let asked: i64 = 40;
    for month in 0..=asked {
        let from = chrono::NaiveDate::from_ymd_opt(2020, 1, 1)
            .unwrap()
            .checked_add_months(chrono::Months::new(u32::try_from(month).unwrap()))
            .unwrap();
        victim
            .get(
                &analyst,
                &format!("/api/v1/partnerships/{BLACKPOOL}/comparison?from={from}&to=2024-06-30&by=quarter"),
            )
            .await;
    }
    let auditor = token(Role::Auditor, LANCASHIRE, None);
    let trail = victim
        .get(
            &auditor,
            &format!("/api/v1/audit?subject=partnership_analyst@{BLACKPOOL}&limit=1000"),
        )
        .await;
    let entries = trail["entries"].as_array().unwrap();
    let cross_boundary = entries
        .iter()
        .filter(|entry| entry["parameters"]["cross_boundary"] == "comparison")
        .count();
    assert_eq!(cross_boundary, usize::try_from(asked).unwrap() + 1);
    let flagged: Vec<&Value> = entries
        .iter()
        .filter(|entry| entry["parameters"].get("query_audit").is_some())
        .collect();
    assert_eq!(
        flagged.len(),
        1,
        "the last question is flagged: {flagged:?}"
    );
    let metrics = victim.app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("atlas_cross_boundary_flags_total 1"),
        "the flag is counted on /metrics"
    );
}
