//! Uploading extracts through real HTTP: atomic batches, refusals, repeats, withdrawal and
//! supersession.

use std::io::Write as _;

use crate::support::{LANCASHIRE_CLUSTER, TestApp, agency_token};
use reqwest::StatusCode;
use serde_json::Value;

const CSV: &str = "text/csv";
const BLACKPOOL: (f64, f64) = (53.8175, -3.0357);

fn pseudonym(child: u32) -> String {
    format!("{child:064x}")
}

/// A CSV extract of `good` rows in Blackpool followed by `bad` rows with an impossible date.
fn extract(good: u32, bad: u32) -> Vec<u8> {
    let mut text = String::from("subject,record_kind,occurred_on,lat,lon,indicators,age\n");
    for child in 0..good {
        let day = 1 + child % 28;
        text.push_str(&format!(
            "{},incident,2024-02-{day:02},{},{},missing;gifts_money,15\n",
            pseudonym(child),
            BLACKPOOL.0,
            BLACKPOOL.1
        ));
    }
    for child in 0..bad {
        text.push_str(&format!(
            "{},incident,2024-02-30,{},{},,\n",
            pseudonym(child),
            BLACKPOOL.0,
            BLACKPOOL.1
        ));
    }
    text.into_bytes()
}

async fn ready_app() -> (TestApp, uuid::Uuid) {
    ready_app_with(|_| {}).await
}

/// An app with adjusted settings, the Lancashire cluster imported and a Blackpool agency.
async fn ready_app_with(
    adjust: impl FnOnce(&mut atlas_app::settings::Settings),
) -> (TestApp, uuid::Uuid) {
    let app = crate::support::spawn_ready_app_with(adjust).await;
    app.import_lancashire_cluster().await;
    let agency = app
        .register_agency("Blackpool Police", &["E06000009"])
        .await;
    (app, agency)
}

/// The rejection report of `batch`, fetched as its agency.
async fn rejection_report(app: &TestApp, agency: uuid::Uuid, batch: &Value) -> String {
    let path = batch["rejections"].as_str().unwrap();
    let response = app
        .client
        .get(app.url(path))
        .bearer_auth(app.agency_token(agency).await)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    response.text().await.unwrap()
}

