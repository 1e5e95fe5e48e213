//! A test fixture: partnerships with one police agency's committed batch, written by SQL as an
//! upload leaves them, for the tests of what reads case records (the records themselves are
//! each test's own).

use uuid::Uuid;

/// The agency and batch of [`one_batch`].
pub(crate) struct Seeded {
    /// The police agency.
    pub agency: Uuid,
    /// Its committed batch, feeding every partnership.
    pub batch: Uuid,
}

/// Inserts the partnerships `codes` (named by their codes), a police agency and its committed
/// batch of `rows_each` rows for each of them.
pub(crate) async fn one_batch(
    client: &tokio_postgres::Client,
    codes: &[&str],
    rows_each: i32,
) -> Seeded {
    let (agency, batch) = (Uuid::new_v4(), Uuid::new_v4());
    let total = rows_each * i32::try_from(codes.len()).expect("a few partnerships");
    client
        .execute(
            "INSERT INTO partnerships (code, name) SELECT code, code FROM unnest($1::text[]) code",
            &[&codes],
        )
        .await
        .expect("partnerships");
    client
        .execute(
            "INSERT INTO agencies (id, name, kind) VALUES ($1, 'Constabulary', 'police')",
            &[&agency],
        )
        .await
        .expect("an agency");
    client
        .execute(
            "INSERT INTO batches (id, agency_id, uploaded_by, file_sha256, status, rows_total,
                                  rows_accepted, rows_rejected)
             VALUES ($1, $2, 'test', decode(repeat('ab', 32), 'hex'), 'committed', $3, $3, 0)",
            &[&batch, &agency, &total],
        )
        .await
        .expect("a batch");
    client
        .execute(
            "INSERT INTO batch_partnerships (partnership_code, batch_id, rows_accepted)
             SELECT code, $1, $3 FROM unnest($2::text[]) code",
            &[&batch, &codes, &rows_each],
        )
        .await
        .expect("the batch's partnerships");
    Seeded { agency, batch }
}
