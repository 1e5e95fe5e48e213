//! The store against a real PostgreSQL, one database per test.

#![expect(clippy::unwrap_used, reason = "a test fails where it unwraps, loudly")]

use atlas_domain::{AgencyKind, GssCode};
use atlas_ingest::reference::{BoundaryFields, read_boundaries, read_neighbours};
use atlas_postgres::test_db::{
    ENGLAND_BOUNDARIES, ENGLAND_NEIGHBOURS, TestDatabase, england_boundaries, england_neighbours,
};
use atlas_store::{
    Database, DatabaseSettings, StoreError, agencies, migrations, partnerships, reference,
};

const LANCASHIRE_CLUSTER: [&str; 3] = ["E06000009", "E08000005", "E10000017"];

fn code(text: &str) -> GssCode {
    GssCode::parse(text).unwrap()
}

fn database(test_db: &TestDatabase) -> Database {
    Database::new(&DatabaseSettings::new(test_db.url().to_owned().into(), 2)).unwrap()
}

async fn import_cluster(test_db: &TestDatabase) -> reference::ImportSummary {
    let areas = read_boundaries(
        england_boundaries(&LANCASHIRE_CLUSTER).as_bytes(),
        &BoundaryFields::default(),
    )
    .unwrap();
    let pairs = read_neighbours(england_neighbours(&LANCASHIRE_CLUSTER).as_bytes()).unwrap();
    reference::import(test_db.url(), &areas, Some(&pairs))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_test_database_is_migrated_and_private() {
    let first = TestDatabase::new().await;
    let second = TestDatabase::new().await;
    assert_ne!(first.url(), second.url());
    assert!(
        migrations::pending(&database(&first))
            .await
            .unwrap()
            .is_empty()
    );
    import_cluster(&first).await;
    let mut conn = database(&second).connection().await.unwrap();
    assert!(
        partnerships::list(&mut conn).await.unwrap().is_empty(),
        "the second database saw the first's data"
    );
}

#[tokio::test]
async fn england_imports_with_the_neighbours_of_the_csv_and_reimports_as_a_no_op() {
    let test_db = TestDatabase::new().await;
    let areas = read_boundaries(ENGLAND_BOUNDARIES.as_bytes(), &BoundaryFields::default()).unwrap();
    let pairs = read_neighbours(ENGLAND_NEIGHBOURS.as_bytes()).unwrap();
    let first = reference::import(test_db.url(), &areas, Some(&pairs))
        .await
        .unwrap();
    assert_eq!((first.added, first.updated, first.unchanged), (153, 0, 0));
    assert_eq!(first.neighbours_added, 718);
    let expected_cells: u64 = areas
        .iter()
        .map(|area| area.coverage.iter().count() as u64)
        .sum();
    assert_eq!(first.cells_written, expected_cells);

    let mut conn = database(&test_db).connection().await.unwrap();
    let stored = partnerships::list(&mut conn).await.unwrap();
    assert_eq!(stored.len(), 153);
    for partnership in &stored {
        let mut expected: Vec<String> = ENGLAND_NEIGHBOURS
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(','))
            .filter(|(from, _)| *from == partnership.code)
            .map(|(_, to)| to.to_owned())
            .collect();
        expected.sort();
        assert_eq!(
            partnership.neighbours, expected,
            "neighbours of {}",
            partnership.code
        );
        assert_eq!(
            partnership.local_authorities,
            vec![partnership.code.clone()]
        );
        let area = areas
            .iter()
            .find(|area| area.code.as_str() == partnership.code)
            .unwrap();
        let finest = area
            .coverage
            .cells(atlas_domain::StoredResolution::FINEST)
            .len();
        assert_eq!(usize::try_from(partnership.coverage_cells).unwrap(), finest);
    }
    let isle_of_wight = stored.iter().find(|p| p.code == "E06000046").unwrap();
    assert!(isle_of_wight.neighbours.is_empty());

    let again = reference::import(test_db.url(), &areas, Some(&pairs))
        .await
        .unwrap();
    assert!(again.changed_nothing(), "{again:?}");
    assert_eq!(again.unchanged, 153);
    assert_eq!(partnerships::list(&mut conn).await.unwrap(), stored);
}

