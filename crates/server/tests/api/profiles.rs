//! Quarterly problem profiles through real HTTP: the schedule generates a quarter's profile
//! once, its figures match an independent count of the uploaded rows, a request without new
//! records keeps the version and a late batch makes a new one only on request, and the board
//! edition shows no count from 1 to the threshold.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use atlas_access::Role;
use atlas_domain::AgencyKind;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestApp, spawn_ready_app_with, token};

const BLACKPOOL: &str = "E06000009";
const QUARTER: &str = "2025-Q4";

/// One uploaded row, as the test counts it.
struct Row {
    child: u32,
    on: String,
    indicators: &'static str,
    age: u32,
    sex: &'static str,
}

impl Row {
    fn csv(&self, cell: &str) -> String {
        format!(
            "{:064x},referral,{},{cell},{},{},{}\n",
            self.child, self.on, self.indicators, self.age, self.sex
        )
    }
}

const HEADER: &str = "subject,record_kind,occurred_on,h3,indicators,age,sex\n";

/// Police rows: 30 children in 2025-Q3; 60 in 2025-Q4 (20 of them known from Q3), a third
/// with two indicators, every fifth with a second record.
fn police_rows() -> Vec<Row> {
    let mut rows: Vec<Row> = (0..30)
        .map(|child| Row {
            child,
            on: format!("2025-08-{:02}", 1 + child % 28),
            indicators: "missing",
            age: 14,
            sex: "F",
        })
        .collect();
    for child in 10..70 {
        let indicators = if child % 3 == 0 {
            "gifts_money;older_associate"
        } else {
            "missing"
        };
        let (age, sex) = (13 + child % 4, if child % 2 == 0 { "F" } else { "M" });
        rows.push(Row {
            child,
            on: format!("2025-11-{:02}", 1 + child % 28),
            indicators,
            age,
            sex,
        });
        if child % 5 == 0 {
            rows.push(Row {
                child,
                on: "2025-12-20".to_owned(),
                indicators,
                age,
                sex,
            });
        }
    }
    rows
}

/// Voluntary-sector rows in 2025-Q4: 8 children the police know too, and 3 only it knows.
fn vcs_rows() -> Vec<Row> {
    (60..68)
        .chain(100..103)
        .map(|child| Row {
            child,
            on: "2025-10-10".to_owned(),
            indicators: "online_contact",
            age: 15,
            sex: "F",
        })
        .collect()
}

async fn upload(app: &TestApp, agency: uuid::Uuid, rows: &[Row], cells: &[String]) {
    let mut body = HEADER.to_owned();
    for (i, row) in rows.iter().enumerate() {
        body.push_str(&row.csv(&cells[i % cells.len()]));
    }
    crate::analysis::upload_csv(app, agency, body).await;
}

/// Every 40th resolution-9 cell wholly inside Blackpool: places spread over the town.
async fn spread_cells(app: &TestApp) -> Vec<String> {
    app.whole_cells(BLACKPOOL)
        .await
        .into_iter()
        .step_by(40)
        .map(|cell| cell.to_string())
        .collect()
}

async fn json_of(response: reqwest::Response) -> Value {
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{status}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// The table `name` of a profile's content, as label → values.
fn table(content: &Value, name: &str) -> BTreeMap<String, Vec<Value>> {
    content["sections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|section| section["tables"].as_array().unwrap())
        .find(|table| table["name"] == name)
        .unwrap_or_else(|| panic!("the profile has a table {name}"))["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["label"].as_str().unwrap().to_owned(),
                row["values"].as_array().unwrap().clone(),
            )
        })
        .collect()
}

