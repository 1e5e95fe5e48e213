//! A partnership's grid and hotspots through real HTTP: exact counts, filters, formats, the
//! cache following new and withdrawn batches, and a planted cluster found as a 99 % hotspot.

use atlas_access::Role;
use atlas_domain::AgencyKind;
use chrono::Datelike as _;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{TestApp, agency_token, spawn_ready_app_with, token};

pub(crate) const BLACKPOOL: &str = "E06000009";
const LANCASHIRE: &str = "E10000017";
const TOWN_CENTRE: (f64, f64) = (53.8175, -3.0357);
/// Children in the planted cluster (10 per cell of the town centre's ring); social care know
/// every other one (an even number, so exactly half).
const CLUSTER: usize = 70;

/// Blackpool with two agencies: police report the planted cluster and one record at the centre
/// of every resolution-8 cell; social care know half the cluster's children again.
pub(crate) struct Planted {
    pub(crate) app: TestApp,
    pub(crate) police: uuid::Uuid,
    pub(crate) social_care: uuid::Uuid,
    /// Resolution-8 cells with a background child (those holding a cell wholly inside Blackpool).
    pub(crate) coverage_r8: usize,
}

pub(crate) async fn planted() -> Planted {
    let app = spawn_ready_app_with(|_| {}).await;
    app.import_lancashire_cluster().await;
    let police = app
        .register_agency_of_kind("Blackpool Police", AgencyKind::Police, &[BLACKPOOL])
        .await;
    let social_care = app
        .register_agency_of_kind(
            "Blackpool Social Care",
            AgencyKind::SocialCare,
            &[BLACKPOOL],
        )
        .await;
    let cells = one_cell_per_r8(&app).await;
    let mut police_rows = String::from("subject,record_kind,occurred_on,h3,indicators,age\n");
    for (i, cell) in cells.values().enumerate() {
        police_rows.push_str(&format!(
            "{:064x},incident,2024-0{}-15,{cell},missing,15\n",
            10_000 + i,
            1 + i % 9,
        ));
    }
    // The cluster: CLUSTER children over the town centre's resolution-8 cell and its ring.
    let centre: h3o::CellIndex = centre_cell(h3o::Resolution::Eight).parse().unwrap();
    let cluster: Vec<h3o::CellIndex> = centre
        .grid_disk::<Vec<_>>(1)
        .iter()
        .filter_map(|cell| cells.get(cell).copied())
        .collect();
    assert_eq!(
        cluster.len(),
        7,
        "the town centre's ring lies inside Blackpool"
    );
    let mut social_rows = String::from("subject,record_kind,occurred_on,h3,indicators,age\n");
    for child in 0..CLUSTER {
        let cell = cluster[child % cluster.len()];
        police_rows.push_str(&format!(
            "{child:064x},intelligence,2024-03-{:02},{cell},gifts_money;older_associate,14\n",
            1 + child % 28,
        ));
        if child % 2 == 0 {
            social_rows.push_str(&format!(
                "{child:064x},referral,2024-04-{:02},{cell},gifts_money,14\n",
                1 + child % 28,
            ));
        }
    }
    for (agency, rows) in [(police, police_rows), (social_care, social_rows)] {
        upload_csv(&app, agency, rows).await;
    }
    Planted {
        app,
        police,
        social_care,
        coverage_r8: cells.len(),
    }
}

/// One resolution-9 cell wholly inside Blackpool within each resolution-8 cell holding one.
async fn one_cell_per_r8(
    app: &TestApp,
) -> std::collections::BTreeMap<h3o::CellIndex, h3o::CellIndex> {
    let mut cells = std::collections::BTreeMap::new();
    for cell in app.whole_cells(BLACKPOOL).await {
        cells
            .entry(cell.parent(h3o::Resolution::Eight).unwrap())
            .or_insert(cell);
    }
    cells
}

/// Uploads `rows` (CSV) as `agency`'s extract and checks it was stored.
/// Uploads `rows` (a CSV extract) as an analyst of `agency` and checks it was stored.
pub(crate) async fn upload_csv(app: &TestApp, agency: uuid::Uuid, rows: String) {
    let response = app
        .upload(agency, "text/csv", rows.into_bytes(), "/api/v1/extracts")
        .await;
    let status = response.status();
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        response.text().await.unwrap()
    );
}

fn centre_cell(resolution: h3o::Resolution) -> String {
    h3o::LatLng::new(TOWN_CENTRE.0, TOWN_CENTRE.1)
        .unwrap()
        .to_cell(resolution)
        .to_string()
}