#[tokio::test]
async fn a_changed_boundary_replaces_the_coverage_and_stale_neighbours_go() {
    let test_db = TestDatabase::new().await;
    import_cluster(&test_db).await;
    let mut conn = database(&test_db).connection().await.unwrap();
    let before = partnerships::find(&mut conn, &code("E06000009"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before.neighbours, vec!["E10000017"]);

    // Blackpool shrunk to a small square, and no longer listed as Lancashire's neighbour.
    let square = r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"E06000009","name":"Blackpool"},"geometry":{"type":"Polygon","coordinates":[[[-3.05,53.80],[-3.03,53.80],[-3.03,53.82],[-3.05,53.82],[-3.05,53.80]]]}}]}"#;
    let areas = read_boundaries(square.as_bytes(), &BoundaryFields::default()).unwrap();
    let summary = reference::import(test_db.url(), &areas, Some(&[]))
        .await
        .unwrap();
    assert_eq!(
        (summary.added, summary.updated, summary.unchanged),
        (0, 1, 0)
    );
    assert_eq!(
        summary.neighbours_removed, 2,
        "both directions of Blackpool-Lancashire"
    );

    let after = partnerships::find(&mut conn, &code("E06000009"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        after.coverage_cells < before.coverage_cells / 4,
        "{} -> {}",
        before.coverage_cells,
        after.coverage_cells
    );
    assert!(after.neighbours.is_empty());
    let lancashire = partnerships::find(&mut conn, &code("E10000017"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lancashire.neighbours, vec!["E08000005"]);
    let boundary = partnerships::boundary(&mut conn, &code("E06000009"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(boundary["type"], "Polygon");
}

#[tokio::test]
async fn an_import_naming_an_unknown_neighbour_stores_nothing() {
    let test_db = TestDatabase::new().await;
    let areas = read_boundaries(
        england_boundaries(&["E06000009"]).as_bytes(),
        &BoundaryFields::default(),
    )
    .unwrap();
    let pairs = vec![(code("E06000009"), code("E10000017"))];
    let err = reference::import(test_db.url(), &areas, Some(&pairs))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    assert!(
        err.to_string()
            .contains("E10000017 is not a known partnership"),
        "{err}"
    );
    let mut conn = database(&test_db).connection().await.unwrap();
    assert!(
        partnerships::list(&mut conn).await.unwrap().is_empty(),
        "a refused import left rows behind"
    );
}

/// The audit entry of a test's change.
fn entry() -> atlas_store::audit::NewEntry {
    atlas_store::audit::NewEntry::operator("test".to_owned(), "agency.manage", "test".to_owned())
}

#[tokio::test]
async fn agencies_serve_known_partnerships_and_names_are_unique_per_kind() {
    let test_db = TestDatabase::new().await;
    import_cluster(&test_db).await;
    let mut conn = database(&test_db).connection().await.unwrap();
    let police = agencies::add(
        &mut conn,
        "  Lancashire Constabulary ",
        AgencyKind::Police,
        &[code("E10000017"), code("E06000009"), code("E10000017")],
        &entry(),
    )
    .await
    .unwrap();
    assert_eq!(police.name, "Lancashire Constabulary");
    assert_eq!(police.partnerships, vec!["E06000009", "E10000017"]);
    let health = agencies::add(
        &mut conn,
        "Lancashire Constabulary",
        AgencyKind::Health,
        &[code("E08000005")],
        &entry(),
    )
    .await
    .unwrap();

    let duplicate = agencies::add(
        &mut conn,
        "Lancashire Constabulary",
        AgencyKind::Police,
        &[code("E10000017")],
        &entry(),
    )
    .await
    .unwrap_err();
    assert!(matches!(duplicate, StoreError::Conflict(_)), "{duplicate}");
    let unknown = agencies::add(
        &mut conn,
        "Nowhere Police",
        AgencyKind::Police,
        &[code("E10000099")],
        &entry(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        unknown.to_string(),
        "partnership E10000099 does not exist; import the reference geography first"
    );
    assert!(matches!(
        agencies::add(
            &mut conn,
            " ",
            AgencyKind::Vcs,
            &[code("E10000017")],
            &entry()
        )
        .await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        agencies::add(&mut conn, "Empty", AgencyKind::Vcs, &[], &entry()).await,
        Err(StoreError::Invalid(_))
    ));

    let listed = agencies::list(&mut conn).await.unwrap();
    assert_eq!(listed, vec![health, police], "sorted by name, then kind");
}

#[tokio::test]
async fn the_audit_log_refuses_updates_and_deletes() {
    let test_db = TestDatabase::new().await;
    let client = atlas_store::connect_admin(test_db.url(), std::time::Duration::from_secs(5))
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO audit_log (subject, action, resource, outcome, previous_hash, hash, chain)
             VALUES ('ana', 'read', 'partnerships', 'allowed', $1, $2, 'administration')",
            &[&vec![0_u8; 32], &vec![1_u8; 32]],
        )
        .await
        .unwrap();
    for statement in [
        "UPDATE audit_log SET subject = 'eve'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let err = client.batch_execute(statement).await.unwrap_err();
        assert!(
            err.to_string().contains("append-only") || format!("{err:?}").contains("append-only"),
            "{statement}: {err:?}"
        );
    }
}

/// An entry by `subject`, as a request would leave it.
fn read_entry(subject: &str) -> atlas_store::audit::NewEntry {
    let mut entry = atlas_store::audit::NewEntry::operator(
        subject.to_owned(),
        "reference.read",
        "/api/v1/partnerships".to_owned(),
    );
    entry
        .parameters
        .insert("boundary".to_owned(), "true".to_owned());
    entry.rows_returned = Some(3);
    entry
}

#[tokio::test]
async fn the_audit_chain_links_concurrent_appends_and_verification_names_the_tampered_entry() {
    use atlas_store::audit;
    let test_db = TestDatabase::new().await;
    let db = database(&test_db);
    // Appends from both drivers, from concurrent tasks: the advisory lock orders them.
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..6 {
        let (db, url) = (db.clone(), test_db.url().to_owned());
        tasks.spawn(async move {
            for round in 0..5 {
                let entries = [
                    read_entry(&format!("task{task}-{round}a")),
                    read_entry(&format!("task{task}-{round}b")),
                ];
                if task % 2 == 0 {
                    let mut conn = db.connection().await.unwrap();
                    audit::append_committed(&mut conn, &entries).await.unwrap();
                } else {
                    let mut client =
                        atlas_store::connect_admin(&url, std::time::Duration::from_secs(5))
                            .await
                            .unwrap();
                    let transaction = client.transaction().await.unwrap();
                    audit::append_in(&transaction, &entries).await.unwrap();
                    transaction.commit().await.unwrap();
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let mut conn = db.connection().await.unwrap();
    let verification = audit::verify(&mut conn, None, false).await.unwrap();
    assert_eq!(verification.entries, 60);
    assert_eq!(verification.first_broken, None);
    let listed = audit::list(
        &mut conn,
        &audit::Filter {
            limit: 1,
            ..audit::Filter::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(listed[0].parameters["boundary"], "true");
    assert_eq!(listed[0].rows_returned, Some(3));

    // A superuser bypasses the trigger and edits entry 17: verification names it.
    let client = atlas_store::connect_admin(test_db.url(), std::time::Duration::from_secs(5))
        .await
        .unwrap();
    client
        .batch_execute(
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only;
             UPDATE audit_log SET rows_returned = 0 WHERE id = (SELECT id FROM audit_log ORDER BY id OFFSET 16 LIMIT 1);",
        )
        .await
        .unwrap();
    let tampered: i64 = client
        .query_one(
            "SELECT id FROM audit_log ORDER BY id OFFSET 16 LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let broken = audit::verify(&mut conn, None, false)
        .await
        .unwrap()
        .first_broken
        .unwrap();
    assert_eq!(broken.id, tampered);
    assert!(broken.reason.contains("altered"), "{}", broken.reason);

    // Deleting an entry breaks the link of the one after it.
    client
        .batch_execute(&format!(
            "UPDATE audit_log SET rows_returned = 3 WHERE id = {tampered};
             DELETE FROM audit_log WHERE id = (SELECT id FROM audit_log ORDER BY id OFFSET 29 LIMIT 1);"
        ))
        .await
        .unwrap();
    let after_gap: i64 = client
        .query_one(
            "SELECT id FROM audit_log ORDER BY id OFFSET 29 LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let broken = audit::verify(&mut conn, None, false)
        .await
        .unwrap()
        .first_broken
        .unwrap();
    assert_eq!(broken.id, after_gap);
    assert!(broken.reason.contains("removed"), "{}", broken.reason);
}

#[tokio::test]
async fn chains_are_per_partnership_and_keyed_and_a_checkpoint_reveals_truncation() {
    use atlas_store::audit::{self, Checkpoint};
    let test_db = TestDatabase::new().await;
    import_cluster(&test_db).await;
    let db = database(&test_db);
    let mut conn = db.connection().await.unwrap();
    let about = |partnership: Option<&str>, subject: &str| {
        let mut entry = read_entry(subject);
        entry.partnership = partnership.map(str::to_owned);
        entry
    };
    audit::append_committed(
        &mut conn,
        &[
            about(Some("E10000017"), "a1"),
            about(Some("E06000009"), "b1"),
            about(None, "admin1"),
            about(Some("E10000017"), "a2"),
        ],
    )
    .await
    .unwrap();
    let verification = audit::verify(&mut conn, None, false).await.unwrap();
    assert_eq!(verification.first_broken, None, "{verification:?}");
    let chains: Vec<(&str, u64)> = verification
        .heads
        .iter()
        .map(|head| (head.chain.as_str(), head.entries))
        .collect();
    assert_eq!(
        chains,
        [("E06000009", 1), ("E10000017", 2), ("administration", 1)],
        "one chain per partnership and one for administration"
    );
    let client = atlas_store::connect_admin(test_db.url(), std::time::Duration::from_secs(5))
        .await
        .unwrap();
    let keyed: i64 = client
        .query_one(
            "SELECT count(*) FROM audit_log WHERE key_id ~ '^[0-9a-f]{16}$'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        keyed, 4,
        "every new entry names the key its hash is keyed with"
    );

    // From a checkpoint, only what follows is read.
    let checkpoint = Checkpoint::sign(chrono::Utc::now(), verification.heads);
    audit::append_committed(&mut conn, &[about(Some("E10000017"), "a3")])
        .await
        .unwrap();
    let since = audit::verify(&mut conn, Some(&checkpoint), false)
        .await
        .unwrap();
    assert_eq!((since.entries, since.first_broken), (1, None));
    let checkpoint = Checkpoint::sign(chrono::Utc::now(), since.heads);

    // Someone who can write to the database but lacks the key strips an entry's key to
    // rehash it with plain SHA-256: refused.
    client
        .batch_execute(
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only;
             UPDATE audit_log SET key_id = NULL WHERE subject = 'b1';",
        )
        .await
        .unwrap();
    let broken = audit::verify(&mut conn, None, false)
        .await
        .unwrap()
        .first_broken
        .unwrap();
    assert_eq!(broken.chain, "E06000009");
    assert!(broken.reason.contains("not keyed"), "{}", broken.reason);
    client
        .batch_execute(&format!(
            "UPDATE audit_log SET key_id = '{}' WHERE subject = 'b1'",
            checkpoint.key_id
        ))
        .await
        .unwrap();
    assert_eq!(
        audit::verify(&mut conn, Some(&checkpoint), false)
            .await
            .unwrap()
            .first_broken,
        None
    );

    // With INSERT rights alone, someone adds an unkeyed entry to `global` (hashing with plain
    // SHA-256 needs no key), or an entry with the smallest id a walk might skip, or an entry
    // behind a checkpointed head: each is found.
    let restore = "DELETE FROM audit_log WHERE subject = 'intruder'";
    for (forged, found) in [
        (
            "INSERT INTO audit_log (subject, action, resource, outcome, previous_hash, hash, chain)
             VALUES ('intruder', 'grid.read', '/x', 'allowed', decode(repeat('00', 32), 'hex'),
                     decode(repeat('11', 32), 'hex'), 'global')",
            "global",
        ),
        (
            "INSERT INTO audit_log (id, subject, action, resource, outcome, previous_hash, hash,
                                    chain, key_id)
             OVERRIDING SYSTEM VALUE
             VALUES (-9223372036854775808, 'intruder', 'grid.read', '/x', 'allowed',
                     decode(repeat('00', 32), 'hex'), decode(repeat('22', 32), 'hex'),
                     'administration', 'abababababababab')",
            "administration",
        ),
    ] {
        client.batch_execute(forged).await.unwrap();
        let broken = audit::verify(&mut conn, Some(&checkpoint), false)
            .await
            .unwrap()
            .first_broken
            .unwrap_or_else(|| panic!("not found: {forged}"));
        assert_eq!(broken.chain, found, "{broken:?}");
        let broken = audit::verify(&mut conn, Some(&checkpoint), true)
            .await
            .unwrap()
            .first_broken
            .unwrap_or_else(|| panic!("not found by a full walk: {forged}"));
        assert_eq!(broken.chain, found, "{broken:?}");
        client.batch_execute(restore).await.unwrap();
    }
    // An entry edited before the checkpoint's head escapes the walk from the head on, not the
    // full walk that meets the head.
    client
        .batch_execute("UPDATE audit_log SET rows_returned = 0 WHERE subject = 'a1'")
        .await
        .unwrap();
    assert_eq!(
        audit::verify(&mut conn, Some(&checkpoint), false)
            .await
            .unwrap()
            .first_broken,
        None,
        "the walk from the head reads only what follows it"
    );
    let broken = audit::verify(&mut conn, Some(&checkpoint), true)
        .await
        .unwrap()
        .first_broken
        .unwrap();
    assert!(broken.reason.contains("altered"), "{}", broken.reason);
    client
        .batch_execute("UPDATE audit_log SET rows_returned = 3 WHERE subject = 'a1'")
        .await
        .unwrap();

    // Removing a chain's last entry cannot be seen from the chain alone; the checkpoint sees it.
    client
        .batch_execute("DELETE FROM audit_log WHERE subject = 'a3'")
        .await
        .unwrap();
    assert_eq!(
        audit::verify(&mut conn, None, false)
            .await
            .unwrap()
            .first_broken,
        None,
        "a shortened chain is still a chain"
    );
    let broken = audit::verify(&mut conn, Some(&checkpoint), false)
        .await
        .unwrap()
        .first_broken
        .unwrap();
    assert_eq!(broken.chain, "E10000017");
    assert!(broken.reason.contains("truncated"), "{}", broken.reason);

    // So is a chain deleted whole.
    client
        .batch_execute("DELETE FROM audit_log WHERE partnership_code = 'E06000009'")
        .await
        .unwrap();
    let broken = audit::verify(&mut conn, Some(&checkpoint), false)
        .await
        .unwrap()
        .first_broken
        .unwrap();
    assert_eq!(broken.chain, "E06000009");
    assert!(broken.reason.contains("deleted"), "{}", broken.reason);
}

#[tokio::test]
async fn agreements_grant_their_scopes_between_their_dates_until_revoked() {
    use atlas_store::agreements;
    use chrono::{Days, Utc};
    let test_db = TestDatabase::new().await;
    import_cluster(&test_db).await;
    let mut conn = database(&test_db).connection().await.unwrap();
    let today = Utc::now().date_naive();
    let terms = agreements::Terms {
        from: code("E10000017"),
        to: code("E06000009"),
        scopes: [atlas_domain::Scope::Releases].into(),
        valid_from: today - Days::new(10),
        valid_to: Some(today + Days::new(10)),
    };
    let entry = atlas_store::audit::NewEntry::operator(
        "test".to_owned(),
        "agreement.manage",
        "test".to_owned(),
    );
    let agreement = agreements::create(&mut conn, &terms, "admin@test", &entry)
        .await
        .unwrap();
    let shared = |day| {
        let db = database(&test_db);
        async move {
            let mut conn = db.connection().await.unwrap();
            agreements::shared_scopes(&mut conn, &code("E10000017"), &code("E06000009"), day)
                .await
                .unwrap()
        }
    };
    assert_eq!(shared(today).await, [atlas_domain::Scope::Releases].into());
    assert!(
        shared(today - Days::new(11)).await.is_empty(),
        "before valid_from"
    );
    assert!(
        shared(today + Days::new(11)).await.is_empty(),
        "after valid_to"
    );
    let reverse =
        agreements::shared_scopes(&mut conn, &code("E06000009"), &code("E10000017"), today)
            .await
            .unwrap();
    assert!(reverse.is_empty(), "an agreement shares one way");
    agreements::revoke(&mut conn, agreement.id, &entry)
        .await
        .unwrap();
    assert!(
        shared(today).await.is_empty(),
        "revocation stops it at once"
    );
    let mut conn = database(&test_db).connection().await.unwrap();
    let verification = atlas_store::audit::verify(&mut conn, None, false)
        .await
        .unwrap();
    assert_eq!(
        verification.entries, 2,
        "creation and revocation were audited"
    );
    assert_eq!(verification.first_broken, None);
}

#[tokio::test]
async fn child_populations_import_idempotently_and_sum_only_complete_years() {
    use atlas_store::populations::{self, Estimate};
    let test_db = TestDatabase::new().await;
    import_cluster(&test_db).await;
    let mut conn = database(&test_db).connection().await.unwrap();
    let estimates = |population| {
        vec![
            Estimate {
                code: code("E06000009"),
                year: 2024,
                population_0_17: population,
            },
            Estimate {
                code: code("E10000017"),
                year: 2024,
                population_0_17: 255_000,
            },
        ]
    };
    let first = populations::import(&mut conn, &estimates(29_512), false, "ONS MYE 2024")
        .await
        .unwrap();
    assert_eq!((first.written, first.unchanged), (2, 0));
    let again = populations::import(&mut conn, &estimates(29_512), false, "ONS MYE 2024")
        .await
        .unwrap();
    assert_eq!(
        (again.written, again.unchanged),
        (0, 2),
        "re-importing changes nothing"
    );
    let revised = populations::import(&mut conn, &estimates(29_600), false, "ONS MYE 2024")
        .await
        .unwrap();
    assert_eq!((revised.written, revised.unchanged), (1, 1));

    let unknown = vec![Estimate {
        code: code("E07000117"),
        year: 2024,
        population_0_17: 10,
    }];
    let err = populations::import(&mut conn, &unknown, false, "x")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(message) if message.contains("E07000117")),
        "{err}"
    );

    let codes: Vec<String> = LANCASHIRE_CLUSTER.iter().map(|c| (*c).to_owned()).collect();
    let sums = populations::of_partnerships(&mut conn, &codes)
        .await
        .unwrap();
    assert_eq!(sums["E06000009"][0].population_0_17, 29_600);
    assert_eq!(sums["E06000009"][0].source, "ONS MYE 2024");
    assert!(!sums["E06000009"][0].approximate);
    assert!(!sums.contains_key("E08000005"), "Rochdale has no figures");
}

#[test]
fn a_year_uses_its_population_or_the_nearest_earlier_or_the_earliest() {
    use atlas_store::populations::{PartnershipPopulation, for_year};
    let population = |year: i16| PartnershipPopulation {
        year,
        population_0_17: i64::from(year),
        approximate: false,
        source: String::new(),
    };
    let populations = [population(2022), population(2024)];
    assert_eq!(for_year(&populations, 2024).unwrap().year, 2024);
    assert_eq!(for_year(&populations, 2023).unwrap().year, 2022);
    assert_eq!(for_year(&populations, 2030).unwrap().year, 2024);
    assert_eq!(for_year(&populations, 2019).unwrap().year, 2022);
    assert!(for_year(&[], 2024).is_none());
}

#[tokio::test]
async fn an_entry_from_before_need_to_know_still_verifies_and_readers_are_listed() {
    use atlas_store::audit;
    use sha2::{Digest as _, Sha256};
    let test_db = TestDatabase::new().await;
    let client = atlas_store::connect_admin(test_db.url(), std::time::Duration::from_secs(5))
        .await
        .unwrap();
    // An entry as the trail held it before the records_of and caller_partnership columns (and
    // before chains were split: the migration put it in the unkeyed chain `global`): its hash
    // covers the old content only.
    let old_content = concat!(
        r#"{"occurred_at":"2026-11-28T10:00:00.123456Z","request_id":null,"subject":"analyst","#,
        r#""roles":["partnership_analyst"],"partnership":"E10000017","agency":null,"#,
        r#""action":"grid.read","resource":"/api/v1/partnerships/E10000017/grid","#,
        r#""parameters":{},"outcome":"allowed","rows_returned":12}"#
    );
    let mut hasher = Sha256::new();
    hasher.update([0_u8; 32]);
    hasher.update(old_content.as_bytes());
    let hash: Vec<u8> = hasher.finalize().to_vec();
    client
        .execute(
            "INSERT INTO audit_log (occurred_at, subject, roles, partnership_code, action, \
             resource, parameters, outcome, rows_returned, previous_hash, hash, chain) VALUES \
             ('2026-11-28T10:00:00.123456Z', 'analyst', '{partnership_analyst}', 'E10000017', \
             'grid.read', '/api/v1/partnerships/E10000017/grid', '{}', 'allowed', 12, $1, $2, \
             'global')",
            &[&vec![0_u8; 32], &hash],
        )
        .await
        .unwrap();
    // As the migration would have recorded it: the unkeyed entries end with this one.
    client
        .batch_execute(
            "ALTER TABLE audit_legacy_end DISABLE TRIGGER audit_legacy_end_fixed;
             UPDATE audit_legacy_end SET last_id = (SELECT max(id) FROM audit_log);
             ALTER TABLE audit_legacy_end ENABLE TRIGGER audit_legacy_end_fixed;",
        )
        .await
        .unwrap();
    let read = |subject: &str, caller: &str, records_of: &[&str]| {
        let mut entry = read_entry(subject);
        entry.caller_partnership = Some(caller.to_owned());
        entry.records_of = records_of.iter().map(|code| (*code).to_owned()).collect();
        entry
    };
    let db = database(&test_db);
    let mut conn = db.connection().await.unwrap();
    audit::append_committed(
        &mut conn,
        &[
            read("lancashire", "E10000017", &["E06000009", "E10000017"]),
            read("blackpool", "E06000009", &["E06000009"]),
            read("elsewhere", "E08000005", &[]),
        ],
    )
    .await
    .unwrap();
    let verification = audit::verify(&mut conn, None, false).await.unwrap();
    assert_eq!(verification.entries, 4);
    assert_eq!(verification.first_broken, None, "{verification:?}");

    let readers = audit::readers(&mut conn, "E06000009", None, 10)
        .await
        .unwrap();
    let subjects: Vec<&str> = readers.iter().map(|entry| entry.subject.as_str()).collect();
    assert_eq!(
        subjects,
        ["lancashire"],
        "its own analysts' reads are not listed"
    );
    assert_eq!(readers[0].records_of, ["E06000009", "E10000017"]);
    assert!(
        audit::readers(&mut conn, "E10000017", None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Editing which partnerships an entry used is found.
    client
        .batch_execute(
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only;
             UPDATE audit_log SET records_of = '{E10000017}' WHERE subject = 'lancashire';",
        )
        .await
        .unwrap();
    let broken = audit::verify(&mut conn, None, false)
        .await
        .unwrap()
        .first_broken
        .unwrap();
    assert!(broken.reason.contains("altered"), "{broken:?}");
}

#[tokio::test]
async fn a_registration_names_an_agency_that_serves_its_partnership() {
    let test_db = TestDatabase::new().await;
    import_cluster(&test_db).await;
    let db = database(&test_db);
    let mut conn = db.connection().await.unwrap();
    let blackpool_police = agencies::add(
        &mut conn,
        "Blackpool Police",
        AgencyKind::Police,
        &[code("E06000009")],
        &entry(),
    )
    .await
    .unwrap();
    let roles = [atlas_domain::Role::AgencyAnalyst];
    let register = async |conn: &mut _, partnership: &str, agency| {
        atlas_store::users::register(
            conn,
            "una",
            &code(partnership),
            Some(agency),
            &roles,
            &entry(),
        )
        .await
    };
    let refused = register(&mut conn, "E10000017", blackpool_police.id)
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, StoreError::Invalid(message) if message.contains("does not serve partnership E10000017")),
        "{refused:?}"
    );
    let unknown = register(&mut conn, "E06000009", uuid::Uuid::new_v4())
        .await
        .unwrap_err();
    assert!(matches!(unknown, StoreError::NotFound(_)), "{unknown:?}");
    let registered = register(&mut conn, "E06000009", blackpool_police.id)
        .await
        .unwrap();
    assert_eq!(registered.agency, Some(blackpool_police.id));
}

/// The quoted names of the vocabulary function the CHECK constraint of `table` calls on
/// `column` (`CHECK (atlas_known_record_kind(record_kind))`).
async fn checked_names(client: &tokio_postgres::Client, table: &str, column: &str) -> Vec<String> {
    let rows = client
        .query(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint
             WHERE contype = 'c' AND conrelid = $1::text::regclass",
            &[&table],
        )
        .await
        .unwrap();
    let definition: String = rows
        .iter()
        .map(|row| row.get::<_, String>(0))
        .find(|definition| definition.contains(&format!("({column})")))
        .unwrap_or_else(|| panic!("no vocabulary check on {table}.{column}"));
    let function = definition
        .strip_prefix("CHECK (")
        .and_then(|rest| rest.split('(').next())
        .unwrap_or_else(|| panic!("{definition}"));
    let body: String = client
        .query_one(
            "SELECT prosrc FROM pg_proc WHERE proname = $1",
            &[&function],
        )
        .await
        .unwrap()
        .get(0);
    // Quoted literals alternate with the text between them.
    body.split('\'')
        .skip(1)
        .step_by(2)
        .map(ToOwned::to_owned)
        .collect()
}

#[tokio::test]
async fn the_schema_checks_name_exactly_the_domain_vocabularies() {
    use atlas_domain::{AgeBand, Indicator, LocationRole, RecordKind, Sex};
    fn names<T: ToString>(all: &[T]) -> Vec<String> {
        all.iter().map(ToString::to_string).collect()
    }
    let test_db = TestDatabase::new().await;
    let client = atlas_store::connect_admin(test_db.url(), std::time::Duration::from_secs(5))
        .await
        .unwrap();
    for (table, column, vocabulary) in [
        ("agencies", "kind", names(AgencyKind::ALL)),
        ("case_records", "record_kind", names(RecordKind::ALL)),
        ("case_records", "location_role", names(LocationRole::ALL)),
        ("case_records", "indicators", names(Indicator::ALL)),
        ("case_records", "age_band", names(AgeBand::ALL)),
        ("case_records", "sex", names(Sex::ALL)),
    ] {
        assert_eq!(
            checked_names(&client, table, column).await,
            vocabulary,
            "{table}.{column}: the migration's list differs from atlas_domain's"
        );
    }
}

#[tokio::test]
async fn every_migration_reverts_and_applies_again() {
    use diesel::Connection as _;
    use diesel_async::AsyncPgConnection;
    use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
    use diesel_migrations::MigrationHarness as _;
    let test_db = TestDatabase::new().await;
    let url = test_db.url().to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url).unwrap();
        let applied = conn.applied_migrations().unwrap().len();
        let reverted = conn.revert_all_migrations(migrations::MIGRATIONS).unwrap();
        assert_eq!(
            reverted.len(),
            applied,
            "every migration has a down.sql that runs"
        );
        let again = conn.run_pending_migrations(migrations::MIGRATIONS).unwrap();
        assert_eq!(again.len(), applied, "and applies again after it");
    })
    .await
    .unwrap();
}

/// The tables of `src/schema.rs`: each table's columns with diesel's SQL type, in order.
fn diesel_schema() -> std::collections::BTreeMap<String, Vec<(String, String)>> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/schema.rs")).unwrap();
    let mut tables = std::collections::BTreeMap::new();
    let mut current: Option<(String, Vec<(String, String)>)> = None;
    for line in text.lines() {
        if let Some(name) = line
            .strip_prefix("    ")
            .filter(|rest| !rest.starts_with(' ') && rest.ends_with(") {"))
            .and_then(|rest| rest.split(' ').next())
        {
            current = Some((name.to_owned(), Vec::new()));
        } else if let Some((column, sql_type)) = line
            .strip_prefix("        ")
            .and_then(|rest| rest.strip_suffix(','))
            .and_then(|rest| rest.split_once(" -> "))
        {
            if let Some((_, columns)) = current.as_mut() {
                columns.push((column.to_owned(), sql_type.to_owned()));
            }
        } else if line == "    }"
            && let Some((name, columns)) = current.take()
        {
            tables.insert(name, columns);
        }
    }
    tables
}

/// Diesel's SQL type for a column of PostgreSQL's type `udt` (information_schema's `udt_name`).
fn diesel_type(udt: &str, nullable: bool) -> String {
    let base = match udt {
        "text" | "varchar" => "Text",
        "bpchar" => "Bpchar",
        "int2" => "Int2",
        "int4" => "Int4",
        "int8" => "Int8",
        "float8" => "Float8",
        "bool" => "Bool",
        "date" => "Date",
        "jsonb" => "Jsonb",
        "bytea" => "Binary",
        "uuid" => "Uuid",
        "timestamptz" => "Timestamptz",
        "_text" => "Array<Text>",
        "_uuid" => "Array<Uuid>",
        other => panic!("a column of type {other}: teach this test its diesel type"),
    };
    if nullable {
        format!("Nullable<{base}>")
    } else {
        base.to_owned()
    }
}

#[tokio::test]
async fn schema_rs_describes_exactly_the_migrated_tables() {
    let test_db = TestDatabase::new().await;
    let client = atlas_store::connect_admin(test_db.url(), std::time::Duration::from_secs(5))
        .await
        .unwrap();
    let rows = client
        .query(
            "SELECT c.table_name::text, c.column_name::text, c.udt_name::text, c.is_nullable = 'YES'
             FROM information_schema.columns c
             JOIN information_schema.tables t USING (table_schema, table_name)
             WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
               AND c.table_name <> '__diesel_schema_migrations'
               -- Partitions are described by their partitioned table.
               AND c.table_name NOT IN (SELECT inhrelid::regclass::text FROM pg_inherits)
             ORDER BY c.table_name, c.ordinal_position",
            &[],
        )
        .await
        .unwrap();
    let mut migrated: std::collections::BTreeMap<String, Vec<(String, String)>> =
        std::collections::BTreeMap::new();
    for row in rows {
        migrated
            .entry(row.get(0))
            .or_default()
            .push((row.get(1), diesel_type(row.get::<_, &str>(2), row.get(3))));
    }
    let described = diesel_schema();
    assert_eq!(
        described.keys().collect::<Vec<_>>(),
        migrated.keys().collect::<Vec<_>>(),
        "schema.rs and the migrations name different tables"
    );
    // Compared as sets: queries select columns by name, so their order in schema.rs is free.
    for (table, columns) in &migrated {
        let sorted = |columns: &[(String, String)]| {
            let mut columns = columns.to_vec();
            columns.sort();
            columns
        };
        assert_eq!(
            sorted(&described[table]),
            sorted(columns),
            "{table}: schema.rs differs from the migrated table (column -> diesel type)"
        );
    }
}

#[tokio::test]
async fn pooled_connections_are_named_and_time_limited() {
    use diesel::QueryableByName;
    use diesel::sql_types::Text;
    use diesel_async::RunQueryDsl as _;
    #[derive(QueryableByName)]
    struct Setting {
        #[diesel(sql_type = Text)]
        value: String,
    }
    let test_db = TestDatabase::new().await;
    let mut settings =
        DatabaseSettings::new(test_db.url().to_owned().into(), 1).for_pool("atlas-test", 1);
    settings.statement_timeout_secs = 1;
    let database = Database::new(&settings).unwrap();
    let mut conn = database.connection().await.unwrap();
    let mut show = async |name: &str| {
        diesel::sql_query(format!("SELECT current_setting('{name}') AS value"))
            .get_result::<Setting>(&mut conn)
            .await
            .unwrap()
            .value
    };
    assert_eq!(show("application_name").await, "atlas-test");
    assert_eq!(show("statement_timeout").await, "1s");
    assert_eq!(show("lock_timeout").await, "10s");
    assert_eq!(show("idle_in_transaction_session_timeout").await, "1min");
    // A statement longer than the limit is cancelled rather than holding the connection.
    let slow = diesel::sql_query("SELECT pg_sleep(2)")
        .execute(&mut conn)
        .await;
    assert!(
        slow.unwrap_err().to_string().contains("statement timeout"),
        "cancelled"
    );
}

#[tokio::test]
async fn processes_migrating_at_once_take_turns_in_one_transaction_each() {
    let test_db = TestDatabase::empty().await;
    let url = test_db.url().to_owned();
    let (first, second) =
        tokio::join!(migrations::run_pending(&url), migrations::run_pending(&url));
    let (first, second) = (first.unwrap(), second.unwrap());
    // One applies every migration; the other, waiting for the lock, finds none pending.
    assert_eq!(
        first.len() + second.len(),
        migrations::embedded_versions().len(),
        "{first:?} {second:?}"
    );
    assert!(first.is_empty() || second.is_empty());
    assert!(migrations::run_pending(&url).await.unwrap().is_empty());
}

#[tokio::test]
async fn every_connection_speaks_tls_as_the_url_asks_and_verifies_the_server() {
    // A private cluster serving TLS with a certificate for `localhost` from the test's own
    // authority (run as the `postgres` user when the test runs as root).
    let certified = atlas_postgres::test_db::LocalhostCertificate::generate();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let cluster = atlas_postgres::cluster::TlsCluster::start(
        &dir.path().join("cluster"),
        &certified.certificate,
        &certified.key,
    )
    .unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &certified.authority).unwrap();
    let port = cluster.port;
    let url =
        |host: &str, options: &str| format!("postgres://postgres@{host}:{port}/postgres?{options}");
    let verified = url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", ca.display()),
    );
    let ssl_of = |client: tokio_postgres::Client| async move {
        client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get::<_, bool>(0)
    };
    // Administration and bulk loads, the pool, and migrations all go over verified TLS.
    let admin = atlas_store::connect_admin(&verified, std::time::Duration::from_secs(5))
        .await
        .unwrap();
    assert!(ssl_of(admin).await, "connect_admin speaks TLS");
    let pooled = Database::new(&DatabaseSettings::new(verified.clone().into(), 1)).unwrap();
    let mut conn = pooled.connection().await.unwrap();
    #[derive(diesel::QueryableByName)]
    struct Ssl {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        ssl: bool,
    }
    let pooled_ssl: Ssl = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"),
        &mut conn,
    )
    .await
    .unwrap();
    assert!(pooled_ssl.ssl, "the pool speaks TLS");
    assert!(!migrations::run_pending(&verified).await.unwrap().is_empty());
    // A certificate naming another host, or signed by an authority not trusted, is refused
    // under verify-full; the error says so.
    for (refused_url, why) in [
        (
            url(
                "127.0.0.1",
                &format!("sslmode=verify-full&sslrootcert={}", ca.display()),
            ),
            "the certificate names localhost",
        ),
        (
            url("localhost", "sslmode=verify-full"),
            "no trusted authority signed it",
        ),
    ] {
        let refused = atlas_store::connect_admin(&refused_url, std::time::Duration::from_secs(5))
            .await
            .err()
            .map(|err| err.to_string())
            .unwrap_or_default();
        assert!(
            refused.contains("TLS") || refused.contains("certificate"),
            "{why}: {refused}"
        );
    }
    // verify-ca checks the chain only; require and the default prefer encrypt (as libpq does);
    // disable does not.
    for (options, tls) in [
        (
            format!("sslmode=verify-ca&sslrootcert={}", ca.display()),
            true,
        ),
        ("sslmode=require".to_owned(), true),
        (String::new(), true),
        ("sslmode=disable".to_owned(), false),
    ] {
        let client = atlas_store::connect_admin(
            &url("127.0.0.1", &options),
            std::time::Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(ssl_of(client).await, tls, "{options}");
    }
    drop(cluster);
    // A Unix socket (where PostgreSQL never speaks TLS) connects, in key=value form with a
    // quoted value, when the machine's server has one.
    if std::path::Path::new("/var/run/postgresql/.s.PGSQL.5432").exists() {
        let client = atlas_store::connect_admin(
            "host=/var/run/postgresql user=postgres dbname = 'postgres'",
            std::time::Duration::from_secs(5),
        )
        .await
        .unwrap();
        let local: bool = client
            .query_one("SELECT coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)", &[])
            .await
            .unwrap()
            .get(0);
        assert!(!local);
    }
}

#[test]
fn every_migration_can_run_inside_the_one_transaction_migrations_share() {
    // `migrations::run_pending` applies a run's migrations in one transaction: a statement
    // PostgreSQL refuses inside a transaction block would fail every future upgrade.
    let directory = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations");
    for entry in std::fs::read_dir(directory).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_dir() {
            continue;
        }
        assert!(
            !path.join("metadata.toml").exists(),
            "{}: run_in_transaction cannot be turned off",
            path.display()
        );
        let up = std::fs::read_to_string(path.join("up.sql"))
            .unwrap()
            .to_uppercase();
        for refused in ["CONCURRENTLY", "ADD VALUE", "VACUUM", "CREATE DATABASE"] {
            assert!(
                !up.contains(refused),
                "{}: `{refused}` cannot run inside a transaction block",
                path.display()
            );
        }
    }
}

/// Records are checked once per batch, not per row (migration 000027): a batch whose records
/// were placed in a partnership its agency does not serve is refused whole, and a batch that
/// still has records cannot be deleted.
#[tokio::test]
async fn records_are_checked_per_batch_and_a_batch_with_records_is_kept() {
    use atlas_domain::{LocationRole, RecordKind};
    use atlas_store::batches::{BatchCounts, BatchLoad, Committed, StoredRecord};
    let test_db = TestDatabase::new().await;
    import_cluster(&test_db).await;
    let mut conn = database(&test_db).connection().await.unwrap();
    let police = agencies::add(
        &mut conn,
        "Blackpool Police",
        AgencyKind::Police,
        &[code("E06000009")],
        &entry(),
    )
    .await
    .unwrap();
    let record = |partnership_code| StoredRecord {
        partnership_code,
        subject: [7; 32],
        record_kind: RecordKind::Incident,
        occurred_on: chrono::NaiveDate::from_ymd_opt(2024, 5, 1).unwrap(),
        cell: 0x0899_1950_4e1f_ffff,
        location_role: LocationRole::Incident,
        indicators: &[],
        age_band: None,
        sex: None,
    };
    let counts = BatchCounts {
        rows_total: 2,
        rows_accepted: 2,
        rows_rejected: 0,
        quality: serde_json::json!({}),
    };
    let stored = || async {
        let client = atlas_store::connect_admin(test_db.url(), std::time::Duration::from_secs(5))
            .await
            .unwrap();
        client
            .query_one("SELECT count(*) FROM case_records", &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    // Rochdale is not Blackpool Police's: the whole batch is refused.
    let mut load = BatchLoad::begin(test_db.url(), police.id, "test")
        .await
        .unwrap();
    load.write(&record("E06000009")).await.unwrap();
    load.write(&record("E08000005")).await.unwrap();
    let refused = load
        .commit([1; 32], &counts, Vec::new(), None, &entry())
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("does not serve"), "{refused}");
    assert_eq!(stored().await, 0);
    let mut load = BatchLoad::begin(test_db.url(), police.id, "test")
        .await
        .unwrap();
    load.write(&record("E06000009")).await.unwrap();
    let Committed::New(batch) = load
        .commit([2; 32], &counts, Vec::new(), None, &entry())
        .await
        .unwrap()
    else {
        panic!("a new batch");
    };
    assert_eq!(stored().await, 1);
    let client = atlas_store::connect_admin(test_db.url(), std::time::Duration::from_secs(5))
        .await
        .unwrap();
    let kept = client
        .execute("DELETE FROM batches WHERE id = $1", &[&batch])
        .await
        .unwrap_err();
    let reason = kept.as_db_error().unwrap().message();
    assert!(reason.contains("still has case records"), "{reason}");
}
