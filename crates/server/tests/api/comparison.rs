//! The comparison through real HTTP: the partnership's own figures exact, its neighbours'
//! shown only under a `comparison` agreement and then only gated, whole closed periods only,
//! rates per 10,000 children equal to a hand computation, and approximate populations labelled
//! as such.

use atlas_access::Role;
use atlas_domain::AgencyKind;
use reqwest::StatusCode;
use serde_json::Value;

use crate::analysis::{BLACKPOOL, Planted, planted};
use crate::support::token;

const LANCASHIRE: &str = "E10000017";

/// Rounds to one decimal place, as rates are shown.
fn one_place(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

#[tokio::test]
async fn a_partnership_sees_itself_exactly_and_its_neighbours_only_controlled() {
    let Planted {
        app, coverage_r8, ..
    } = planted().await;
    // Lancashire, Blackpool's one neighbour here, has three children in February 2024.
    let lancashire_police = app
        .register_agency_of_kind("Lancashire Police", AgencyKind::Police, &[LANCASHIRE])
        .await;
    let mut rows = String::from("subject,record_kind,occurred_on,lat,lon,indicators\n");
    for child in 0..3 {
        rows.push_str(&format!(
            "{:064x},incident,2024-02-1{child},53.7590,-2.6990,missing\n",
            900_000 + child
        ));
    }
    let response = app
        .upload(
            lancashire_police,
            "text/csv",
            rows.into_bytes(),
            "/api/v1/extracts",
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    app.count(
        "WITH added AS (INSERT INTO child_populations (partnership_code, local_authority_code, year, population_0_17, approximate, source) \
         VALUES ('E06000009', 'E06000009', 2024, 29512, false, 'fixture') RETURNING 1) SELECT count(*) FROM added",
    )
    .await;

    let analyst = token(Role::PartnershipAnalyst, BLACKPOOL, None);
    let path = format!(
        "/api/v1/partnerships/{BLACKPOOL}/comparison?from=2024-01-01&to=2024-06-30&by=quarter"
    );
    let response = app.get_as(&analyst, &path).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["rates_approximate"], false);
    let members = body["members"].as_array().unwrap();
    assert_eq!(members.len(), 2, "Blackpool and Lancashire: {body}");
    let own = &members[0];
    assert_eq!(own["code"], BLACKPOOL);
    assert_eq!(own["disclosure_controlled"], false);

    // By hand: one background child per resolution-8 cell in month 1 + i % 9, and the 70
    // cluster children in March; social care's referrals in April are of cluster children.
    let background = |months: std::ops::Range<usize>| {
        (0..coverage_r8)
            .filter(|i| months.contains(&(i % 9)))
            .count()
    };
    let children = background(0..6) + 70;
    let expected_rate = one_place(children as f64 * 10_000.0 / 29_512.0);
    assert_eq!(own["children"], children);
    assert!(expected_rate > 0.0);
    // Rates are annualised: a quarter's children times four.
    let (c1, c2) = (background(0..3) + 70, background(3..6) + 35);
    let q1 = one_place(c1 as f64 * 4.0 * 10_000.0 / 29_512.0);
    let q2 = one_place(c2 as f64 * 4.0 * 10_000.0 / 29_512.0);
    assert_eq!(
        own["rate_per_10000"],
        one_place((q1 + q2) / 2.0),
        "the mean of the period rates"
    );
    assert_eq!(body["window"]["months"], 6);
    assert_eq!(own["rank"], 1, "the only rate shown");
    assert_eq!(own["difference_from_group_mean"], 0.0);
    let periods = own["periods"].as_array().unwrap();
    assert_eq!(periods[0]["period"], "2024-Q1");
    assert_eq!(periods[0]["rate_per_10000"], q1);
    assert_eq!(periods[1]["rate_per_10000"], q2);
    assert_eq!(periods[1]["change_in_rate"], one_place(q2 - q1));
    let travel = atlas_analytics::comparison::direction(
        u32::try_from(c1).unwrap(),
        29_512,
        u32::try_from(c2).unwrap(),
        29_512,
    )
    .unwrap();
    assert_eq!(
        periods[1]["direction"],
        serde_json::to_value(travel).unwrap()
    );
    assert_eq!(
        periods[0]["direction"],
        Value::Null,
        "nothing before the first period"
    );
    assert_eq!(
        own["records_by_agency_kind"]["social_care"], 35,
        "exact inside the partnership"
    );

    // Without an agreement sharing `comparison`, the neighbour is listed without figures.
    let neighbour = &members[1];
    assert_eq!(neighbour["code"], LANCASHIRE);
    assert_eq!(neighbour["figures_shared"], false);
    assert!(neighbour["records"].is_null() && neighbour["children"].is_null());
    assert!(
        neighbour["no_data"].is_null(),
        "not even whether it has data"
    );
    assert!(neighbour["rank"].is_null());
    assert!(
        neighbour["periods"]
            .as_array()
            .unwrap()
            .iter()
            .all(|period| period["records"].is_null()
                && period["children"].is_null()
                && period["no_data"].is_null()),
        "{neighbour}"
    );
    let admin = token(Role::Admin, LANCASHIRE, None);
    let created = app
        .client
        .post(app.url("/api/v1/admin/agreements"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"from": LANCASHIRE, "to": BLACKPOOL, "scopes": ["comparison"], "valid_from": "2024-01-01"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);

    // With it: three children and three records, so `c`, and no rate.
    let body: Value = app.get_as(&analyst, &path).await.json().await.unwrap();
    let neighbour = &body["members"][1];
    assert_eq!(neighbour["figures_shared"], true);
    assert_eq!(neighbour["disclosure_controlled"], true);
    assert_eq!(neighbour["periods"][0]["children"], "c");
    assert_eq!(neighbour["periods"][0]["records"], "c");
    // Lancashire's only extract covers February: the second quarter has no data, not zero.
    assert_eq!(neighbour["periods"][0]["no_data"], false);
    assert_eq!(neighbour["periods"][1]["no_data"], true);
    assert!(neighbour["periods"][1]["records"].is_null());
    assert_eq!(neighbour["records"], "c");
    assert!(
        neighbour["children"].is_null(),
        "distinct children over several periods are not published"
    );
    assert!(neighbour["rate_per_10000"].is_null());
    assert!(neighbour["rank"].is_null());
    let threshold = body["disclosure"]["threshold"].as_u64().unwrap();
    let mut figures = vec![neighbour["records"].clone()];
    for period in neighbour["periods"].as_array().unwrap() {
        if period["no_data"] == true {
            continue;
        }
        figures.push(period["records"].clone());
        figures.push(period["children"].clone());
    }
    for map in ["records_by_agency_kind", "records_by_indicator"] {
        figures.extend(neighbour[map].as_object().unwrap().values().cloned());
    }
    for figure in figures {
        assert!(
            figure == "c" || figure.as_u64().is_some_and(|n| n == 0 || n > threshold),
            "{figure} about the neighbour is not controlled: {neighbour}"
        );
    }

    // Whole periods only: windows a day apart give the same answer, and a period that has not
    // ended is left out and named.
    let day_apart = |to: &str| {
        format!("/api/v1/partnerships/{BLACKPOOL}/comparison?from=2024-01-01&to={to}&by=month")
    };
    let (a, b): (Value, Value) = (
        app.get_as(&analyst, &day_apart("2024-02-10"))
            .await
            .json()
            .await
            .unwrap(),
        app.get_as(&analyst, &day_apart("2024-02-11"))
            .await
            .json()
            .await
            .unwrap(),
    );
    assert_eq!(a, b, "`to` snaps to the end of its month");
    assert_eq!(a["to"], "2024-02-29");
    let today = chrono::Utc::now().date_naive();
    let running: Value = app
        .get_as(
            &analyst,
            &format!("/api/v1/partnerships/{BLACKPOOL}/comparison?from=2024-01-01&to={today}"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(running["left_out"]["period"].is_string(), "{running}");
    assert!(
        running["to"].as_str().unwrap() < today.to_string().as_str(),
        "ends before today: {running}"
    );

    // Approximate populations are labelled.
    app.count(
        "WITH changed AS (UPDATE child_populations SET approximate = true RETURNING 1) SELECT count(*) FROM changed",
    )
    .await;
    let body: Value = app.get_as(&analyst, &path).await.json().await.unwrap();
    assert_eq!(body["rates_approximate"], true);
    assert!(body["rates_note"].as_str().unwrap().contains("APPROXIMATE"));
    assert_eq!(body["members"][0]["population"]["approximate"], true);
    let response = app
        .get_as(
            &analyst,
            &format!(
                "/api/v1/partnerships/{BLACKPOOL}/comparison?from={}",
                chrono::Utc::now().date_naive()
            ),
        )
        .await;
    assert_eq!(
        response.status(),
        StatusCode::BAD_REQUEST,
        "nothing has ended"
    );

    // Bad questions, and other people.
    for (query, says) in [
        ("by=week", "quarter or month"),
        ("from=2024-06-01&to=2024-01-01", "after"),
        ("from=2000-01-01&to=2024-01-01&by=month", "at most 60"),
        ("colour=red", "colour"),
        ("group=friends", "neighbours or comparators"),
    ] {
        let response = app
            .get_as(
                &analyst,
                &format!("/api/v1/partnerships/{BLACKPOOL}/comparison?{query}"),
            )
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        assert!(response.text().await.unwrap().contains(says), "{query}");
    }
    let response = app
        .get_as(
            &analyst,
            &format!("/api/v1/partnerships/{BLACKPOOL}/comparison?group=comparators"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.text().await.unwrap().contains("--comparators"));
    let viewer = token(Role::PartnerViewer, LANCASHIRE, None);
    assert_eq!(
        app.get_as(&viewer, &path).await.status(),
        StatusCode::FORBIDDEN
    );
}