async fn json(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_grid_counts_records_children_and_overlap_with_filters_and_formats() {
    let Planted {
        app,
        police,
        coverage_r8,
        ..
    } = planted().await;
    let analyst = token(Role::PartnershipAnalyst, BLACKPOOL, None);
    let path = format!("/api/v1/partnerships/{BLACKPOOL}/grid");
    let grid = json(app.get_as(&analyst, &path).await).await;
    assert_eq!(grid["resolution"], 8);
    let cells = grid["cells"].as_array().unwrap();
    assert_eq!(
        cells.len(),
        coverage_r8,
        "every cell has its background record"
    );
    let sum = |cells: &[Value], field: &str| -> u64 {
        cells.iter().map(|cell| cell[field].as_u64().unwrap()).sum()
    };
    let (cluster, halves) = (CLUSTER as u64, CLUSTER as u64 / 2);
    assert_eq!(sum(cells, "records"), coverage_r8 as u64 + cluster + halves);
    assert_eq!(
        sum(cells, "subjects"),
        coverage_r8 as u64 + cluster,
        "a child counts once"
    );
    assert_eq!(sum(cells, "multi_agency_subjects"), halves);
    let centre = cells
        .iter()
        .find(|cell| cell["cell"] == centre_cell(h3o::Resolution::Eight))
        .unwrap();
    assert_eq!(centre["agencies"], 2);
    assert_eq!(
        centre["agency_kinds"],
        serde_json::json!(["police", "social_care"])
    );

    // An agency analyst of the partnership sees the same grid; filters narrow it.
    let own_agency = agency_token(police);
    let filtered = json(
        app.get_as(
            &own_agency,
            &format!("{path}?resolution=9&indicators=gifts_money,older_associate&indicator_match=all&from=2024-03-01&to=2024-03-31"),
        )
        .await,
    )
    .await;
    assert_eq!(filtered["resolution"], 9);
    let cells = filtered["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 7, "the cluster's cells only");
    assert_eq!(sum(cells, "records"), cluster);
    let by_kind = json(
        app.get_as(
            &analyst,
            &format!("{path}?record_kinds=referral&age_bands=13-15"),
        )
        .await,
    )
    .await;
    assert_eq!(sum(by_kind["cells"].as_array().unwrap(), "records"), halves);

    let csv = app.get_as(&analyst, &format!("{path}?format=csv")).await;
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await.unwrap();
    assert!(text.starts_with(
        "hex_id,records,subjects,agencies,agency_kinds,multi_agency_subjects,first,last,wkt\n"
    ));
    assert_eq!(text.lines().count(), coverage_r8 + 1);
    let geojson = app
        .client
        .get(app.url(&path))
        .bearer_auth(&analyst)
        .header("accept", "application/geo+json")
        .send()
        .await
        .unwrap();
    assert_eq!(geojson.headers()["content-type"], "application/geo+json");
    let collection: Value = geojson.json().await.unwrap();
    let feature = &collection["features"][0];
    let ring = feature["geometry"]["coordinates"][0].as_array().unwrap();
    assert_eq!(ring.len(), 7, "a hexagon, closed");
    assert_eq!(ring[0], ring[6]);
    assert!(feature["properties"]["records"].is_u64());

    for (query, names) in [
        ("?resolution=10", "resolution"),
        ("?from=2024-13-01", "from"),
        ("?from=2024-05-01&to=2024-01-01", "before"),
        ("?agency_kinds=wizards", "agency_kinds"),
        ("?indicator_match=some", "indicator_match"),
        ("?format=xlsx", "format"),
        ("?colour=red", "unknown parameter `colour`"),
        ("?sexes=F&sexes=M", "twice"),
    ] {
        let response = app.get_as(&analyst, &format!("{path}{query}")).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["message"].as_str().unwrap().contains(names),
            "{query}: {body}"
        );
    }
}

#[tokio::test]
async fn the_grid_follows_new_and_withdrawn_batches_at_once() {
    let Planted {
        app, social_care, ..
    } = planted().await;
    let analyst = token(Role::PartnershipAnalyst, BLACKPOOL, None);
    let path = format!("/api/v1/partnerships/{BLACKPOOL}/grid?record_kinds=referral");
    let before = json(app.get_as(&analyst, &path).await).await;
    assert_eq!(before["cells"].as_array().unwrap().len(), 7);
    let batches = app.count("SELECT count(*) FROM batches").await;
    assert_eq!(batches, 2);
    let client = atlas_store::connect_admin(&app.database_url(), std::time::Duration::from_secs(5))
        .await
        .unwrap();
    let batch: uuid::Uuid = client
        .query_one(
            "SELECT id FROM batches WHERE agency_id = $1",
            &[&social_care],
        )
        .await
        .unwrap()
        .get(0);
    let withdrawn = app
        .client
        .delete(app.url(&format!("/api/v1/batches/{batch}")))
        .bearer_auth(agency_token(social_care))
        .send()
        .await
        .unwrap();
    assert_eq!(withdrawn.status(), StatusCode::OK);
    let after = json(app.get_as(&analyst, &path).await).await;
    assert_eq!(
        after["cells"],
        serde_json::json!([]),
        "the withdrawn referrals are gone"
    );
}

#[tokio::test]
async fn the_planted_cluster_is_a_99_percent_hotspot() {
    let Planted { app, .. } = planted().await;
    let study_area = app.coverage(BLACKPOOL, 8).await.len();
    let analyst = token(Role::PartnershipAnalyst, BLACKPOOL, None);
    let path = format!("/api/v1/partnerships/{BLACKPOOL}/hotspots");
    let result = json(
        app.get_as(
            &analyst,
            &format!("{path}?resolution=8&adjust=none&value=subjects"),
        )
        .await,
    )
    .await;
    assert_eq!(result["study_area_cells"], study_area);
    assert_eq!(result["settings"]["k"], 1);
    assert_eq!(result["settings"]["kernel"], "uniform");
    assert_eq!(result["settings"]["value"], "subjects");
    assert_eq!(
        result["settings"]["test"], "randomisation",
        "a couple of children per cell: decided by the randomisation test, not the normal"
    );
    assert!(
        result["settings"]["warning"].is_null(),
        "{}",
        result["settings"]
    );
    let cells = result["cells"].as_array().unwrap();
    assert_eq!(
        cells.len(),
        study_area,
        "zeros included: the whole coverage"
    );
    let centre = cells
        .iter()
        .find(|cell| cell["cell"] == centre_cell(h3o::Resolution::Eight))
        .unwrap();
    assert_eq!(
        centre["value"], 11,
        "10 cluster children and the background record"
    );
    assert_eq!(centre["bin"], 3, "{centre}");
    assert_eq!(centre["significant"], true);
    assert!(centre.get("p_sim").is_none());
    assert!(
        centre["p_randomisation"].as_f64().unwrap() < 1e-4,
        "the decision's p-value: {centre}"
    );
    // The normal approximation also calls the centre's neighbours 99 % hotspots, because their
    // sums hold the centre's 11; under randomisation a sum of seven draws holds that one value
    // one time in seven, so they are not.
    let near: Vec<String> = centre_cell(h3o::Resolution::Eight)
        .parse::<h3o::CellIndex>()
        .unwrap()
        .grid_disk::<Vec<_>>(1)
        .iter()
        .map(ToString::to_string)
        .collect();
    let hot: Vec<&Value> = cells.iter().filter(|cell| cell["bin"] == 3).collect();
    assert!(
        !hot.is_empty()
            && hot
                .iter()
                .all(|cell| near.iter().any(|n| cell["cell"] == n.as_str())),
        "hotspots only at the cluster: {hot:?}"
    );
    // One hot spot area, named after the town, holding the cluster, and said in words.
    let areas = result["areas"].as_array().unwrap();
    assert_eq!(areas.len(), 1, "{areas:?}");
    let area = &areas[0];
    assert_eq!(area["confidence"], 99);
    assert!(
        area["name"].as_str().unwrap().contains("Blackpool"),
        "{area}"
    );
    assert!(
        area["cells"]
            .as_array()
            .unwrap()
            .contains(&Value::from(centre_cell(h3o::Resolution::Eight))),
        "{area}"
    );
    assert!(area["children"].as_u64().unwrap() >= 10, "{area}");
    let summary = result["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("1 hot spot area at 95 % confidence or more: ")
            && summary.contains(area["name"].as_str().unwrap()),
        "{summary}"
    );
    assert!(
        result["place_attribution"]
            .as_str()
            .unwrap()
            .contains("GeoNames")
    );
    // The area's children month by month: the planted cluster has no trend to tell, and the
    // answer says from how many whole months.
    let trend = &area["trend"];
    assert!(
        [
            "no clear trend",
            "too few months to tell",
            "rising",
            "falling"
        ]
        .contains(&trend["direction"].as_str().unwrap()),
        "{trend}"
    );
    assert!(trend["months"].as_u64().is_some(), "{trend}");
    // Every hot cell says where it is, as the area does; a quiet cell does not.
    assert!(
        hot.iter().all(|cell| cell["near"]
            .as_str()
            .is_some_and(|near| near.contains("Blackpool"))),
        "{hot:?}"
    );
    assert!(
        cells
            .iter()
            .filter(|cell| cell["bin"] == 0 && cell["too_few_children"] == false)
            .all(|cell| cell.get("near").is_none())
    );
    let normal_hot = cells
        .iter()
        .filter(|cell| cell["p"].as_f64().unwrap() < 1e-3 && cell["z"].as_f64().unwrap() > 0.0)
        .count();
    assert!(
        normal_hot > hot.len(),
        "{normal_hot} cells have normal p < 0.001"
    );

    // A neighbourhood of 19 cells is a large share of Blackpool's resolution-8 cells: on raw
    // counts the randomisation test (draws with replacement) would lose power there, so the
    // conditional permutation test runs automatically, with as many permutations as allowed.
    let small = json(
        app.get_as(&analyst, &format!("{path}?resolution=8&adjust=none&k=2"))
            .await,
    )
    .await;
    assert_eq!(
        small["settings"]["test"], "permutation",
        "{}",
        small["settings"]
    );
    assert_eq!(small["settings"]["permutations"], 9_999);
    let centre_small = small["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|cell| cell["cell"] == centre_cell(h3o::Resolution::Eight))
        .unwrap();
    assert_eq!(centre_small["significant"], true, "{centre_small}");

    let permuted = json(
        app.get_as(&analyst, &format!("{path}?adjust=none&permutations=99&k=2"))
            .await,
    )
    .await;
    let centre = permuted["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|cell| cell["cell"] == centre_cell(h3o::Resolution::Eight))
        .unwrap();
    assert!(
        (centre["p_sim"].as_f64().unwrap() - 0.01).abs() < 1e-12,
        "{centre}"
    );
    assert_eq!(permuted["settings"]["seed"], 20_261_128);
    // 99 permutations give no p-value below 2 / 100: over Blackpool's cells at alpha 0.05 more
    // cells than the cluster holds would have to reach it together, so none passes, and the
    // warning says why. It is given only when true: enough permutations, and cells pass.
    let passed = |answer: &Value| {
        answer["cells"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|cell| cell["significant"] == true)
            .count()
    };
    assert_eq!(passed(&permuted), 0);
    let warning = permuted["settings"]["warning"].as_str().unwrap();
    assert!(
        warning.contains("no cell passed") && warning.contains("at least"),
        "{warning}"
    );
    let enough = json(
        app.get_as(
            &analyst,
            &format!("{path}?adjust=none&permutations=9999&k=2"),
        )
        .await,
    )
    .await;
    assert!(passed(&enough) > 0, "the cluster passes with 9,999");
    assert!(
        enough["settings"]["warning"].is_null(),
        "{}",
        enough["settings"]
    );
    // The permutation test sums neighbourhoods unweighted: it is refused with another kernel
    // rather than answer as if it had used it.
    let weighted = app
        .get_as(
            &analyst,
            &format!("{path}?adjust=none&permutations=99&kernel=gaussian"),
        )
        .await;
    assert_eq!(weighted.status(), StatusCode::BAD_REQUEST);
    let body: Value = weighted.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("uniform kernel only"),
        "{body}"
    );
    let again = json(
        app.get_as(&analyst, &format!("{path}?adjust=none&permutations=99&k=2"))
            .await,
    )
    .await;
    assert_eq!(permuted, again, "the same question gets the same answer");

    for query in [
        "?k=4",
        "?kernel=epanechnikov",
        "?value=money",
        "?permutations=100000",
        "?alpha=1.5",
    ] {
        let response = app.get_as(&analyst, &format!("{path}{query}")).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
    }
    let lancashire = token(Role::PartnershipAnalyst, "E10000017", None);
    let too_much = app
        .get_as(
            &lancashire,
            "/api/v1/partnerships/E10000017/hotspots?resolution=9&adjust=none&permutations=9999",
        )
        .await;
    assert_eq!(too_much.status(), StatusCode::BAD_REQUEST);
    let body: Value = too_much.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("more work"),
        "{body}"
    );
    let agency_analyst = token(Role::AgencyAnalyst, BLACKPOOL, Some(uuid::Uuid::new_v4()));
    assert_eq!(
        app.get_as(&agency_analyst, &path).await.status(),
        StatusCode::FORBIDDEN,
        "agency analysts see grids, not analyses"
    );
    let neighbour = token(Role::PartnershipAnalyst, "E10000017", None);
    assert_eq!(
        app.get_as(&neighbour, &path).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get_as(&analyst, "/api/v1/partnerships/E10000099/hotspots")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_cluster_that_appears_in_the_last_months_is_an_emerging_hotspot() {
    let app = spawn_ready_app_with(|_| {}).await;
    app.import_lancashire_cluster().await;
    let police = app.register_agency("Blackpool Police", &[BLACKPOOL]).await;
    let cells = one_cell_per_r8(&app).await;
    // A quiet year: one record per cell every other month; then, from October, a cluster over
    // the town centre's ring.
    let mut rows = String::from("subject,record_kind,occurred_on,h3,indicators\n");
    let mut subject = 0_u32;
    for month in 1..=12_u32 {
        for (i, cell) in cells.values().enumerate() {
            if (i + month as usize).is_multiple_of(2) {
                subject += 1;
                rows.push_str(&format!(
                    "{subject:064x},incident,2024-{month:02}-10,{cell},missing\n"
                ));
            }
        }
    }
    let centre: h3o::CellIndex = centre_cell(h3o::Resolution::Eight).parse().unwrap();
    for month in 10..=12_u32 {
        for ring_cell in centre.grid_disk::<Vec<_>>(1) {
            for _ in 0..8 {
                subject += 1;
                rows.push_str(&format!(
                    "{subject:064x},incident,2024-{month:02}-20,{},missing\n",
                    cells[&ring_cell]
                ));
            }
        }
    }
    upload_csv(&app, police, rows).await;

    let analyst = token(Role::PartnershipAnalyst, BLACKPOOL, None);
    let path = format!("/api/v1/partnerships/{BLACKPOOL}/emerging");
    let result = json(
        app.get_as(
            &analyst,
            &format!("{path}?resolution=8&from=2024-01-01&to=2024-12-31"),
        )
        .await,
    )
    .await;
    assert_eq!(result["steps"].as_array().unwrap().len(), 12);
    assert_eq!(result["settings"]["step"], "month");
    // No small-area populations imported here: the LSOAs shipped with Atlas stand in, and the
    // answer says so.
    assert_eq!(result["settings"]["adjust"], "population");
    assert!(result["settings"]["warning"].is_null());
    assert!(
        result["settings"]["population"]["sources"][0]
            .as_str()
            .unwrap()
            .contains("shipped with Atlas"),
        "{}",
        result["settings"]
    );
    let cells = result["cells"].as_array().unwrap();
    assert_eq!(
        cells.len(),
        result["study_area_cells"].as_u64().unwrap() as usize
    );
    let centre_result = cells
        .iter()
        .find(|cell| cell["cell"] == centre.to_string())
        .unwrap();
    assert!(
        ["consecutive_hot_spot", "new_hot_spot"]
            .contains(&centre_result["category"].as_str().unwrap()),
        "{centre_result}"
    );
    assert!(centre_result["trend_z"].as_f64().unwrap() > 0.0);
    let far_patterns = cells
        .iter()
        .filter(|cell| {
            let index: h3o::CellIndex = cell["cell"].as_str().unwrap().parse().unwrap();
            index.grid_distance(centre).unwrap_or(0) >= 4 && cell["category"] != "no_pattern"
        })
        .count();
    assert_eq!(far_patterns, 0, "nothing far from the cluster emerges");
    // Distinct children are counted by default, as on the map.
    assert_eq!(result["settings"]["value"], "subjects");

    // Counted by records when asked (each record here is a child of its own, so the
    // categories are the same), and the answer says which it counted.
    let by_records = json(
        app.get_as(
            &analyst,
            &format!("{path}?resolution=8&from=2024-01-01&to=2024-12-31&value=records"),
        )
        .await,
    )
    .await;
    assert_eq!(by_records["settings"]["value"], "records");
    let categories = |answer: &Value| {
        answer["cells"]
            .as_array()
            .unwrap()
            .iter()
            .map(|cell| cell["category"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(categories(&by_records), categories(&result));

    // Whole steps only: mid-month ends snap to whole months (the same twelve steps and the
    // same answer), and a month that has not ended is left out and named, not part-counted.
    let snapped = json(
        app.get_as(
            &analyst,
            &format!("{path}?resolution=8&from=2024-01-15&to=2024-12-10"),
        )
        .await,
    )
    .await;
    assert_eq!(snapped["steps"], result["steps"]);
    assert_eq!(categories(&snapped), categories(&result));
    assert!(result["settings"]["left_out"].is_null());
    let today = chrono::Utc::now().date_naive();
    let this_month = today.with_day(1).unwrap();
    let to_today = json(
        app.get_as(
            &analyst,
            &format!("{path}?resolution=8&from=2024-01-01&to={today}"),
        )
        .await,
    )
    .await;
    assert_eq!(
        to_today["settings"]["left_out"]["start"],
        this_month.to_string(),
        "{}",
        to_today["settings"]
    );
    let last_step: chrono::NaiveDate = to_today["steps"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(last_step < this_month);

    let csv = app
        .get_as(&analyst, &format!("{path}?format=csv"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        csv.starts_with("hex_id,category,trend_z,trend_p,hot_steps,cold_steps,wkt\n"),
        "{csv}"
    );
    let short = app
        .get_as(
            &analyst,
            &format!("{path}?resolution=8&from=2024-01-01&to=2024-06-30"),
        )
        .await;
    assert_eq!(short.status(), StatusCode::BAD_REQUEST);
    let body: Value = short.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("at least 10"),
        "{body}"
    );
    assert_eq!(
        app.get_as(&analyst, &format!("{path}?step=fortnight"))
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn emerging_work_over_the_budget_is_refused_naming_the_limit() {
    let app = spawn_ready_app_with(|_| {}).await;
    app.import_lancashire_cluster().await;
    let analyst = token(Role::PartnershipAnalyst, BLACKPOOL, None);
    let path = format!("/api/v1/partnerships/{BLACKPOOL}/emerging");
    // A century of weeks at resolution 9 (of which the weeks since 2000 that have ended count):
    // billions of Mann–Kendall comparisons.
    let century = format!("{path}?resolution=9&step=week&from=2000-01-01&to=2099-12-31");
    let asked = app.get_as(&analyst, &century);
    let response = tokio::time::timeout(std::time::Duration::from_secs(20), asked)
        .await
        .expect("refused at once, not computed");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    let message = body["message"].as_str().unwrap().to_owned();
    for needed in [
        "cells × steps²",
        "500000000",
        "coarser resolution",
        "shorter period",
    ] {
        assert!(message.contains(needed), "{needed} missing from {message}");
    }
    // The same century in quarters at resolution 8 is within the budget.
    let response = app
        .get_as(
            &analyst,
            &format!("{path}?resolution=8&step=quarter&from=2000-01-01&to=2099-12-31"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_period_no_agency_contributed_to_is_no_data_not_zeros() {
    let Planted {
        app, social_care, ..
    } = planted().await;
    let analyst = token(Role::PartnershipAnalyst, BLACKPOOL, None);
    let base = format!("/api/v1/partnerships/{BLACKPOOL}");
    let before = "from=2010-01-01&to=2010-12-31";

    // Before any agency contributed: no cells, and the answer says there are no data.
    let grid = json(app.get_as(&analyst, &format!("{base}/grid?{before}")).await).await;
    assert_eq!(grid["no_data"], true);
    assert_eq!(grid["cells"], serde_json::json!([]));
    let geojson = json(
        app.get_as(&analyst, &format!("{base}/grid?{before}&format=geojson"))
            .await,
    )
    .await;
    assert_eq!(geojson["type"], "FeatureCollection");
    assert_eq!(geojson["no_data"], true);
    // Not an analysis of zeros, which would call every cell "not significant".
    let hotspots = json(
        app.get_as(&analyst, &format!("{base}/hotspots?{before}"))
            .await,
    )
    .await;
    assert_eq!(hotspots["no_data"], true);
    assert_eq!(hotspots["cells"], serde_json::json!([]));
    let emerging = json(
        app.get_as(&analyst, &format!("{base}/emerging?{before}"))
            .await,
    )
    .await;
    assert_eq!(emerging["no_data"], true);
    assert_eq!(emerging["cells"], serde_json::json!([]));
    assert_eq!(emerging["steps"], serde_json::json!([]));

    // While agencies contributed, a filter that matches nothing is a true zero.
    let during = "from=2024-01-01&to=2024-12-31";
    let none_match = json(
        app.get_as(&analyst, &format!("{base}/grid?{during}&age_bands=0-9"))
            .await,
    )
    .await;
    assert_eq!(none_match["no_data"], false);
    assert_eq!(none_match["cells"], serde_json::json!([]));
    let hotspots = json(
        app.get_as(&analyst, &format!("{base}/hotspots?{during}"))
            .await,
    )
    .await;
    assert_eq!(hotspots["no_data"], false);
    assert!(!hotspots["cells"].as_array().unwrap().is_empty());

    // Agency staff see their own agency's records: another agency's contribution is not theirs.
    let idle = app
        .register_agency_of_kind("Blackpool Health", AgencyKind::Health, &[BLACKPOOL])
        .await;
    let idle_grid = json(
        app.get_as(&agency_token(idle), &format!("{base}/grid?{during}"))
            .await,
    )
    .await;
    assert_eq!(idle_grid["no_data"], true);
    let social_grid = json(
        app.get_as(&agency_token(social_care), &format!("{base}/grid?{during}"))
            .await,
    )
    .await;
    assert_eq!(social_grid["no_data"], false);
}

/// `children` children of `partnership` placed where people live, one per postcode drawn at
/// random (seeded), plus `extra` children in Blackpool town centre's ring.
async fn placed_by_population(
    partnership: &str,
    children: usize,
    extra: usize,
) -> (TestApp, uuid::Uuid) {
    use rand::{RngExt as _, SeedableRng as _};
    let app = spawn_ready_app_with(|_| {}).await;
    app.import_lancashire_cluster().await;
    let postcodes = app.import_populations().await;
    let police = app
        .register_agency_of_kind("Police", AgencyKind::Police, &[partnership])
        .await;
    // Where people live by the population model itself: every postcode whose cell is in the
    // coverage, whichever authority the directory gives it.
    let covered = app.coverage(partnership, 9).await;
    let lived_in: Vec<h3o::CellIndex> = postcodes
        .iter()
        .filter_map(|postcode| h3o::CellIndex::try_from(postcode.cell).ok())
        .filter(|cell| covered.contains(cell))
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut rows = String::from("subject,record_kind,occurred_on,h3,indicators,age\n");
    for child in 0..children {
        let cell = lived_in[rng.random_range(0..lived_in.len())];
        rows.push_str(&format!(
            "{child:064x},incident,2024-05-15,{cell},missing,15\n"
        ));
    }
    let centre: h3o::CellIndex = centre_cell(h3o::Resolution::Eight).parse().unwrap();
    let ring: Vec<h3o::CellIndex> = centre.grid_disk(1);
    for child in 0..extra {
        let cell = ring[child % ring.len()]
            .center_child(h3o::Resolution::Nine)
            .unwrap();
        rows.push_str(&format!(
            "{:064x},incident,2024-05-16,{cell},missing,15\n",
            1_000 + child
        ));
    }
    upload_csv(&app, police, rows).await;
    (app, police)
}

/// The cells of a hotspot answer in bin `wanted` (`hot` above 0, else below).
fn called(answer: &Value, hot: bool) -> Vec<String> {
    answer["cells"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|cell| {
            let bin = cell["bin"].as_i64().unwrap();
            if hot { bin > 0 } else { bin < 0 }
        })
        .map(|cell| cell["cell"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn children_placed_where_people_live_make_hotspots_only_on_raw_counts() {
    let (app, _) = placed_by_population(LANCASHIRE, 3_000, 0).await;
    let analyst = token(Role::PartnershipAnalyst, LANCASHIRE, None);
    let path = format!("/api/v1/partnerships/{LANCASHIRE}/hotspots?resolution=8&k=2");
    let adjusted = json(app.get_as(&analyst, &path).await).await;
    let settings = &adjusted["settings"];
    assert_eq!(settings["adjust"], "population", "{settings}");
    assert_eq!(settings["test"], "poisson");
    assert_eq!(settings["population"]["approximate"], true);
    assert_eq!(settings["population"]["placement"], "postcodes");
    assert!(settings["population"]["small_areas"].as_u64().unwrap() > 50);
    assert!(settings["warning"].is_null(), "{settings}");
    assert_eq!(called(&adjusted, true), Vec::<String>::new());
    assert_eq!(called(&adjusted, false), Vec::<String>::new());
    let cell = &adjusted["cells"][0];
    assert!(
        cell["expected"].is_f64() && cell["p_poisson"].is_f64(),
        "{cell}"
    );
    assert!(cell.get("p_randomisation").is_none());

    let raw = json(app.get_as(&analyst, &format!("{path}&adjust=none")).await).await;
    assert_eq!(raw["settings"]["adjust"], "none");
    assert!(raw["settings"]["population"].is_null());
    assert!(
        !called(&raw, true).is_empty() || !called(&raw, false).is_empty(),
        "raw counts show where people live"
    );

    // Emerging hotspots are set against the same populations.
    let emerging = json(
        app.get_as(
            &analyst,
            &format!(
                "/api/v1/partnerships/{LANCASHIRE}/emerging?resolution=8&from=2024-01-01&to=2024-12-31"
            ),
        )
        .await,
    )
    .await;
    assert_eq!(emerging["settings"]["adjust"], "population");
    assert_eq!(emerging["settings"]["population"]["placement"], "postcodes");
    assert!(emerging["settings"]["warning"].is_null());

    let permuted = app
        .get_as(&analyst, &format!("{path}&permutations=99"))
        .await;
    assert_eq!(permuted.status(), StatusCode::BAD_REQUEST);
    let refused = app.get_as(&analyst, &format!("{path}&adjust=rates")).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn excess_children_in_a_busy_town_centre_are_a_population_adjusted_hotspot() {
    let (app, _) = placed_by_population(BLACKPOOL, 400, 70).await;
    let analyst = token(Role::PartnershipAnalyst, BLACKPOOL, None);
    let answer = json(
        app.get_as(
            &analyst,
            &format!("/api/v1/partnerships/{BLACKPOOL}/hotspots?resolution=8"),
        )
        .await,
    )
    .await;
    let hot = called(&answer, true);
    assert!(
        hot.contains(&centre_cell(h3o::Resolution::Eight)),
        "{hot:?}"
    );
}

#[tokio::test]
async fn without_a_resolution_the_analysis_uses_one_chosen_from_the_data_and_says_how_it_holds() {
    let (app, _) = placed_by_population(BLACKPOOL, 400, 70).await;
    let analyst = token(Role::PartnershipAnalyst, BLACKPOOL, None);
    let path = format!("/api/v1/partnerships/{BLACKPOOL}/hotspots?sensitivity=true&format=geojson");
    let response = app.get_as(&analyst, &path).await;
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    // The GeoJSON carries what the JSON says beside its cells.
    assert_eq!(answer["type"], "FeatureCollection");
    assert_eq!(answer["partnership"], BLACKPOOL);
    let settings = &answer["settings"];
    let chosen = &settings["resolution_chosen"];
    let children = chosen["children"].as_u64().unwrap();
    assert!((450..=470).contains(&children), "{settings}");
    let lived_in = chosen["lived_in_cells"].as_u64().unwrap();
    assert!(
        470 * 7 >= 5 * lived_in,
        "the rule holds at the chosen resolution: {chosen}"
    );
    assert!(
        chosen["reason"].as_str().unwrap().contains("finest"),
        "{chosen}"
    );
    let resolution = settings["resolution"].as_u64().unwrap();
    assert!((6..=9).contains(&resolution));
    let sensitivity = &answer["sensitivity"];
    let neighbours = sensitivity["neighbours"].as_array().unwrap();
    assert_eq!(
        neighbours.len(),
        if resolution == 9 { 1 } else { 2 },
        "{sensitivity}"
    );
    assert!(
        sensitivity["note"]
            .as_str()
            .unwrap()
            .contains("at resolution")
    );
    // A chosen resolution whose space-time cube is over the budget (22 years of weeks at 9)
    // is coarsened, and the answer says so; asked for, it would be refused.
    let weeks = "step=week&from=2003-01-01&to=2024-12-31";
    let coarsened = json(
        app.get_as(
            &analyst,
            &format!("/api/v1/partnerships/{BLACKPOOL}/emerging?{weeks}"),
        )
        .await,
    )
    .await;
    let settings = &coarsened["settings"];
    assert!(
        settings["resolution"].as_u64().unwrap() < resolution,
        "{settings}"
    );
    assert!(
        settings["resolution_chosen"]["reason"]
            .as_str()
            .unwrap()
            .contains("coarsened"),
        "{settings}"
    );
    let refused = app
        .get_as(
            &analyst,
            &format!("/api/v1/partnerships/{BLACKPOOL}/emerging?{weeks}&resolution={resolution}"),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);

    // Asked for, a resolution is the caller's and nothing is chosen.
    let asked = json(
        app.get_as(
            &analyst,
            &format!("/api/v1/partnerships/{BLACKPOOL}/hotspots?resolution=8"),
        )
        .await,
    )
    .await;
    assert!(asked["settings"]["resolution_chosen"].is_null());
    assert!(asked.get("sensitivity").is_none());
    let refused = app
        .get_as(
            &analyst,
            &format!(
                "/api/v1/partnerships/{BLACKPOOL}/hotspots?sensitivity=true&adjust=none&permutations=99"
            ),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn one_child_with_many_records_is_too_few_children_to_say() {
    let app = spawn_ready_app_with(|_| {}).await;
    app.import_lancashire_cluster().await;
    let police = app
        .register_agency_of_kind("Blackpool Police", AgencyKind::Police, &[BLACKPOOL])
        .await;
    let centre: h3o::CellIndex = centre_cell(h3o::Resolution::Eight).parse().unwrap();
    let mut rows = String::from("subject,record_kind,occurred_on,h3,indicators,age\n");
    // One child, 12 records over the town centre's ring; three other children elsewhere.
    for (i, cell) in centre
        .grid_disk::<Vec<_>>(1)
        .iter()
        .cycle()
        .take(12)
        .enumerate()
    {
        let cell = cell.center_child(h3o::Resolution::Nine).unwrap();
        rows.push_str(&format!(
            "{:064x},incident,2024-05-{:02},{cell},missing,15\n",
            1,
            1 + i
        ));
    }
    let far = one_cell_per_r8(&app)
        .await
        .into_iter()
        .filter(|(r8, _)| r8.grid_distance(centre).is_ok_and(|distance| distance > 4));
    for (child, (_, cell)) in far.take(3).enumerate() {
        rows.push_str(&format!(
            "{:064x},incident,2024-05-20,{cell},missing,15\n",
            10 + child
        ));
    }
    upload_csv(&app, police, rows).await;
    let analyst = token(Role::PartnershipAnalyst, BLACKPOOL, None);
    let answer = json(
        app.get_as(
            &analyst,
            &format!(
                "/api/v1/partnerships/{BLACKPOOL}/hotspots?resolution=8&adjust=none&value=records"
            ),
        )
        .await,
    )
    .await;
    assert_eq!(answer["settings"]["min_children_nearby"], 5);
    assert_eq!(called(&answer, true), Vec::<String>::new());
    let withheld: Vec<&Value> = answer["cells"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|cell| cell["too_few_children"] == true)
        .collect();
    assert!(
        !withheld.is_empty(),
        "the test alone would call the ring hot"
    );
    assert!(
        withheld
            .iter()
            .all(|cell| cell["significant"] == false && cell["bin"] == 0)
    );
}

/// A valid value of each query parameter the analysis endpoints document.
fn example(parameter: &str) -> &'static str {
    match parameter {
        "resolution" => "7",
        "from" => "2024-01-01",
        "to" => "2024-12-31",
        "agency_kinds" => "police",
        "record_kinds" => "incident",
        "indicators" => "missing",
        "indicator_match" => "any",
        "age_bands" => "13-15",
        "sexes" => "F",
        "location_roles" => "home",
        "format" => "json",
        "k" | "time_lag" => "1",
        "kernel" => "uniform",
        "value" => "subjects",
        "permutations" => "0",
        "adjust" => "none",
        "sensitivity" => "false",
        "alpha" => "0.05",
        "step" => "quarter",
        "by" => "quarter",
        "group" => "neighbours",
        other => panic!("no example value for `{other}`: add one"),
    }
}

/// The query structs document what the handlers read: an endpoint given every parameter its
/// document lists, each with a valid value, never calls one of them unknown.
#[tokio::test]
async fn every_documented_query_parameter_is_read() {
    let Planted { app, .. } = planted().await;
    let analyst = token(Role::PartnershipAnalyst, BLACKPOOL, None);
    let document: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    for endpoint in [
        "grid",
        "hotspots",
        "emerging",
        "regional-hotspots",
        "comparison",
    ] {
        let template = format!("/api/v1/partnerships/{{code}}/{endpoint}");
        let parameters = document["paths"][&template]["get"]["parameters"]
            .as_array()
            .unwrap();
        let query: Vec<String> = parameters
            .iter()
            .filter(|parameter| parameter["in"] == "query")
            .map(|parameter| {
                let name = parameter["name"].as_str().unwrap();
                format!("{name}={}", example(name))
            })
            .collect();
        assert!(query.len() >= 4, "{endpoint}: {query:?}");
        let path = format!(
            "/api/v1/partnerships/{BLACKPOOL}/{endpoint}?{}",
            query.join("&")
        );
        let response = app.get_as(&analyst, &path).await;
        let status = response.status();
        let body = response.text().await.unwrap();
        assert!(
            !body.contains("unknown parameter") && !status.is_server_error(),
            "{endpoint}: {status} {body}"
        );
    }
}

#[tokio::test]
async fn an_emerging_question_with_too_few_windows_for_a_trend_is_refused() {
    let Planted { app, .. } = planted().await;
    let analyst = token(Role::PartnershipAnalyst, BLACKPOOL, None);
    // Twelve months at a time lag of 3: the windows that do not overlap start in April, August
    // and December, three, and Mann–Kendall needs five to call any trend.
    let response = app
        .get_as(
            &analyst,
            &format!(
                "/api/v1/partnerships/{BLACKPOOL}/emerging?from=2024-01-01&to=2024-12-31&time_lag=3"
            ),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("3 time windows that do not overlap") && message.contains("time_lag"),
        "{message}"
    );
    // At a time lag of 1 the same year holds six, and the answer says so.
    let answer = app
        .get_as(
            &analyst,
            &format!(
                "/api/v1/partnerships/{BLACKPOOL}/emerging?from=2024-01-01&to=2024-12-31&time_lag=1"
            ),
        )
        .await;
    assert_eq!(answer.status(), StatusCode::OK);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(
        answer["settings"]["trend_windows"], 6,
        "{}",
        answer["settings"]
    );
}

/// Runs GDAL's `ogrinfo` (Debian's `gdal-bin`, which scripts/test.sh installs) on `file` and
/// returns its summary of every layer.
fn ogrinfo(file: &std::path::Path) -> String {
    let output = std::process::Command::new("ogrinfo")
        .args(["-ro", "-al", "-so"])
        .arg(file)
        .output()
        .expect("GDAL's ogrinfo runs (apt-get install gdal-bin; scripts/test.sh installs it)");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "ogrinfo failed on {}: {}{text}",
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    text
}

#[tokio::test]
async fn downloads_open_in_gdal_with_hexagons_and_say_what_they_show() {
    let Planted {
        app, coverage_r8, ..
    } = planted().await;
    let analyst = token(Role::PartnershipAnalyst, BLACKPOOL, None);
    let dir = tempfile::tempdir().unwrap();
    for (name, path) in [
        (
            "grid",
            format!("/api/v1/partnerships/{BLACKPOOL}/grid?resolution=8"),
        ),
        (
            "hotspots",
            format!(
                "/api/v1/partnerships/{BLACKPOOL}/hotspots?resolution=8&from=2024-01-01&to=2024-12-31"
            ),
        ),
    ] {
        let csv = app
            .get_as(&analyst, &format!("{path}&format=csv"))
            .await
            .text()
            .await
            .unwrap();
        assert!(csv.starts_with("hex_id,"), "kepler.gl finds H3 in `hex_id`");
        let csv_file = dir.path().join(format!("{name}.csv"));
        std::fs::write(&csv_file, &csv).unwrap();
        let summary = ogrinfo(&csv_file);
        // The `wkt` column is read as each row's geometry: the layer has an extent, in
        // Blackpool.
        assert!(summary.contains("Extent: (-3.0"), "{name}.csv: {summary}");
        let rows = csv.lines().count() - 1;
        assert!(
            summary.contains(&format!("Feature Count: {rows}")),
            "{name}.csv: {summary}"
        );

        let geojson = json(
            app.get_as(&analyst, &format!("{path}&format=geojson"))
                .await,
        )
        .await;
        let metadata = &geojson["metadata"];
        assert_eq!(metadata["partnership"], BLACKPOOL, "{metadata}");
        assert_eq!(metadata["resolution"], 8, "{metadata}");
        for member in ["value", "method", "generated_at", "licence"] {
            assert!(
                metadata[member]
                    .as_str()
                    .is_some_and(|text| !text.is_empty()),
                "{name}: metadata.{member} in {metadata}"
            );
        }
        assert!(metadata["filters"].is_object(), "{metadata}");
        assert!(metadata["period"].is_object(), "{metadata}");
        let geojson_file = dir.path().join(format!("{name}.geojson"));
        std::fs::write(&geojson_file, geojson.to_string()).unwrap();
        let summary = ogrinfo(&geojson_file);
        assert!(
            summary.contains("Geometry: Polygon"),
            "{name}.geojson: {summary}"
        );
        let features = geojson["features"].as_array().unwrap().len();
        assert!(features > 0);
        assert!(
            summary.contains(&format!("Feature Count: {features}")),
            "{name}.geojson: {summary}"
        );
    }
    assert!(coverage_r8 > 0);
}

#[tokio::test]
async fn places_are_reference_data_an_import_replaces_with_its_attribution() {
    use diesel_async::AsyncConnection as _;
    let app = spawn_ready_app_with(|_| {}).await;
    app.import_areas(&[BLACKPOOL]).await;
    let analyst = token(Role::PartnershipAnalyst, BLACKPOOL, None);
    let path = format!("/api/v1/partnerships/{BLACKPOOL}/places");
    // The shipped places (GeoNames), Blackpool's own.
    let shipped = json(app.get_as(&analyst, &path).await).await;
    assert!(
        shipped["attribution"]
            .as_str()
            .unwrap()
            .contains("GeoNames"),
        "{shipped}"
    );
    assert_eq!(shipped["places"][0]["name"], "Blackpool");
    assert!(
        shipped["places"]
            .as_array()
            .unwrap()
            .iter()
            .all(|place| place["authority"] == BLACKPOOL)
    );

    // An operator's own gazetteer replaces them all, with its own attribution.
    let mut conn = diesel_async::AsyncPgConnection::establish(&app.database_url())
        .await
        .unwrap();
    let own = atlas_ingest::reference::read_places(
        format!("name,lat,lon,population,utla_code\nNorth Shore,53.83,-3.05,,{BLACKPOOL}\n")
            .as_bytes(),
    )
    .unwrap();
    assert!(matches!(
        atlas_store::places::replace(&mut conn, &own, "  ").await,
        Err(atlas_store::StoreError::Invalid(_))
    ));
    assert_eq!(
        atlas_store::places::replace(&mut conn, &own, "Council gazetteer, OGL v3.0")
            .await
            .unwrap(),
        1
    );
    let replaced = json(app.get_as(&analyst, &path).await).await;
    assert_eq!(replaced["attribution"], "Council gazetteer, OGL v3.0");
    assert_eq!(
        replaced["places"].as_array().unwrap().len(),
        1,
        "{replaced}"
    );
    assert_eq!(replaced["places"][0]["name"], "North Shore");

    // Without any place, nothing is named and nothing is attributed.
    atlas_store::places::replace(&mut conn, &[], "none")
        .await
        .unwrap();
    let none = json(app.get_as(&analyst, &path).await).await;
    assert_eq!(none["places"], serde_json::json!([]));
    assert!(none.get("attribution").is_none(), "{none}");
    let hotspots = json(
        app.get_as(
            &analyst,
            &format!("/api/v1/partnerships/{BLACKPOOL}/hotspots?resolution=8&adjust=none"),
        )
        .await,
    )
    .await;
    assert!(hotspots.get("place_attribution").is_none(), "{hotspots}");
}

/// The study area is kept between requests, and a changed boundary is analysed from the next
/// request on: the import raises the partnership's coverage version.
#[tokio::test]
async fn a_changed_boundary_is_the_study_area_of_the_next_request() {
    let app = spawn_ready_app_with(|_| {}).await;
    app.import_lancashire_cluster().await;
    let analyst = token(Role::PartnershipAnalyst, BLACKPOOL, None);
    let path = format!("/api/v1/partnerships/{BLACKPOOL}/hotspots?resolution=8&adjust=none");
    let whole = app.coverage(BLACKPOOL, 8).await.len();
    for _ in 0..2 {
        let answer = json(app.get_as(&analyst, &path).await).await;
        assert_eq!(answer["study_area_cells"], whole);
    }
    // Blackpool's boundary redrawn as a small square around the town centre.
    let square = r#"{"type":"FeatureCollection","features":[{"type":"Feature",
        "properties":{"code":"E06000009","name":"Blackpool"},
        "geometry":{"type":"Polygon","coordinates":[[[-3.06,53.80],[-3.02,53.80],[-3.02,53.83],
        [-3.06,53.83],[-3.06,53.80]]]}}]}"#;
    let areas = atlas_ingest::reference::read_boundaries(
        square.as_bytes(),
        &atlas_ingest::reference::BoundaryFields::default(),
    )
    .unwrap();
    atlas_store::reference::import(&app.database_url(), &areas, None)
        .await
        .unwrap();
    let redrawn = app.coverage(BLACKPOOL, 8).await.len();
    assert!(redrawn < whole, "{redrawn} cells of {whole}");
    let answer = json(app.get_as(&analyst, &path).await).await;
    assert_eq!(answer["study_area_cells"], redrawn);
}

#[tokio::test]
async fn imported_populations_are_the_populations_of_the_next_request() {
    let app = spawn_ready_app_with(|_| {}).await;
    app.import_lancashire_cluster().await;
    let police = app
        .register_agency_of_kind("Police", AgencyKind::Police, &[BLACKPOOL])
        .await;
    let mut rows = String::from("subject,record_kind,occurred_on,h3,indicators,age\n");
    let centre: h3o::CellIndex = centre_cell(h3o::Resolution::Nine).parse().unwrap();
    for child in 0..20 {
        rows.push_str(&format!(
            "{child:064x},incident,2024-05-15,{centre},missing,15\n"
        ));
    }
    upload_csv(&app, police, rows).await;
    let analyst = token(Role::PartnershipAnalyst, BLACKPOOL, None);
    let path = format!("/api/v1/partnerships/{BLACKPOOL}/hotspots?resolution=8&adjust=population");
    // No postcode directory: the shipped small areas spread evenly, kept between requests.
    for _ in 0..2 {
        let answer = json(app.get_as(&analyst, &path).await).await;
        let population = &answer["settings"]["population"];
        assert_eq!(
            population["placement"], "small_areas_evenly",
            "{population}"
        );
    }
    // The directory imported: the next answer places children by postcode.
    app.import_populations().await;
    let answer = json(app.get_as(&analyst, &path).await).await;
    let population = &answer["settings"]["population"];
    assert_eq!(population["placement"], "postcodes", "{population}");
}