async fn generate(app: &TestApp, analyst: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/v1/partnerships/{BLACKPOOL}/profiles")))
        .bearer_auth(analyst)
        .json(&json!({"period": QUARTER}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_schedule_profiles_a_closed_quarter_once_with_figures_that_match_the_records() {
    let app = spawn_ready_app_with(|settings| {
        settings.problem_profiles.schedule = true;
        settings.problem_profiles.check_every_secs = 1;
        // Far enough back that 2025-Q4 stays in reach whenever the test runs.
        settings.problem_profiles.backfill_quarters = 40;
    })
    .await;
    app.import_lancashire_cluster().await;
    let police = app
        .register_agency_of_kind("Blackpool Police", AgencyKind::Police, &[BLACKPOOL])
        .await;
    let vcs = app
        .register_agency_of_kind("Blackpool Youth Trust", AgencyKind::Vcs, &[BLACKPOOL])
        .await;
    app.register_agency_of_kind(
        "Blackpool Children's Services",
        AgencyKind::SocialCare,
        &[BLACKPOOL],
    )
    .await;
    let cells = spread_cells(&app).await;
    let (police_rows, vcs_rows) = (police_rows(), vcs_rows());
    upload(&app, police, &police_rows, &cells).await;
    upload(&app, vcs, &vcs_rows, &cells).await;

    // The schedule generates the quarter's profile by itself, once.
    let analyst = token(Role::PartnershipAnalyst, BLACKPOOL, None);
    let mut listed = Value::Null;
    for _ in 0..120 {
        listed = json_of(
            app.get_as(
                &analyst,
                &format!("/api/v1/partnerships/{BLACKPOOL}/profiles"),
            )
            .await,
        )
        .await;
        let periods: BTreeSet<&str> = listed["profiles"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|profile| profile["period"].as_str())
            .collect();
        if periods.contains(QUARTER) && periods.contains("2025-Q3") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let scheduled: Vec<&Value> = listed["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|profile| profile["period"] == QUARTER)
        .collect();
    assert_eq!(scheduled.len(), 1, "one version of {QUARTER}: {listed}");
    assert_eq!(scheduled[0]["generated_by"], "schedule");
    assert_eq!(scheduled[0]["scheduled"], true);
    assert_eq!(scheduled[0]["version"], 1);
    // Later checks find it there and make no second one.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM profiles WHERE partnership_code = '{BLACKPOOL}' AND period = '{QUARTER}'"
        ))
        .await,
        1
    );
    assert!(
        app.count("SELECT count(*) FROM audit_log WHERE action = 'profile.generate' AND subject = 'schedule'")
            .await
            >= 2,
        "each scheduled profile is audited"
    );

    // The own edition against an independent count of the rows uploaded.
    let profile = json_of(
        app.get_as(
            &analyst,
            &format!("/api/v1/partnerships/{BLACKPOOL}/profiles/{QUARTER}"),
        )
        .await,
    )
    .await;
    let own = &profile["content"];
    assert_eq!(own["edition"], "own");
    let in_quarter: Vec<&Row> = police_rows
        .iter()
        .chain(&vcs_rows)
        .filter(|row| row.on.starts_with("2025-1"))
        .collect();
    let children: BTreeSet<u32> = in_quarter.iter().map(|row| row.child).collect();
    let before: BTreeSet<u32> = police_rows
        .iter()
        .filter(|row| row.on.starts_with("2025-08"))
        .map(|row| row.child)
        .collect();
    assert_eq!(own["scale"]["children"], children.len());
    assert_eq!(own["scale"]["records"], in_quarter.len());
    assert_eq!(
        own["scale"]["known_children"],
        children.intersection(&before).count()
    );
    assert_eq!(
        own["scale"]["new_children"],
        children.difference(&before).count()
    );
    assert_eq!(own["scale"]["previous_quarter"]["period"], "2025-Q3");
    assert_eq!(own["scale"]["previous_quarter"]["children"], before.len());
    assert_eq!(own["scale"]["previous_quarter"]["direction"], "up");
    assert_eq!(
        own["scale"]["year_earlier"]["children"],
        Value::Null,
        "no agency contributed for 2024-Q4: no data, not zero"
    );
    let mut per_child: BTreeMap<u32, Vec<&Row>> = BTreeMap::new();
    for row in &in_quarter {
        per_child.entry(row.child).or_default().push(row);
    }
    let repeated = per_child.values().filter(|rows| rows.len() >= 2).count();
    assert_eq!(
        table(own, "repeated_records")["two or more records"][0],
        repeated
    );
    let with = |indicator: &str| {
        per_child
            .values()
            .filter(|rows| rows.iter().any(|row| row.indicators.contains(indicator)))
            .count()
    };
    let indicators = table(own, "indicators");
    for indicator in [
        "missing",
        "gifts_money",
        "online_contact",
        "older_associate",
    ] {
        assert_eq!(
            indicators[&indicator.replace('_', " ")][0],
            with(indicator),
            "{indicator}"
        );
    }
    assert_eq!(indicators["hotel taxi"][0], 0);
    let ages = table(own, "age_and_sex");
    let girls_13_15 = per_child
        .values()
        .filter(|rows| {
            let latest = rows.iter().max_by_key(|row| row.on.clone()).unwrap();
            (13..=15).contains(&latest.age) && latest.sex == "F"
        })
        .count();
    assert_eq!(ages["aged 13-15"][0], girls_13_15);
    let total: u64 = ages
        .iter()
        .filter(|(label, _)| *label != "all ages")
        .map(|(_, row)| row[4].as_u64().unwrap())
        .sum();
    assert_eq!(total, children.len() as u64);
    assert_eq!(ages["all ages"][4], children.len());
    let girls = per_child.values().filter(|rows| rows[0].sex == "F").count();
    assert_eq!(ages["all ages"][0], girls);
    // Police know 60 children, the voluntary sector 11, of them 8 known to both.
    let kinds = table(own, "agency_kinds_per_child");
    assert_eq!(kinds["one"][0], children.len() - 8);
    assert_eq!(kinds["two"][0], 8);
    let alone = table(own, "known_to_one_kind");
    assert_eq!(alone["police"][0], 60 - 8);
    assert_eq!(alone["voluntary sector"][0], 3);
    assert_eq!(alone["all kinds"][2], children.len() - 8);
    let contributors = table(own, "contributors");
    assert_eq!(contributors["Blackpool Children's Services"][1], 0);
    let gaps = own["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|section| section["id"] == "gaps")
        .unwrap()["findings"]
        .to_string();
    assert!(
        gaps.contains("No upload with records of the quarter from: Blackpool Children's Services"),
        "{gaps}"
    );

    // The board edition: no count from 1 to 5 anywhere, the voluntary sector's 3 shown as c.
    let board = json_of(
        app.get_as(
            &analyst,
            &format!("/api/v1/partnerships/{BLACKPOOL}/profiles/{QUARTER}/board"),
        )
        .await,
    )
    .await;
    let board = &board["content"];
    assert_eq!(board["edition"], "board");
    assert_eq!(
        table(board, "known_to_one_kind")["voluntary sector"][0],
        "c"
    );
    let counts = [
        "children",
        "records",
        "value",
        "female",
        "male",
        "other",
        "not recorded",
        "total",
        "one agency only",
        "several agencies of this kind",
    ];
    for section in board["sections"].as_array().unwrap() {
        for table in section["tables"].as_array().unwrap() {
            let columns: Vec<&str> = table["columns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|column| column.as_str().unwrap())
                .collect();
            for row in table["rows"].as_array().unwrap() {
                for (column, value) in columns.iter().zip(row["values"].as_array().unwrap()) {
                    if counts.contains(column)
                        && let Some(count) = value.as_u64()
                    {
                        assert!(
                            count == 0 || count > 5,
                            "{} / {} / {column}: {count} is a small count",
                            table["name"],
                            row["label"]
                        );
                    }
                }
            }
        }
    }
    for figure in ["children", "records", "new_children", "known_children"] {
        let value = &board["scale"][figure];
        assert!(
            value == "c" || value.as_u64().is_some_and(|count| count == 0 || count > 5),
            "{figure}: {value}"
        );
    }

    // A board member reads the board edition and the list, never the exact counts, and
    // generates nothing.
    let member = token(Role::BoardMember, BLACKPOOL, None);
    for (path, status) in [
        (
            format!("/api/v1/partnerships/{BLACKPOOL}/profiles"),
            StatusCode::OK,
        ),
        (
            format!("/api/v1/partnerships/{BLACKPOOL}/profiles/{QUARTER}/board"),
            StatusCode::OK,
        ),
        (
            format!("/api/v1/partnerships/{BLACKPOOL}/profiles/{QUARTER}"),
            StatusCode::FORBIDDEN,
        ),
    ] {
        assert_eq!(app.get_as(&member, &path).await.status(), status, "{path}");
    }
    assert_eq!(
        generate(&app, &member).await.status(),
        StatusCode::FORBIDDEN
    );

    // One table as CSV.
    let csv = app
        .get_as(
            &analyst,
            &format!(
                "/api/v1/partnerships/{BLACKPOOL}/profiles/{QUARTER}/board?format=csv&table=age_and_sex"
            ),
        )
        .await;
    assert_eq!(csv.status(), StatusCode::OK);
    let text = csv.text().await.unwrap();
    assert!(
        text.starts_with("age band,female,male,other,not recorded,total\n"),
        "{text}"
    );
    let unknown = app
        .get_as(
            &analyst,
            &format!("/api/v1/partnerships/{BLACKPOOL}/profiles/{QUARTER}?format=csv&table=nope"),
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    assert!(unknown.text().await.unwrap().contains("age_and_sex"));

    // Asked for again without new records: the version stands.
    let again = generate(&app, &analyst).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(json_of(again).await["version"], 1);
    // A late batch changes nothing until a new version is asked for.
    let late = app
        .register_agency_of_kind("Blackpool Health", AgencyKind::Health, &[BLACKPOOL])
        .await;
    let late_rows: Vec<Row> = (200..210)
        .map(|child| Row {
            child,
            on: "2025-12-01".to_owned(),
            indicators: "sexual_health",
            age: 16,
            sex: "F",
        })
        .collect();
    upload(&app, late, &late_rows, &cells).await;
    let unchanged = json_of(
        app.get_as(
            &analyst,
            &format!("/api/v1/partnerships/{BLACKPOOL}/profiles/{QUARTER}"),
        )
        .await,
    )
    .await;
    assert_eq!(unchanged["version"], 1);
    assert_eq!(unchanged["content"]["scale"]["children"], children.len());
    let second = generate(&app, &analyst).await;
    assert_eq!(second.status(), StatusCode::CREATED);
    let second = json_of(second).await;
    assert_eq!(second["version"], 2);
    assert_eq!(second["scheduled"], false);
    let latest = json_of(
        app.get_as(
            &analyst,
            &format!("/api/v1/partnerships/{BLACKPOOL}/profiles/{QUARTER}"),
        )
        .await,
    )
    .await;
    assert_eq!(latest["version"], 2);
    assert_eq!(latest["content"]["scale"]["children"], children.len() + 10);
    let first = json_of(
        app.get_as(
            &analyst,
            &format!("/api/v1/partnerships/{BLACKPOOL}/profiles/{QUARTER}?version=1"),
        )
        .await,
    )
    .await;
    assert_eq!(
        first["content"],
        own.clone(),
        "version 1 is frozen as it was"
    );
    // Profiles are never edited.
    let client = atlas_store::connect_admin(&app.database_url(), Duration::from_secs(5))
        .await
        .unwrap();
    let edit = client
        .execute("UPDATE profiles SET content = '{}' WHERE version = 1", &[])
        .await;
    assert!(edit.is_err(), "the table refuses an edit");
}

#[tokio::test]
async fn profiles_are_the_partnerships_own_and_periods_must_be_closed_quarters() {
    let app = spawn_ready_app_with(|_| {}).await;
    app.import_lancashire_cluster().await;
    let analyst = token(Role::PartnershipAnalyst, BLACKPOOL, None);
    for (period, status, says) in [
        ("2025-13", StatusCode::BAD_REQUEST, "not a calendar quarter"),
        ("2099-Q1", StatusCode::BAD_REQUEST, "has not ended"),
        ("2025-Q4", StatusCode::CONFLICT, "nothing to profile"),
    ] {
        let response = app
            .client
            .post(app.url(&format!("/api/v1/partnerships/{BLACKPOOL}/profiles")))
            .bearer_auth(&analyst)
            .json(&json!({ "period": period }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{period}");
        assert!(response.text().await.unwrap().contains(says), "{period}");
    }
    let neighbour = token(Role::PartnershipAnalyst, "E10000017", None);
    let response = app
        .get_as(
            &neighbour,
            &format!("/api/v1/partnerships/{BLACKPOOL}/profiles"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let missing = app
        .get_as(
            &analyst,
            &format!("/api/v1/partnerships/{BLACKPOOL}/profiles/2025-Q1"),
        )
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let unknown = app
        .get_as(
            &analyst,
            &format!("/api/v1/partnerships/{BLACKPOOL}/profiles/2025-Q1?edition=board"),
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    assert!(unknown.text().await.unwrap().contains("unknown parameter"));
}

#[tokio::test]
async fn a_board_records_its_self_assessment_beside_atlas_evidence_and_keeps_its_history() {
    let app = spawn_ready_app_with(|_| {}).await;
    app.import_lancashire_cluster().await;
    let police = app
        .register_agency_of_kind("Blackpool Police", AgencyKind::Police, &[BLACKPOOL])
        .await;
    app.register_agency_of_kind("Blackpool Youth Trust", AgencyKind::Vcs, &[BLACKPOOL])
        .await;
    let cells = spread_cells(&app).await;
    // Police records in the quarter the evidence looks at: the profile schedule's.
    let today = chrono::Utc::now().date_naive();
    let quarter = atlas_app::profiles::due_quarter(today, 35);
    let (first, _) = atlas_app::export::quarter(&quarter).unwrap();
    let rows: Vec<Row> = (0..12)
        .map(|child| Row {
            child,
            on: (first + chrono::Days::new(u64::from(child))).to_string(),
            indicators: "missing",
            age: 14,
            sex: "F",
        })
        .collect();
    upload(&app, police, &rows, &cells).await;
    let analyst = token(Role::PartnershipAnalyst, BLACKPOOL, None);
    let generated = app
        .client
        .post(app.url(&format!("/api/v1/partnerships/{BLACKPOOL}/profiles")))
        .bearer_auth(&analyst)
        .json(&json!({ "period": quarter }))
        .send()
        .await
        .unwrap();
    assert_eq!(generated.status(), StatusCode::CREATED);

    let page = json_of(
        app.get_as(
            &analyst,
            &format!("/api/v1/partnerships/{BLACKPOOL}/self-assessment"),
        )
        .await,
    )
    .await;
    assert_eq!(page["themes"].as_array().unwrap().len(), 5);
    assert!(
        page["source"]
            .as_str()
            .unwrap()
            .contains("Key Questions for Lead Members")
    );
    assert_eq!(page["latest"], Value::Null);
    let evidence: BTreeMap<String, String> = page["atlas_evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["question"].as_str().unwrap().to_owned(),
                item["findings"].to_string(),
            )
        })
        .collect();
    assert!(
        evidence["understanding.data_shared"].contains(&format!(
            "Records for {quarter} were shared with Atlas by 1 agency of 1 kind: police."
        )),
        "{evidence:?}"
    );
    assert!(
        evidence["understanding.data_shared"].contains("voluntary sector"),
        "{evidence:?}"
    );
    assert!(
        evidence["understanding.profiled"].contains(&format!("{quarter}: profiled")),
        "{evidence:?}"
    );
    assert!(
        evidence["understanding.profiled"].contains("has no records from the voluntary sector"),
        "{evidence:?}"
    );
    // The evidence never shows an exact count: board members read it. 12 children give the
    // board edition's figure, perturbed by at most 2.
    let board = json_of(
        app.get_as(
            &analyst,
            &format!("/api/v1/partnerships/{BLACKPOOL}/profiles/{quarter}/board"),
        )
        .await,
    )
    .await;
    let published = board["content"]["scale"]["children"].as_u64().unwrap();
    assert!((10..=14).contains(&published));
    assert!(
        evidence["understanding.assumed"]
            .contains(&format!("Atlas holds records of {published} children")),
        "{evidence:?}"
    );

    let record = |answers: Value| {
        let client = app.client.clone();
        let url = app.url(&format!(
            "/api/v1/partnerships/{BLACKPOOL}/self-assessments"
        ));
        let analyst = analyst.clone();
        async move {
            client
                .post(url)
                .bearer_auth(analyst)
                .json(&json!({ "assessed_on": today.to_string(), "answers": answers }))
                .send()
                .await
                .unwrap()
        }
    };
    let yesterday = (today - chrono::Days::new(1)).to_string();
    let first_answers = json!([
        {"question": "understanding.profiled", "rating": "red", "evidence": "No profile before Atlas."},
    ]);
    let response = record(first_answers).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(json_of(response).await["version"], 1);
    let second_answers = json!([
        {"question": "understanding.profiled", "rating": "amber", "evidence": "Quarterly profiles from Atlas; no voluntary-sector records yet.",
         "actions": [{"action": "Bring the youth trust's records into Atlas", "owner": "Business manager", "due": yesterday, "status": "open"}]},
        {"question": "policing.disruption", "rating": "green"},
    ]);
    let response = record(second_answers).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let second = json_of(response).await;
    assert_eq!(second["version"], 2);
    assert!(!second["atlas_evidence"].as_array().unwrap().is_empty());

    let page = json_of(
        app.get_as(
            &analyst,
            &format!("/api/v1/partnerships/{BLACKPOOL}/self-assessment"),
        )
        .await,
    )
    .await;
    assert_eq!(page["latest"]["version"], 2);
    assert_eq!(page["history"].as_array().unwrap().len(), 2);
    let changed: Vec<(String, Value, Value)> = page["changes_since_previous"]
        .as_array()
        .unwrap()
        .iter()
        .map(|change| {
            (
                change["question"].as_str().unwrap().to_owned(),
                change["before"].clone(),
                change["now"].clone(),
            )
        })
        .collect();
    assert_eq!(
        changed,
        [
            (
                "understanding.profiled".to_owned(),
                json!("red"),
                json!("amber")
            ),
            (
                "policing.disruption".to_owned(),
                Value::Null,
                json!("green")
            ),
        ]
    );
    assert_eq!(page["overdue_actions"].as_array().unwrap().len(), 1);
    assert_eq!(page["overdue_actions"][0]["days_overdue"], 1);
    let first = json_of(
        app.get_as(
            &analyst,
            &format!("/api/v1/partnerships/{BLACKPOOL}/self-assessments/1"),
        )
        .await,
    )
    .await;
    assert_eq!(
        first["answers"][0]["rating"], "red",
        "version 1 is kept as it was"
    );

    // Refused: identifiers, unknown questions, other partnerships.
    let response = record(
        json!([{"question": "support.early", "rating": "red", "evidence": "Child 943 476 5919"}]),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("NHS number"));
    let response = record(json!([{"question": "support.nope", "rating": "red"}])).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let neighbour = token(Role::PartnershipAnalyst, "E10000017", None);
    let response = app
        .get_as(
            &neighbour,
            &format!("/api/v1/partnerships/{BLACKPOOL}/self-assessment"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let member = token(Role::BoardMember, BLACKPOOL, None);
    let read = app
        .get_as(
            &member,
            &format!("/api/v1/partnerships/{BLACKPOOL}/self-assessment"),
        )
        .await;
    assert_eq!(
        read.status(),
        StatusCode::OK,
        "the board reads its assessment"
    );
    let written = app
        .client
        .post(app.url(&format!(
            "/api/v1/partnerships/{BLACKPOOL}/self-assessments"
        )))
        .bearer_auth(&member)
        .json(&json!({ "assessed_on": today.to_string(), "answers": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        written.status(),
        StatusCode::FORBIDDEN,
        "a board member records nothing"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE action = 'assessment.record' AND outcome = 'allowed'")
            .await,
        2
    );
}

#[tokio::test]
async fn several_server_processes_scheduling_together_store_one_version_of_each_quarter() {
    let test_db = atlas_postgres::test_db::TestDatabase::new().await;
    let schedule = |settings: &mut atlas_app::Settings| {
        settings.problem_profiles.schedule = true;
        settings.problem_profiles.check_every_secs = 1;
        settings.problem_profiles.backfill_quarters = 40;
    };
    let first = crate::support::spawn_app_with(&test_db, None, schedule).await;
    first.wait_until_ready(Duration::from_secs(20)).await;
    first.import_lancashire_cluster().await;
    let police = first
        .register_agency_of_kind("Blackpool Police", AgencyKind::Police, &[BLACKPOOL])
        .await;
    let cells = spread_cells(&first).await;
    // Three more processes on the same database, all checking every second.
    let mut others = Vec::new();
    for _ in 0..3 {
        let other = crate::support::spawn_app_with(&test_db, None, schedule).await;
        other.wait_until_ready(Duration::from_secs(20)).await;
        others.push(other);
    }
    upload(&first, police, &police_rows(), &cells).await;
    let profiled = "SELECT count(DISTINCT period) FROM profiles";
    for _ in 0..120 {
        if first.count(profiled).await == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Let every process check a few more times.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(first.count(profiled).await, 2, "2025-Q3 and 2025-Q4");
    assert_eq!(
        first.count("SELECT count(*) FROM profiles").await,
        2,
        "one version of each quarter, whichever process stored it"
    );
    assert_eq!(
        first
            .count("SELECT count(*) FROM audit_log WHERE action = 'profile.generate'")
            .await,
        2,
        "one audit entry per stored profile"
    );
    drop(others);
}
