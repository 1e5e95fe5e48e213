//! `case_records` is partitioned by partnership (docs/scale-out.md): the application's queries
//! about one partnership read that partnership's partition only, and its queries over every
//! partnership read each partnership's records through its own partition, one at a time. Each
//! query is explained as the application sends it (its own text, values bound as parameters).
//! Retention and erasure are the exceptions by design: they look in every partition.

use std::collections::BTreeSet;
use std::time::Duration;

use atlas_postgres::test_db::TestDatabase;
use chrono::NaiveDate;
use serde_json::Value;
use tokio_postgres::types::ToSql;

use crate::connect_admin;

/// Partnerships with records, each in a partition of its own.
const PARTNERSHIPS: [&str; 3] = ["E06000009", "E08000005", "E10000017"];

/// Every node of a plan, depth first.
fn nodes(plan: &Value) -> Vec<&Value> {
    let mut all = vec![plan];
    for child in plan["Plans"].as_array().into_iter().flatten() {
        all.extend(nodes(child));
    }
    all
}

/// The `case_records` partitions a plan's nodes read, with the loops each ran (EXPLAIN
/// ANALYZE; nodes never executed are left out).
fn partitions_read(plan: &Value) -> Vec<(String, u64)> {
    nodes(plan)
        .into_iter()
        .filter_map(|node| {
            let relation = node["Relation Name"].as_str()?;
            let loops = node["Actual Loops"].as_u64().unwrap_or(1);
            (relation.starts_with("case_records_p") && loops > 0)
                .then(|| (relation.to_owned(), loops))
        })
        .collect()
}

/// `EXPLAIN (ANALYZE, FORMAT JSON)` of `query` with `parameters`, inside a transaction that is
/// rolled back (a DELETE deletes nothing for good).
async fn explain(
    client: &mut tokio_postgres::Client,
    query: &str,
    parameters: &[&(dyn ToSql + Sync)],
) -> Value {
    let transaction = client.transaction().await.unwrap();
    let row = transaction
        .query_one(
            &format!("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, FORMAT JSON) {query}"),
            parameters,
        )
        .await
        .unwrap();
    transaction.rollback().await.unwrap();
    let plans: Value = row.get(0);
    plans[0]["Plan"].clone()
}

#[tokio::test]
async fn queries_about_one_partnership_read_its_partition_only() {
    let database = TestDatabase::new().await;
    let mut client = connect_admin(database.url(), Duration::from_secs(10))
        .await
        .unwrap();
    let crate::test_batch::Seeded { agency, batch } =
        crate::test_batch::one_batch(&client, &PARTNERSHIPS, 10).await;
    client
        .execute(
            "INSERT INTO case_records (partnership_code, batch_id, agency_id, subject, record_kind,
                                       occurred_on, cell)
             SELECT code, $1, $2, sha256(int4send(i)), 'incident', DATE '2024-02-01' + i,
                    617700169958293503
             FROM unnest($3::text[]) code, generate_series(1, 10) i",
            &[&batch, &agency, &PARTNERSHIPS.as_slice()],
        )
        .await
        .unwrap();
    client.batch_execute("ANALYZE case_records").await.unwrap();
    let mut own = Vec::new();
    for code in PARTNERSHIPS {
        let row = client
            .query_one(
                "SELECT tableoid::regclass::text FROM case_records WHERE partnership_code = $1 LIMIT 1",
                &[&code],
            )
            .await
            .unwrap();
        own.push(row.get::<_, String>(0));
    }
    assert_eq!(
        own.iter().collect::<BTreeSet<_>>().len(),
        PARTNERSHIPS.len(),
        "the test's partnerships lie in partitions of their own: {own:?}"
    );

    // The cache's read of one partnership's records (the query its COPY runs).
    let code = atlas_domain::GssCode::try_from(PARTNERSHIPS[0].to_owned()).unwrap();
    let plan = explain(&mut client, &crate::records::records_query(&code), &[]).await;
    assert_eq!(
        partitions_read(&plan),
        [(own[0].clone(), 1)],
        "a partnership's records are read from its partition: {plan}"
    );

    // Withdrawing a batch deletes from the partitions of the partnerships it touched.
    let touched = vec![PARTNERSHIPS[1].to_owned()];
    let plan = explain(
        &mut client,
        crate::batches::DELETE_BATCH_RECORDS,
        &[&batch, &touched],
    )
    .await;
    assert_eq!(
        partitions_read(&plan),
        [(own[1].clone(), 1)],
        "a withdrawal reads only its partnerships' partitions: {plan}"
    );

    // The national export's counts go partnership by partnership: each loop reads one
    // partition, so every partition is read once per partnership in it, not once per
    // partnership in England.
    let (from, to) = (
        NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
        NaiveDate::from_ymd_opt(2024, 3, 31).unwrap(),
    );
    for query in [
        crate::records::PERIOD_RECORDS_BY_KIND,
        crate::records::PERIOD_SUBJECTS,
    ] {
        let plan = explain(&mut client, query, &[&from, &to]).await;
        let read = partitions_read(&plan);
        let partitions: BTreeSet<&String> = read.iter().map(|(partition, _)| partition).collect();
        assert_eq!(
            partitions,
            own.iter().collect(),
            "only the partitions holding partnerships are read: {plan}"
        );
        assert!(
            read.iter().all(|(_, loops)| *loops == 1),
            "each partition once, for its one partnership: {read:?} {plan}"
        );
    }
}
