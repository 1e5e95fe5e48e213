//! Bringing a database up to date, against a real PostgreSQL.

#![expect(clippy::unwrap_used, reason = "a test fails where it unwraps, loudly")]

use atlas_app::reference::{migrate, tile};
use atlas_ingest::reference::{BoundaryFields, read_boundaries, read_neighbours};
use atlas_postgres::test_db::{TestDatabase, england_boundaries, england_neighbours};
use atlas_store::reference;

const LANCASHIRE_CLUSTER: [&str; 3] = ["E06000009", "E08000005", "E10000017"];

async fn import_cluster(test_db: &TestDatabase) {
    let areas = read_boundaries(
        england_boundaries(&LANCASHIRE_CLUSTER).as_bytes(),
        &BoundaryFields::default(),
    )
    .unwrap();
    let pairs = read_neighbours(england_neighbours(&LANCASHIRE_CLUSTER).as_bytes()).unwrap();
    reference::import(test_db.url(), &areas, Some(&pairs))
        .await
        .unwrap();
}

#[tokio::test]
async fn coverage_of_an_older_tiling_is_retiled_once_from_the_stored_boundaries() {
    let test_db = TestDatabase::new().await;
    import_cluster(&test_db).await;
    let client = atlas_store::connect_admin(test_db.url(), std::time::Duration::from_secs(5))
        .await
        .unwrap();
    let count = |sql: &'static str| {
        let client = &client;
        async move { client.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    let fresh = count("SELECT count(*) FROM partnership_cells").await;
    let whole = count("SELECT count(*) FROM partnership_cells WHERE whole").await;
    assert!(whole > 0 && whole < fresh);
    // What a database migrated from the centre-inside tiling looks like: tiling 1, nothing
    // marked whole, and the border cells missing.
    client
        .batch_execute(
            "UPDATE partnerships SET coverage_tiling = 1;
             DELETE FROM partnership_cells WHERE resolution = 9 AND NOT whole AND cell % 2 = 0;
             UPDATE partnership_cells SET whole = false;",
        )
        .await
        .unwrap();
    assert_eq!(
        reference::retile_outdated(test_db.url(), tile)
            .await
            .unwrap(),
        3
    );
    assert_eq!(count("SELECT count(*) FROM partnership_cells").await, fresh);
    assert_eq!(
        count("SELECT count(*) FROM partnership_cells WHERE whole").await,
        whole
    );
    assert_eq!(
        count("SELECT count(*) FROM partnerships WHERE coverage_tiling = 2").await,
        3
    );
    // Migrating again (as every start does) finds nothing to do.
    migrate(test_db.url()).await.unwrap();
    assert_eq!(
        reference::retile_outdated(test_db.url(), tile)
            .await
            .unwrap(),
        0
    );
}