async fn json(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

#[tokio::test]
async fn an_extract_becomes_one_batch_with_a_rejection_report() {
    let (app, agency) = ready_app().await;
    let response = app
        .upload(agency, CSV, extract(40, 1), "/api/v1/extracts")
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let batch = json(response).await;
    assert_eq!(batch["status"], "committed");
    assert_eq!(
        (
            batch["rows_total"].as_i64(),
            batch["rows_accepted"].as_i64(),
            batch["rows_rejected"].as_i64()
        ),
        (Some(41), Some(40), Some(1))
    );
    assert_eq!(
        batch["partnerships"],
        serde_json::json!({ "E06000009": 40 })
    );
    assert_eq!(batch["quality"]["indicator_completeness"], 1.0);
    assert_eq!(batch["quality"]["first_date"], "2024-02-01");
    assert_eq!(batch["quality"]["last_date"], "2024-02-28");
    assert!((batch["quality"]["geocoded_share"].as_f64().unwrap() - 1.0).abs() < 1e-12);
    assert_eq!(app.count("SELECT count(*) FROM case_records").await, 40);

    // The stored pseudonym is keyed again by the server: the agency's value is not in the table.
    let agency_pseudonym = format!("\\x{}", pseudonym(0));
    let leaked = app
        .count(&format!(
            "SELECT count(*) FROM case_records WHERE subject = '{agency_pseudonym}'::bytea"
        ))
        .await;
    assert_eq!(leaked, 0);
    assert_eq!(
        app.count("SELECT count(DISTINCT subject) FROM case_records")
            .await,
        40
    );

    let id = batch["batch_id"].as_str().unwrap();
    let fetched = app
        .client
        .get(app.url(&format!("/api/v1/batches/{id}")))
        .bearer_auth(agency_token(agency))
        .send()
        .await
        .unwrap();
    assert_eq!(json(fetched).await["rows_accepted"], 40);
    assert_eq!(
        rejection_report(&app, agency, &batch).await,
        "row,field,reason\n42,occurred_on,not a real date\n"
    );
}

#[tokio::test]
async fn the_same_file_again_returns_the_existing_batch_even_gzipped() {
    let (app, agency) = ready_app().await;
    let first = json(
        app.upload(agency, CSV, extract(30, 0), "/api/v1/extracts")
            .await,
    )
    .await;
    let again = app
        .upload(agency, CSV, extract(30, 0), "/api/v1/extracts")
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(json(again).await["batch_id"], first["batch_id"]);

    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&extract(30, 0)).unwrap();
    let gzipped = app
        .client
        .post(app.url("/api/v1/extracts"))
        .header("content-type", CSV)
        .header("content-encoding", "gzip")
        .bearer_auth(agency_token(agency))
        .body(encoder.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(gzipped.status(), StatusCode::OK);
    assert_eq!(json(gzipped).await["batch_id"], first["batch_id"]);
    assert_eq!(app.count("SELECT count(*) FROM case_records").await, 30);
    assert_eq!(app.count("SELECT count(*) FROM batches").await, 1);
}

#[tokio::test]
async fn ndjson_is_accepted_too() {
    let (app, agency) = ready_app().await;
    let lines: String = (0..20)
        .map(|child| {
            format!(
                "{{\"subject\":\"{}\",\"record_kind\":\"referral\",\"occurred_on\":\"2024-05-01\",\"lat\":{},\"lon\":{},\"indicators\":[\"online_contact\"]}}\n",
                pseudonym(child),
                BLACKPOOL.0,
                BLACKPOOL.1
            )
        })
        .collect();
    let response = app
        .upload(
            agency,
            "application/x-ndjson",
            lines.into_bytes(),
            "/api/v1/extracts",
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(json(response).await["rows_accepted"], 20);
}

#[tokio::test]
async fn refused_extracts_store_nothing_and_say_why() {
    let (app, agency) = ready_app().await;
    let header = "subject,record_kind,occurred_on,lat,lon\n";
    let row = format!(
        "{},incident,2024-02-01,{},{}\n",
        pseudonym(1),
        BLACKPOOL.0,
        BLACKPOOL.1
    );
    let mut not_utf8 = format!("{header}{row}").into_bytes();
    not_utf8.extend_from_slice(b"\xff\xfe,incident,2024-02-01,53.8,-3.0\n");
    let mut truncated = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    truncated.write_all(&extract(50, 0)).unwrap();
    let mut truncated = truncated.finish().unwrap();
    truncated.truncate(truncated.len() / 2);

    let cases: Vec<(Vec<u8>, Option<&str>, StatusCode, &str)> = vec![
        (
            Vec::new(),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "the extract is empty",
        ),
        (
            header.as_bytes().to_vec(),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "a header but no rows",
        ),
        (
            b"subject,occurred_on,lat,lon\nx,2024-01-01,53.8,-3.0\n".to_vec(),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "required column(s) record_kind",
        ),
        (
            format!("subject,record_kind,occurred_on,lat,LAT\n{row}").into_bytes(),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "appears twice",
        ),
        (
            not_utf8,
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "not valid UTF-8",
        ),
        (
            String::from_utf8(extract(10, 0))
                .unwrap()
                .replace("indicators,age", "indicators,dob")
                .into_bytes(),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "column `dob` looks like it holds a date of birth",
        ),
        (
            extract(10, 5),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "5 of 15 rows were rejected",
        ),
        (
            truncated,
            Some("gzip"),
            StatusCode::BAD_REQUEST,
            "could not be read",
        ),
    ];
    for (body, encoding, status, message) in cases {
        let mut request = app
            .client
            .post(app.url("/api/v1/extracts"))
            .header("content-type", CSV)
            .bearer_auth(agency_token(agency))
            .body(body);
        if let Some(encoding) = encoding {
            request = request.header("content-encoding", encoding);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{message}");
        let body = json(response).await;
        assert!(
            body["message"].as_str().unwrap().contains(message),
            "{message}: {body}"
        );
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("nothing was stored"),
            "{body}"
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM batches").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM case_records").await, 0);
}

#[tokio::test]
async fn wrong_media_types_identities_and_sizes_are_refused() {
    let (app, agency) = ready_app().await;
    let response = app
        .upload(
            agency,
            "application/json",
            extract(5, 0),
            "/api/v1/extracts",
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let response = app
        .client
        .post(app.url("/api/v1/extracts"))
        .header("content-type", CSV)
        .header("content-encoding", "br")
        .bearer_auth(agency_token(agency))
        .body(extract(5, 0))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let anonymous = app
        .client
        .post(app.url("/api/v1/extracts"))
        .header("content-type", CSV)
        .body(extract(5, 0))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json(anonymous).await["error"], "unauthorized");
    let stranger = app
        .upload(uuid::Uuid::new_v4(), CSV, extract(5, 0), "/api/v1/extracts")
        .await;
    assert_eq!(stranger.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT count(*) FROM batches").await, 0);
}

#[tokio::test]
async fn an_upload_over_the_limit_gets_413_and_stores_nothing() {
    let (app, agency) = ready_app_with(|settings| settings.ingest.max_upload_bytes = 2_000).await;
    let response = app
        .upload(agency, CSV, extract(200, 0), "/api/v1/extracts")
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(json(response).await["error"], "payload_too_large");
    // Without a declared length the limit is enforced while streaming.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = extract(200, 0)
        .chunks(500)
        .map(|chunk| Ok(chunk.to_vec()))
        .collect();
    let streamed = app
        .client
        .post(app.url("/api/v1/extracts"))
        .header("content-type", CSV)
        .bearer_auth(agency_token(agency))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.count("SELECT count(*) FROM batches").await, 0);
}

#[tokio::test]
async fn rows_outside_the_agencys_partnerships_are_rejected() {
    let (app, agency) = ready_app().await;
    let mut text = String::from_utf8(extract(30, 0)).unwrap();
    text.push_str(&format!(
        "{},incident,2024-02-01,51.5074,-0.1278,,\n",
        pseudonym(99)
    ));
    let batch = json(
        app.upload(agency, CSV, text.into_bytes(), "/api/v1/extracts")
            .await,
    )
    .await;
    assert_eq!(batch["rows_rejected"], 1);
    assert!((batch["quality"]["geocoded_share"].as_f64().unwrap() - 30.0 / 31.0).abs() < 1e-9);
    let report = rejection_report(&app, agency, &batch).await;
    assert!(
        report.contains("32,location,outside the area of every partnership your agency serves"),
        "{report}"
    );
}

#[tokio::test]
async fn batches_are_withdrawn_or_superseded_by_their_own_agency_only() {
    let (app, agency) = ready_app().await;
    let other = app.register_agency("Rochdale Police", &["E08000005"]).await;
    let first = json(
        app.upload(agency, CSV, extract(30, 0), "/api/v1/extracts")
            .await,
    )
    .await;
    let first_id = first["batch_id"].as_str().unwrap().to_owned();

    let foreign = app
        .client
        .delete(app.url(&format!("/api/v1/batches/{first_id}")))
        .bearer_auth(app.agency_token(other).await)
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    let foreign = app
        .upload(
            other,
            CSV,
            extract(25, 0),
            &format!("/api/v1/extracts?supersedes={first_id}"),
        )
        .await;
    assert_eq!(foreign.status(), StatusCode::NOT_FOUND);

    let corrected = app
        .upload(
            agency,
            CSV,
            extract(35, 0),
            &format!("/api/v1/extracts?supersedes={first_id}"),
        )
        .await;
    assert_eq!(corrected.status(), StatusCode::CREATED);
    let corrected = json(corrected).await;
    assert_eq!(app.count("SELECT count(*) FROM case_records").await, 35);
    let old = json(
        app.client
            .get(app.url(&format!("/api/v1/batches/{first_id}")))
            .bearer_auth(agency_token(agency))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(old["status"], "superseded");
    assert_eq!(old["superseded_by"], corrected["batch_id"]);

    let new_id = corrected["batch_id"].as_str().unwrap();
    let withdrawn = app
        .client
        .delete(app.url(&format!("/api/v1/batches/{new_id}")))
        .bearer_auth(agency_token(agency))
        .send()
        .await
        .unwrap();
    assert_eq!(withdrawn.status(), StatusCode::OK);
    assert_eq!(json(withdrawn).await["status"], "withdrawn");
    assert_eq!(app.count("SELECT count(*) FROM case_records").await, 0);
    let again = app
        .client
        .delete(app.url(&format!("/api/v1/batches/{new_id}")))
        .bearer_auth(agency_token(agency))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);

    // The agency's list has both batches, newest first; other agencies and partnership
    // analysts get none of it.
    let list = |token: String| {
        let app = &app;
        async move {
            app.client
                .get(app.url("/api/v1/batches"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
        }
    };
    let own = json(list(agency_token(agency)).await).await;
    let listed: Vec<(&str, &str)> = own["batches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|batch| {
            (
                batch["batch_id"].as_str().unwrap(),
                batch["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [(new_id, "withdrawn"), (first_id.as_str(), "superseded")]
    );
    assert_eq!(own["batches"][1]["superseded_by"], new_id);
    assert!(own["batches"][0]["received_at"].is_string());
    let theirs = json(list(app.agency_token(other).await).await).await;
    assert_eq!(theirs["batches"], serde_json::json!([]));
    let analyst = crate::support::token(atlas_access::Role::PartnershipAnalyst, "E06000009", None);
    assert_eq!(list(analyst).await.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn postcodes_are_located_through_the_imported_directory() {
    let (app, agency) = ready_app().await;
    let sample = include_str!("../../../../data/reference/onspd_sample_lancashire_cluster.csv");
    let directory = atlas_ingest::reference::read_postcodes(sample.as_bytes()).unwrap();
    atlas_store::reference::import_postcodes(&app.database_url(), &directory.postcodes)
        .await
        .unwrap();
    let mut text = String::from("subject,record_kind,occurred_on,postcode\n");
    for child in 0..40 {
        text.push_str(&format!(
            "{},referral,2024-03-01,fy1 1aa\n",
            pseudonym(child)
        ));
    }
    // Rochdale is not served by this Blackpool agency; ZZ9 9ZZ is not a postcode at all.
    text.push_str(&format!("{},referral,2024-03-01,OL11 1AA\n", pseudonym(98)));
    text.push_str(&format!("{},referral,2024-03-01,ZZ9 9ZZ\n", pseudonym(99)));
    let response = app
        .upload(agency, CSV, text.into_bytes(), "/api/v1/extracts")
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let batch = json(response).await;
    assert_eq!(
        (
            batch["rows_accepted"].as_i64(),
            batch["rows_rejected"].as_i64()
        ),
        (Some(40), Some(2))
    );
    let report = rejection_report(&app, agency, &batch).await;
    assert_eq!(
        report,
        "row,field,reason\n\
         42,postcode,not in the imported postcode directory within the partnerships your agency serves\n\
         43,postcode,not in the imported postcode directory within the partnerships your agency serves\n"
    );
}

#[tokio::test]
async fn an_extract_of_bad_rows_is_refused_with_every_row_accounted_for() {
    let (app, agency) = ready_app().await;
    let p = pseudonym(1);
    let (lat, lon) = BLACKPOOL;
    let rows = [
        format!("{p},incident,2024-02-01,{lat},{lon},,FY1 1AA"),
        format!("{p},incident,2024-02-30,{lat},{lon},,"),
        format!("{p},incident,2099-01-01,{lat},{lon},,"),
        format!("{p},incident,2024-02-01,48.85,2.35,,"),
        format!("{p},incident,2024-02-01,,,not-a-cell,"),
        format!("{p},burglary,2024-02-01,{lat},{lon},,"),
        format!("{p},incident,2024-02-01,{lat},{lon},,,extra"),
        format!("{},incident,2024-02-01,{lat},{lon},,", &p[2..]),
    ];
    let body = format!(
        "subject,record_kind,occurred_on,lat,lon,h3,postcode\n{}\n",
        rows.join("\n")
    );
    let response = app
        .upload(agency, CSV, body.into_bytes(), "/api/v1/extracts")
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let refusal: Value = response.json().await.unwrap();
    let message = refusal["message"].as_str().unwrap().to_owned();
    assert!(
        message.starts_with("8 of 8 rows were rejected (100.0 %)"),
        "{message}"
    );
    // The full rejection report comes with the refusal: every row, with its field and reason.
    let report = refusal["rejections"].as_array().unwrap();
    assert_eq!(report.len(), 8, "{refusal}");
    assert!(
        report
            .iter()
            .any(|row| row["row"] == 9 && row["field"].is_string() && row["reason"].is_string()),
        "the eighth bad row (row 9) is in the report: {refusal}"
    );
    for problem in [
        "row 2 lat: two kinds of location",
        "row 3 occurred_on: not a real date",
        "row 4 occurred_on: the date is in the future",
        "row 5 lat: the location is outside Great Britain",
        "row 6 h3: not an H3 cell index",
    ] {
        assert!(
            message.contains(problem),
            "{problem} missing from {message}"
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM batches").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM case_records").await, 0);
}

#[tokio::test]
async fn multi_member_gzip_is_read_whole_and_a_gzip_bomb_is_stopped() {
    let (app, agency) = ready_app_with(|settings| settings.ingest.max_upload_bytes = 200_000).await;
    let gzip = |bytes: &[u8]| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    };
    let whole = String::from_utf8(extract(40, 0)).unwrap();
    let (head, tail) =
        whole.split_at(whole.len() / 2 + whole[whole.len() / 2..].find('\n').unwrap() + 1);
    let mut members = gzip(head.as_bytes());
    members.extend(gzip(tail.as_bytes()));
    let send = |body: Vec<u8>| {
        app.client
            .post(app.url("/api/v1/extracts"))
            .header("content-type", CSV)
            .header("content-encoding", "gzip")
            .bearer_auth(agency_token(agency))
            .body(body)
            .send()
    };
    let response = send(members).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(json(response).await["rows_accepted"], 40);

    // 20 MB of short rows, compressed to a few kilobytes.
    let mut bomb = b"subject,record_kind,occurred_on,lat,lon\n".to_vec();
    bomb.extend(b"a,b\n".repeat(5_000_000));
    let response = send(gzip(&bomb)).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.count("SELECT count(*) FROM batches").await, 1);
}

#[tokio::test]
async fn uploads_beyond_the_concurrency_limit_are_asked_to_retry() {
    let (app, agency) = ready_app_with(|settings| settings.ingest.max_concurrent_uploads = 1).await;

    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async {
        receiver.recv().await.map(|item| (item, receiver))
    });
    let body = extract(30, 0);
    let slow = app
        .client
        .post(app.url("/api/v1/extracts"))
        .header("content-type", CSV)
        .bearer_auth(agency_token(agency))
        .body(reqwest::Body::wrap_stream(stream))
        .send();
    let slow = tokio::spawn(slow);
    sender.send(Ok(body[..100].to_vec())).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    let busy = app
        .upload(agency, CSV, extract(20, 0), "/api/v1/extracts")
        .await;
    assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(busy.headers()["retry-after"], "30");

    sender.send(Ok(body[100..].to_vec())).await.unwrap();
    drop(sender);
    assert_eq!(slow.await.unwrap().unwrap().status(), StatusCode::CREATED);
    let after = app
        .upload(agency, CSV, extract(20, 0), "/api/v1/extracts")
        .await;
    assert_eq!(after.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_line_or_a_field_over_the_limit_is_refused_naming_it_and_the_row() {
    let (app, agency) = ready_app().await;
    let gzip = |bytes: &[u8]| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    };
    let send = |content_type: &'static str, body: Vec<u8>| {
        app.client
            .post(app.url("/api/v1/extracts"))
            .header("content-type", content_type)
            .header("content-encoding", "gzip")
            .bearer_auth(agency_token(agency))
            .body(gzip(&body))
            .send()
    };
    // Row 4 is one line of 8 MiB: a few kilobytes compressed.
    let mut long_line = extract(2, 0);
    long_line.extend(std::iter::repeat_n(b'a', 8 << 20));
    long_line.push(b'\n');
    let response = send(CSV, long_line).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let message = json(response).await["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("row 4") && message.contains("65536 bytes"),
        "{message}"
    );

    let mut ndjson = String::new();
    ndjson.push_str(&format!(
        "{{\"subject\":\"{}\",\"record_kind\":\"incident\",\"occurred_on\":\"2024-02-01\",\"lat\":{},\"lon\":{}}}\n",
        pseudonym(1),
        BLACKPOOL.0,
        BLACKPOOL.1
    ));
    ndjson.push_str(&format!("{{\"subject\":\"{}\"}}\n", "b".repeat(100_000)));
    let response = send("application/x-ndjson", ndjson.into_bytes())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let message = json(response).await["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("row 2") && message.contains("65536 bytes"),
        "{message}"
    );

    // A field of 5,000 bytes in a line under the line limit.
    let mut long_field = extract(2, 0);
    long_field.extend(
        format!(
            "{},incident,2024-02-01,{},{},{},15\n",
            pseudonym(9),
            BLACKPOOL.0,
            BLACKPOOL.1,
            "x".repeat(5_000)
        )
        .into_bytes(),
    );
    let response = send(CSV, long_field).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let message = json(response).await["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("row 4")
            && message.contains("`indicators`")
            && message.contains("1024 bytes"),
        "{message}"
    );
    assert_eq!(app.count("SELECT count(*) FROM batches").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM case_records").await, 0);
}

/// Sends the first 100 bytes of an extract, then what `rest` yields at its own pace; returns
/// the answer, if the client got one (status and message).
async fn upload_paced(
    app: &TestApp,
    agency: uuid::Uuid,
    rest: impl futures_util::Stream<Item = Vec<u8>> + Send + Sync + 'static,
) -> Option<(StatusCode, String)> {
    use futures_util::StreamExt as _;
    let head = extract(30, 0)[..100].to_vec();
    let body = futures_util::stream::once(async move { head })
        .chain(rest)
        .map(Ok::<_, std::io::Error>);
    let response = app
        .client
        .post(app.url("/api/v1/extracts"))
        .header("content-type", CSV)
        .bearer_auth(agency_token(agency))
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .ok()?;
    let status = response.status();
    let message = json(response).await["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Some((status, message))
}

#[tokio::test]
async fn slow_idle_and_endless_uploads_are_cut_releasing_their_slot_and_storing_nothing() {
    let (app, agency) = ready_app_with(|settings| {
        settings.ingest.max_concurrent_uploads = 1;
        settings.ingest.min_body_bytes_per_sec = 100;
        settings.ingest.body_rate_window_secs = 2;
        settings.ingest.body_idle_timeout_secs = 2;
        settings.ingest.body_deadline_secs = 4;
    })
    .await;
    let started = std::time::Instant::now();
    let pause = |millis| tokio::time::sleep(std::time::Duration::from_millis(millis));
    // A byte every half second: slower than 100 bytes a second over 2 s.
    let trickle = futures_util::stream::unfold((), move |()| async move {
        pause(500).await;
        Some((b"a".to_vec(), ()))
    });
    let (status, message) = upload_paced(&app, agency, trickle).await.expect("told why");
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
    assert!(message.contains("100 bytes a second"), "{message}");
    // Nothing after the first bytes: idle.
    let idle = futures_util::stream::unfold((), move |()| async move {
        pause(60_000).await;
        Some((b"a".to_vec(), ()))
    });
    let (status, message) = upload_paced(&app, agency, idle).await.expect("told why");
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
    assert!(message.contains("no data for 2 s"), "{message}");
    // Fast enough, but endless: the overall deadline.
    let endless = futures_util::stream::unfold((), move |()| async move {
        pause(100).await;
        Some((b"a,".repeat(200), ()))
    });
    let (status, message) = upload_paced(&app, agency, endless).await.expect("told why");
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
    assert!(message.contains("within 4 s"), "{message}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));

    // Each cut released its slot (the next would get 503 otherwise) and stored nothing.
    assert_eq!(app.count("SELECT count(*) FROM batches").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM case_records").await, 0);
    let after = app
        .upload(agency, CSV, extract(20, 0), "/api/v1/extracts")
        .await;
    assert_eq!(after.status(), StatusCode::CREATED);
    assert_eq!(app.count("SELECT count(*) FROM case_records").await, 20);
    // Each cut upload left its own entry in the trail, saying why.
    assert_eq!(
        app.count(
            "SELECT count(*) FROM audit_log WHERE action = 'extract.upload' \
             AND outcome = 'failed' AND parameters ? 'cut'"
        )
        .await,
        3
    );
}

/// Points spread uniformly over a boundary's box (a fixed sequence), kept when inside it.
fn points_inside(polygons: &geo::MultiPolygon<f64>, wanted: usize, seed: u64) -> Vec<(f64, f64)> {
    use geo::{BoundingRect as _, Contains as _};
    let bounds = polygons.bounding_rect().unwrap();
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1_u64 << 53) as f64
    };
    let mut points = Vec::new();
    while points.len() < wanted {
        let x = bounds.min().x + next() * bounds.width();
        let y = bounds.min().y + next() * bounds.height();
        if polygons.contains(&geo::Point::new(x, y)) {
            points.push((y, x));
        }
    }
    points
}

#[tokio::test]
async fn records_anywhere_inside_a_partnership_are_kept_and_across_the_border_refused() {
    // Placed by cell centres, 0.7 % (Lancashire) to 3.6 % (Blackpool, on the coast) of points
    // inside a boundary were refused as "outside". Each agency serves one partnership, and 2.4 %
    // of its rows (under the 5 % that refuses a whole extract) lie in the next partnership.
    let app = crate::support::spawn_ready_app_with(|_| {}).await;
    app.import_lancashire_cluster().await;
    let areas = atlas_ingest::reference::read_boundaries(
        atlas_postgres::test_db::england_boundaries(&LANCASHIRE_CLUSTER).as_bytes(),
        &atlas_ingest::reference::BoundaryFields::default(),
    )
    .unwrap();
    let polygons: Vec<geo::MultiPolygon<f64>> = areas
        .iter()
        .map(|area| atlas_ingest::reference::boundary_polygons(&area.boundary).unwrap())
        .collect();
    for (served, area) in areas.iter().enumerate() {
        let agency = app
            .register_agency(&format!("Police of {}", area.name), &[area.code.as_str()])
            .await;
        let mut text = String::from("subject,record_kind,occurred_on,lat,lon\n");
        for (lat, lon) in points_inside(&polygons[served], 800, 7 + served as u64) {
            text.push_str(&format!(
                "{},incident,2024-02-01,{lat},{lon}\n",
                pseudonym(1)
            ));
        }
        let across = (served + 1) % areas.len();
        for (lat, lon) in points_inside(&polygons[across], 20, 99) {
            text.push_str(&format!(
                "{},incident,2024-02-01,{lat},{lon}\n",
                pseudonym(2)
            ));
        }
        let batch = json(
            app.upload(agency, CSV, text.into_bytes(), "/api/v1/extracts")
                .await,
        )
        .await;
        assert_eq!(
            (
                batch["rows_accepted"].as_i64(),
                batch["rows_rejected"].as_i64()
            ),
            (Some(800), Some(20)),
            "{}: {batch}",
            area.code
        );
        let report = rejection_report(&app, agency, &batch).await;
        assert_eq!(
            report
                .lines()
                .filter(|line| line.ends_with(
                    ",location,outside the area of every partnership your agency serves"
                ))
                .count(),
            20,
            "{report}"
        );
        // Every kept record is stored under a cell of its partnership's coverage.
        let stray = app
            .count(&format!(
                "SELECT count(*) FROM case_records r WHERE r.partnership_code = '{}'
                 AND NOT EXISTS (SELECT 1 FROM partnership_cells c WHERE c.partnership_code = r.partnership_code
                                 AND c.resolution = 9 AND c.cell = r.cell)",
                area.code
            ))
            .await;
        assert_eq!(stray, 0, "{}", area.code);
    }
}

#[tokio::test]
async fn every_postcode_of_the_directory_is_kept_by_its_own_partnership() {
    // The directory's own authority decides, even where a generalised boundary puts the
    // postcode's grid reference (or its cell's centre) across the border or in the sea.
    let (app, agency) = ready_app().await;
    let sample = include_str!("../../../../data/reference/onspd_sample_lancashire_cluster.csv");
    let directory = atlas_ingest::reference::read_postcodes(sample.as_bytes()).unwrap();
    atlas_store::reference::import_postcodes(&app.database_url(), &directory.postcodes)
        .await
        .unwrap();
    let blackpool: Vec<&str> = directory
        .postcodes
        .iter()
        .filter(|postcode| {
            postcode.authority.as_ref().map(|code| code.as_str()) == Some("E06000009")
        })
        .map(|postcode| postcode.postcode.as_str())
        .collect();
    assert!(blackpool.len() > 4_000, "{} postcodes", blackpool.len());
    let mut text = String::from("subject,record_kind,occurred_on,postcode\n");
    for postcode in &blackpool {
        text.push_str(&format!(
            "{},referral,2024-03-01,{postcode}\n",
            pseudonym(1)
        ));
    }
    let batch = json(
        app.upload(agency, CSV, text.into_bytes(), "/api/v1/extracts")
            .await,
    )
    .await;
    assert_eq!(batch["rows_rejected"].as_i64(), Some(0), "{batch}");
    assert_eq!(
        batch["rows_accepted"].as_u64(),
        Some(blackpool.len() as u64)
    );
}

#[tokio::test]
async fn a_process_with_another_pseudonym_key_refuses_uploads_and_is_not_ready() {
    let test_db = atlas_postgres::test_db::TestDatabase::new().await;
    let first = crate::support::spawn_app_with(&test_db, None, |_| {}).await;
    first
        .wait_until_ready(std::time::Duration::from_secs(20))
        .await;
    first.import_areas(&["E10000017"]).await;
    let agency = first
        .register_agency("Lancashire Police", &["E10000017"])
        .await;
    // The same database, another key: not ready, naming the problem, and no upload stored.
    let second = crate::support::spawn_app_with(&test_db, None, |settings| {
        settings.ingest.pseudonym_key = Some("02".repeat(32).into());
    })
    .await;
    second
        .wait_for_readyz(
            reqwest::StatusCode::SERVICE_UNAVAILABLE,
            std::time::Duration::from_secs(20),
        )
        .await;
    let ready: serde_json::Value = second.get("/readyz").await.json().await.unwrap();
    assert!(
        ready["message"]
            .as_str()
            .unwrap()
            .contains("is not the key this database's records were pseudonymised with"),
        "{ready}"
    );
    let refused = second
        .client
        .post(second.url("/api/v1/extracts"))
        .bearer_auth(first.agency_token(agency).await)
        .header("content-type", "text/csv")
        .body("record_id,subject_id\n")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("configure the database's key"),
        "{body}"
    );
    assert_eq!(first.count("SELECT count(*) FROM batches").await, 0);
}

#[tokio::test]
async fn a_database_with_records_but_no_fingerprint_is_not_claimed_by_whichever_process_comes_first()
 {
    let test_db = atlas_postgres::test_db::TestDatabase::new().await;
    let first = crate::support::spawn_app_with(&test_db, None, |_| {}).await;
    first
        .wait_until_ready(std::time::Duration::from_secs(20))
        .await;
    first.import_areas(&["E06000009"]).await;
    let agency = first
        .register_agency("Blackpool Police", &["E06000009"])
        .await;
    let uploaded = first
        .upload(agency, CSV, extract(5, 0), "/api/v1/extracts")
        .await;
    assert_eq!(uploaded.status(), reqwest::StatusCode::CREATED);
    // As a database upgraded from before fingerprints were kept: records, no fingerprint.
    let client =
        atlas_store::connect_admin(&first.database_url(), std::time::Duration::from_secs(5))
            .await
            .unwrap();
    client
        .batch_execute("DELETE FROM pseudonym_key_fingerprint")
        .await
        .unwrap();
    // A process with another key serves (it cannot know) but records nothing: an operator
    // records the key that made the records (`atlas pseudonym-key record`).
    let other = crate::support::spawn_app_with(&test_db, None, |settings| {
        settings.ingest.pseudonym_key = Some("02".repeat(32).into());
    })
    .await;
    other
        .wait_until_ready(std::time::Duration::from_secs(20))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        first
            .count("SELECT count(*) FROM pseudonym_key_fingerprint")
            .await,
        0
    );
    let guard = atlas_app::key_guard::KeyGuard::new(Some(
        &atlas_ingest::pseudonym::PseudonymKey::from_hex(crate::support::TEST_PSEUDONYM_KEY)
            .unwrap(),
    ));
    let database = atlas_store::Database::new(&atlas_store::DatabaseSettings::new(
        first.database_url().into(),
        1,
    ))
    .unwrap();
    assert!(
        guard
            .record(&database)
            .await
            .unwrap()
            .starts_with("recorded")
    );
    assert!(guard.compare(&database).await.unwrap().is_none());
}

#[tokio::test]
async fn retention_deletes_records_past_their_kinds_period_audited_and_every_cache_reloads() {
    let (app, agency) = ready_app().await;
    let uploaded = app
        .upload(agency, CSV, extract(5, 0), "/api/v1/extracts")
        .await;
    assert_eq!(uploaded.status(), StatusCode::CREATED);
    let analyst = crate::support::token(atlas_access::Role::PartnershipAnalyst, "E06000009", None);
    assert_eq!(
        grid_records(&app, &analyst).await,
        5,
        "loaded into the cache"
    );
    let version = "SELECT data_version FROM partnerships WHERE code = 'E06000009'";
    let before = app.count(version).await;
    // Incidents kept two years: the February 2024 records are past it on 30 November 2026.
    let mut settings = atlas_app::retention::RetentionSettings::default();
    settings.keep_years.insert("incident".to_owned(), 2);
    settings.keep_years.insert("referral".to_owned(), 7);
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
    let database = app.database();
    let dry = atlas_app::retention::apply(&database, &settings, today, "cli:test", true)
        .await
        .unwrap();
    assert_eq!(dry.len(), 1);
    assert_eq!(
        (dry[0].record_kind.as_str(), dry[0].records),
        ("incident", 5)
    );
    assert_eq!(
        app.count("SELECT count(*) FROM case_records").await,
        5,
        "a dry run deletes nothing"
    );
    let frozen = "SELECT count(*) FROM published_summaries
                   WHERE partnership_code = 'E06000009' AND period IN ('2024-Q1', '2024-02')";
    assert_eq!(app.count(frozen).await, 0, "nor freezes anything");
    let removed = atlas_app::retention::apply(&database, &settings, today, "cli:test", false)
        .await
        .unwrap();
    assert_eq!(removed, dry);
    assert_eq!(app.count("SELECT count(*) FROM case_records").await, 0);
    // The periods of the records deleted were frozen first, from those records: not the
    // figures of an empty quarter.
    assert_eq!(app.count(frozen).await, 2);
    let client = atlas_store::connect_admin(&app.database_url(), std::time::Duration::from_secs(5))
        .await
        .unwrap();
    let figures: Value = client
        .query_one(
            "SELECT figures FROM published_summaries
              WHERE partnership_code = 'E06000009' AND period = '2024-Q1'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let (first, last) = (
        chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
        chrono::NaiveDate::from_ymd_opt(2024, 3, 31).unwrap(),
    );
    let empty = serde_json::to_value(atlas_analytics::gate::summarise([], first, last)).unwrap();
    assert_ne!(figures, empty, "{figures}");
    assert_eq!(
        app.count(version).await,
        before + 1,
        "every process reloads"
    );
    assert_eq!(grid_records(&app, &analyst).await, 0, "the cache reloaded");
    // Audited with the cutoffs and the counts.
    assert_eq!(
        app.count(
            "SELECT count(*) FROM audit_log WHERE action = 'retention.apply' AND subject = 'cli:test'
               AND partnership_code = 'E06000009' AND records_of = '{E06000009}'
               AND parameters->>'incident' = '5' AND parameters->>'before incident' = '2024-11-30'
               AND rows_returned = 5"
        )
        .await,
        1
    );
    // Nothing left to delete: a second run deletes nothing and says so.
    assert!(
        atlas_app::retention::apply(&database, &settings, today, "cli:test", false)
            .await
            .unwrap()
            .is_empty()
    );
}

#[actix_web::test]
async fn an_upload_refuses_rows_retention_would_delete() {
    // Incidents kept a year: the February 2024 incidents are past it; a referral is not. Rows
    // past retention are refused but not counted against the extract's rejected share.
    let (app, agency) = ready_app_with(|settings| {
        settings
            .retention
            .keep_years
            .insert("incident".to_owned(), 1);
    })
    .await;
    let mut text = String::from_utf8(extract(3, 0)).unwrap();
    text.push_str(&format!(
        "{},referral,2024-02-01,{},{},,15\n",
        pseudonym(9),
        BLACKPOOL.0,
        BLACKPOOL.1
    ));
    let response = app
        .upload(agency, CSV, text.into_bytes(), "/api/v1/extracts")
        .await;
    let status = response.status();
    let batch: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{batch}");
    assert_eq!(batch["rows_accepted"], 1, "{batch}");
    assert_eq!(batch["rows_rejected"], 3, "{batch}");
    let report = rejection_report(&app, agency, &batch).await;
    let first_kept = chrono::Utc::now()
        .date_naive()
        .checked_sub_months(chrono::Months::new(12))
        .unwrap();
    assert!(
        report.contains(&format!(
            "incident records are kept from {first_kept} (the retention period)"
        )),
        "{report}"
    );
    assert_eq!(app.count("SELECT count(*) FROM case_records").await, 1);
}

#[actix_web::test]
async fn erasure_deletes_one_childs_records_audited_without_the_pseudonym_and_every_cache_reloads()
{
    use atlas_app::retention::{Erasure, erase};
    let (app, agency) = ready_app().await;
    let uploaded = app
        .upload(agency, CSV, extract(5, 0), "/api/v1/extracts")
        .await;
    assert_eq!(uploaded.status(), StatusCode::CREATED);
    let analyst = crate::support::token(atlas_access::Role::PartnershipAnalyst, "E06000009", None);
    assert_eq!(grid_records(&app, &analyst).await, 5);
    let version = "SELECT data_version FROM partnerships WHERE code = 'E06000009'";
    let before = app.count(version).await;
    let key = atlas_ingest::pseudonym::PseudonymKey::from_hex(crate::support::TEST_PSEUDONYM_KEY)
        .unwrap();
    let url = app.database_url();
    let mut erasure = Erasure {
        pseudonym: pseudonym(2),
        agency: None,
        reference: "DPO-2026-114".to_owned(),
    };
    // A dry run counts the child's one record, deletes nothing, and is audited.
    let dry = erase(&url, &key, &erasure, "cli:test", true).await.unwrap();
    assert_eq!(dry.len(), 1);
    assert_eq!(
        (
            dry[0].partnership.as_str(),
            dry[0].record_kind.as_str(),
            dry[0].records
        ),
        ("E06000009", "incident", 1)
    );
    assert_eq!(app.count("SELECT count(*) FROM case_records").await, 5);
    // Only this agency's records: the same one.
    erasure.agency = Some(agency);
    let removed = erase(&url, &key, &erasure, "cli:test", false)
        .await
        .unwrap();
    assert_eq!(removed, dry);
    assert_eq!(app.count("SELECT count(*) FROM case_records").await, 4);
    assert_eq!(
        app.count(version).await,
        before + 1,
        "every process reloads"
    );
    assert_eq!(grid_records(&app, &analyst).await, 4, "the cache reloaded");
    // Audited with the reference and the counts, never the pseudonym in any form.
    assert_eq!(
        app.count(
            "SELECT count(*) FROM audit_log WHERE action = 'erasure.apply' AND subject = 'cli:test'
               AND partnership_code = 'E06000009' AND records_of = '{E06000009}'
               AND parameters->>'reference' = 'DPO-2026-114' AND parameters->>'incident' = '1'
               AND rows_returned = 1"
        )
        .await,
        1
    );
    assert_eq!(
        app.count(
            "SELECT count(*) FROM audit_log WHERE action = 'erasure.dry_run' AND rows_returned = 1"
        )
        .await,
        1
    );
    let mut child = [0_u8; 32];
    child[31] = 2;
    let keyed: String = key
        .sign(&child)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    for trace in [pseudonym(2), keyed] {
        assert_eq!(
            app.count(&format!(
                "SELECT count(*) FROM audit_log a WHERE a::text LIKE '%{trace}%'"
            ))
            .await,
            0
        );
    }
    // Asked again: nothing left, and that is audited too.
    assert!(
        erase(&url, &key, &erasure, "cli:test", false)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        app.count(
            "SELECT count(*) FROM audit_log WHERE action = 'erasure.apply' AND rows_returned = 0
               AND partnership_code IS NULL"
        )
        .await,
        1
    );
    // Refusals: an unknown agency, another key (nothing could be found), a malformed pseudonym.
    erasure.agency = Some(uuid::Uuid::new_v4());
    assert!(
        erase(&url, &key, &erasure, "cli:test", true)
            .await
            .unwrap_err()
            .contains("no agency has the id")
    );
    erasure.agency = None;
    let other = atlas_ingest::pseudonym::PseudonymKey::from_hex(&"02".repeat(32)).unwrap();
    assert!(
        erase(&url, &other, &erasure, "cli:test", true)
            .await
            .unwrap_err()
            .contains("is not the key this database's records were pseudonymised with")
    );
    erasure.pseudonym = "Jane Doe".to_owned();
    let refused = erase(&url, &key, &erasure, "cli:test", true)
        .await
        .unwrap_err();
    assert!(refused.contains("64 hexadecimal characters"), "{refused}");
    assert!(!refused.contains("Jane"), "never repeated: {refused}");
    assert_eq!(app.count("SELECT count(*) FROM case_records").await, 4);
}

/// Records in Blackpool's grid, as its analyst reads it.
async fn grid_records(app: &TestApp, analyst: &str) -> u64 {
    let grid: Value = app
        .get_as(analyst, "/api/v1/partnerships/E06000009/grid?resolution=6")
        .await
        .json()
        .await
        .unwrap();
    grid["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|cell| cell["records"].as_u64().unwrap())
        .sum()
}
