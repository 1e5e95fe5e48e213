//! Batches: loading an extract's accepted rows with binary COPY inside one transaction, and
//! reading, withdrawing and superseding batches.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use atlas_domain::{AgeBand, FINEST_RESOLUTION, GssCode, Indicator, LocationRole, RecordKind, Sex};
use chrono::{DateTime, NaiveDate, Utc};
use diesel::{
    ExpressionMethods as _, OptionalExtension as _, QueryDsl as _, SelectableHelper as _,
};
use diesel_async::AsyncPgConnection;
use tokio_postgres::GenericClient;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use uuid::Uuid;

use crate::error::read_back;
use crate::schema::{batch_partnerships, batch_rejections, batches};
use crate::{StoreError, audit, connect_admin};

/// One row to store: a validated record, keyed again by the server and assigned to a partnership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord<'a> {
    /// The partnership whose coverage holds the cell.
    pub partnership_code: &'a str,
    /// The server-keyed pseudonym.
    pub subject: [u8; 32],
    /// What kind of event.
    pub record_kind: RecordKind,
    /// When.
    pub occurred_on: NaiveDate,
    /// Where: an H3 cell at resolution 9.
    pub cell: u64,
    /// What the place was to the event.
    pub location_role: LocationRole,
    /// Risk indicators.
    pub indicators: &'a [Indicator],
    /// Age band.
    pub age_band: Option<AgeBand>,
    /// Sex.
    pub sex: Option<Sex>,
}

/// One rejected field of one row, as kept for the rejection report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = batch_rejections, check_for_backend(diesel::pg::Pg))]
pub struct RejectionRow {
    /// Row number in the file (header = 1).
    #[diesel(column_name = row_number)]
    pub row: i64,
    /// Field at fault.
    pub field: String,
    /// Why.
    pub reason: String,
}

/// The counts and quality figures of a finished extract.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchCounts {
    /// Rows read.
    pub rows_total: i32,
    /// Rows stored.
    pub rows_accepted: i32,
    /// Rows rejected.
    pub rows_rejected: i32,
    /// Data-quality figures, stored as JSON.
    pub quality: serde_json::Value,
}

/// A batch as the uploader sees it: its stored row and where its rows went.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Batch {
    /// The batch's own row.
    #[serde(flatten)]
    pub record: BatchRecord,
    /// Rows stored per partnership.
    pub partnerships: BTreeMap<GssCode, i32>,
}

/// Where a batch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    /// Stored, its records counted.
    Committed,
    /// Withdrawn by its agency: its records are deleted.
    Withdrawn,
    /// Replaced by a correcting batch: its records are deleted.
    Superseded,
}

impl BatchStatus {
    /// The name stored and shown.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Committed => "committed",
            Self::Withdrawn => "withdrawn",
            Self::Superseded => "superseded",
        }
    }
}

impl std::fmt::Display for BatchStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl TryFrom<String> for BatchStatus {
    type Error = String;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        [Self::Committed, Self::Withdrawn, Self::Superseded]
            .into_iter()
            .find(|status| status.as_str() == name)
            .ok_or_else(|| format!("`{name}` is not a batch status"))
    }
}

/// A row of `batches`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = batches, check_for_backend(diesel::pg::Pg))]
pub struct BatchRecord {
    /// Identifier.
    pub id: Uuid,
    /// The agency that uploaded it.
    pub agency_id: Uuid,
    /// Who uploaded it.
    pub uploaded_by: String,
    /// Where it stands.
    #[diesel(deserialize_as = String)]
    pub status: BatchStatus,
    /// The batch that replaced it, when superseded.
    pub superseded_by: Option<Uuid>,
    /// Rows read.
    pub rows_total: i32,
    /// Rows stored.
    pub rows_accepted: i32,
    /// Rows rejected.
    pub rows_rejected: i32,
    /// Data-quality figures.
    pub quality: serde_json::Value,
    /// When the upload began.
    pub received_at: DateTime<Utc>,
    /// When it committed.
    pub committed_at: Option<DateTime<Utc>>,
    /// When it was withdrawn.
    pub withdrawn_at: Option<DateTime<Utc>>,
}

/// A batch's share in one partnership, as stored.
#[derive(diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = batch_partnerships, check_for_backend(diesel::pg::Pg))]
struct Share {
    batch_id: Uuid,
    partnership_code: String,
    rows_accepted: i32,
}

/// What committing a load did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committed {
    /// A new batch was stored.
    New(Uuid),
    /// The agency had already uploaded this file: nothing new was stored.
    Existing(Uuid),
}

/// What placing an agency's records needs before any record comes: the partnerships it serves
/// with their boundaries, and the boundaries of every other partnership (a point inside one of
/// them is refused). Coverage and postcodes are read as records reach them ([`AreaReader`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgencyArea {
    /// The served partnerships, sorted by code, each with its authorities' boundaries (GeoJSON).
    pub served: Vec<(String, Vec<serde_json::Value>)>,
    /// The boundaries (GeoJSON) of every partnership the agency does not serve.
    pub others: Vec<serde_json::Value>,
}

/// A resolution-9 cell of a served partnership's coverage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AreaCell {
    /// The cell.
    pub cell: u64,
    /// The partnership's code.
    pub partnership: String,
    /// Whether the cell lies wholly inside the partnership's boundary.
    pub whole: bool,
}

/// A postcode of a served partnership: from the directory's own authority when it gives one,
/// else because its cell lies in a served partnership's coverage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AreaPostcode {
    /// The postcode, normalised.
    pub postcode: String,
    /// The cell of its grid reference.
    pub cell: u64,
    /// Its partnership, when the directory names its authority.
    pub partnership: Option<String>,
}

/// The area of an agency; `None` when the agency is not registered.
///
/// # Errors
/// [`StoreError`] when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn agency_area(url: &str, agency_id: Uuid) -> Result<Option<AgencyArea>, StoreError> {
    let client = connect_admin(url, Duration::from_secs(10)).await?;
    if client
        .query_opt("SELECT 1 FROM agencies WHERE id = $1", &[&agency_id])
        .await?
        .is_none()
    {
        return Ok(None);
    }
    let mut area = AgencyArea::default();
    let boundaries = client
        .query(
            "SELECT la.partnership_code, la.boundary,
                    EXISTS (SELECT 1 FROM agency_partnerships a
                            WHERE a.agency_id = $1 AND a.partnership_code = la.partnership_code)
             FROM local_authorities la ORDER BY la.partnership_code, la.code",
            &[&agency_id],
        )
        .await?;
    for row in boundaries {
        let (code, boundary, served): (String, serde_json::Value, bool) =
            (row.get(0), row.get(1), row.get(2));
        if !served {
            area.others.push(boundary);
        } else if let Some((last, polygons)) = area.served.last_mut()
            && *last == code
        {
            polygons.push(boundary);
        } else {
            area.served.push((code, vec![boundary]));
        }
    }
    // A served partnership without a stored boundary is placed by its coverage alone.
    for row in client
        .query(
            "SELECT partnership_code FROM agency_partnerships WHERE agency_id = $1
             AND partnership_code NOT IN (SELECT partnership_code FROM local_authorities)",
            &[&agency_id],
        )
        .await?
    {
        area.served.push((row.get(0), Vec::new()));
    }
    area.served.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Some(area))
}

/// Reads the coverage and postcodes of an agency's partnerships as its records reach them: a
/// tile of cells, or a postcode district, per query, so an upload reads what is near its
/// records and not a whole country's coverage.
pub struct AreaReader {
    client: tokio_postgres::Client,
    served: Vec<String>,
}

impl AreaReader {
    /// A reader of the coverage and postcodes of the `served` partnerships, on a connection
    /// of its own holding one read-only snapshot for the upload's life (a reference import
    /// meanwhile cannot mix old and new coverage), each read limited to a minute.
    ///
    /// # Errors
    /// [`StoreError`] when PostgreSQL cannot be reached.
    pub async fn connect(url: &str, served: Vec<String>) -> Result<Self, StoreError> {
        let client = connect_admin(url, Duration::from_secs(10)).await?;
        client
            .batch_execute(
                "SET statement_timeout = '60s';
                 BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            )
            .await?;
        Ok(Self { client, served })
    }

    /// The served partnerships' resolution-9 cells whose indexes lie from `first` to `last`
    /// (one tile's span).
    ///
    /// # Errors
    /// [`StoreError`] when PostgreSQL fails.
    pub async fn cells(&self, first: u64, last: u64) -> Result<Vec<AreaCell>, StoreError> {
        Ok(self
            .client
            .query(
                "SELECT cell, partnership_code, whole FROM partnership_cells
                 WHERE resolution = $1 AND cell BETWEEN $2 AND $3 AND partnership_code = ANY($4)",
                &[
                    &i16::from(FINEST_RESOLUTION),
                    &first.cast_signed(),
                    &last.cast_signed(),
                    &self.served,
                ],
            )
            .await?
            .into_iter()
            .map(|row| AreaCell {
                cell: row.get::<_, i64>(0).cast_unsigned(),
                partnership: row.get(1),
                whole: row.get(2),
            })
            .collect())
    }

    /// The served partnerships' postcodes in one postcode district (`FY1` for `FY11AA`: the
    /// normalised postcode without its last three characters). A postcode of another
    /// partnership's authority is not among them.
    ///
    /// # Errors
    /// [`StoreError`] when PostgreSQL fails.
    pub async fn district(&self, district: &str) -> Result<Vec<AreaPostcode>, StoreError> {
        Ok(self
            .client
            .query(
                "SELECT p.postcode, p.cell, la.partnership_code FROM postcodes p
                 JOIN local_authorities la ON la.code = p.authority_code
                 WHERE left(p.postcode, -3) = $1 AND la.partnership_code = ANY($2)
                 UNION ALL
                 SELECT p.postcode, p.cell, NULL FROM postcodes p
                 WHERE left(p.postcode, -3) = $1 AND p.authority_code IS NULL
                   AND EXISTS (SELECT 1 FROM partnership_cells c
                               WHERE c.resolution = $3 AND c.cell = p.cell
                                 AND c.partnership_code = ANY($2))",
                &[&district, &self.served, &i16::from(FINEST_RESOLUTION)],
            )
            .await?
            .into_iter()
            .map(|row| AreaPostcode {
                postcode: row.get(0),
                cell: row.get::<_, i64>(1).cast_unsigned(),
                partnership: row.get(2),
            })
            .collect())
    }
}

/// An extract being loaded: a transaction holding the batch row and an open COPY of its records.
/// Dropping it without [`BatchLoad::commit`] stores nothing: the transaction dies with its
/// connection.
pub struct BatchLoad {
    client: tokio_postgres::Client,
    id: Uuid,
    agency_id: Uuid,
    writer: std::pin::Pin<Box<BinaryCopyInWriter>>,
    per_partnership: BTreeMap<String, i32>,
}

const RECORD_TYPES: [Type; 11] = [
    Type::TEXT,
    Type::UUID,
    Type::UUID,
    Type::BYTEA,
    Type::TEXT,
    Type::DATE,
    Type::INT8,
    Type::TEXT,
    Type::TEXT_ARRAY,
    Type::TEXT,
    Type::BPCHAR,
];

impl BatchLoad {
    /// Opens a transaction, inserts the batch row and starts the COPY of its records.
    ///
    /// # Errors
    /// [`StoreError`] when PostgreSQL fails.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn begin(url: &str, agency_id: Uuid, uploaded_by: &str) -> Result<Self, StoreError> {
        let client = connect_admin(url, Duration::from_secs(10)).await?;
        let id = Uuid::new_v4();
        // The file's hash is known only at the end; a unique placeholder holds its place.
        let placeholder = [Uuid::new_v4().into_bytes(), Uuid::new_v4().into_bytes()].concat();
        // Read committed whatever the server's default: the record snapshots' triggers must see
        // every snapshot committed before they run (a superseded batch's records are deleted).
        client
            .batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED")
            .await?;
        client
            .execute(
                "INSERT INTO batches (id, agency_id, uploaded_by, file_sha256, status, rows_total, rows_accepted, rows_rejected)
                 VALUES ($1, $2, $3, $4, 'committed', 0, 0, 0)",
                &[&id, &agency_id, &uploaded_by, &placeholder],
            )
            .await?;
        let sink = client
            .copy_in(
                "COPY case_records (partnership_code, batch_id, agency_id, subject, record_kind, occurred_on,
                                    cell, location_role, indicators, age_band, sex)
                 FROM STDIN (FORMAT binary)",
            )
            .await?;
        let writer = Box::pin(BinaryCopyInWriter::new(sink, &RECORD_TYPES));
        Ok(Self {
            client,
            id,
            agency_id,
            writer,
            per_partnership: BTreeMap::new(),
        })
    }

    /// The new batch's id.
    #[must_use]
    pub const fn id(&self) -> Uuid {
        self.id
    }

    /// Streams one record into the COPY.
    ///
    /// # Errors
    /// [`StoreError`] when PostgreSQL refuses it.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn write(&mut self, record: &StoredRecord<'_>) -> Result<(), StoreError> {
        let indicators: Vec<&str> = record
            .indicators
            .iter()
            .map(|indicator| indicator.as_str())
            .collect();
        let cell = i64::try_from(record.cell)
            .map_err(|_| StoreError::Invalid("not an H3 cell".to_owned()))?;
        self.writer
            .as_mut()
            .write(&[
                &record.partnership_code,
                &self.id,
                &self.agency_id,
                &record.subject.as_slice(),
                &record.record_kind.as_str(),
                &record.occurred_on,
                &cell,
                &record.location_role.as_str(),
                &indicators,
                &record.age_band.map(AgeBand::as_str),
                &record.sex.map(Sex::as_str),
            ])
            .await?;
        *self
            .per_partnership
            .entry(record.partnership_code.to_owned())
            .or_default() += 1;
        Ok(())
    }

    /// Finishes the COPY and commits the batch, unless the agency already uploaded a file with
    /// this SHA-256, in which case everything is rolled back and the earlier batch is named.
    /// With `supersedes`, that earlier batch of the same agency is marked superseded and its
    /// records removed in the same transaction. `entry` is appended to the audit trail in that
    /// transaction too.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] or [`StoreError::Conflict`] when `supersedes` names no committed
    /// batch of this agency; other [`StoreError`]s when PostgreSQL fails (nothing is stored).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn commit(
        mut self,
        file_sha256: [u8; 32],
        counts: &BatchCounts,
        rejections: impl IntoIterator<Item = RejectionRow>,
        supersedes: Option<Uuid>,
        entry: &audit::NewEntry,
    ) -> Result<Committed, StoreError> {
        self.writer.as_mut().finish().await?;
        let client = &self.client;
        let sha = file_sha256.as_slice();
        if let Some(existing) = existing_batch(client, self.agency_id, sha).await? {
            client.batch_execute("ROLLBACK").await?;
            return Ok(Committed::Existing(existing));
        }
        let updated = client
            .execute(
                "UPDATE batches SET file_sha256 = $2, rows_total = $3, rows_accepted = $4, rows_rejected = $5,
                        quality = $6, committed_at = now()
                 WHERE id = $1",
                &[&self.id, &sha, &counts.rows_total, &counts.rows_accepted, &counts.rows_rejected, &counts.quality],
            )
            .await;
        if let Err(err) = updated {
            // Another upload of the same file committed first.
            if err.code() == Some(&SqlState::UNIQUE_VIOLATION) {
                client.batch_execute("ROLLBACK").await?;
                let existing = existing_batch(client, self.agency_id, sha).await?;
                return existing
                    .map(Committed::Existing)
                    .ok_or_else(|| StoreError::Statement(err));
            }
            return Err(err.into());
        }
        // What case_records' foreign keys checked per row, checked once per batch (migration
        // 000027): the records' agency is the batch's, and every partnership they were placed
        // in is one the agency serves (and so exists) and gets its batch_partnerships row.
        let placed: Vec<&str> = self.per_partnership.keys().map(String::as_str).collect();
        let served: i64 = client
            .query_one(
                "SELECT count(*) FROM agency_partnerships
                 WHERE agency_id = $1 AND partnership_code = ANY($2)",
                &[&self.agency_id, &placed],
            )
            .await?
            .get(0);
        if usize::try_from(served).ok() != Some(placed.len()) {
            client.batch_execute("ROLLBACK").await?;
            return Err(StoreError::Invalid(format!(
                "records were placed in a partnership the agency does not serve (among {})",
                placed.join(", ")
            )));
        }
        for (code, rows) in &self.per_partnership {
            client
                .execute(
                    "INSERT INTO batch_partnerships (partnership_code, batch_id, rows_accepted) VALUES ($1, $2, $3)",
                    &[code, &self.id, rows],
                )
                .await?;
        }
        write_rejections(client, self.id, rejections).await?;
        if let Some(old) = supersedes {
            retire(
                client,
                old,
                self.agency_id,
                BatchStatus::Superseded,
                Some(self.id),
            )
            .await?;
        }
        let changed: Vec<Uuid> = std::iter::once(self.id).chain(supersedes).collect();
        bump_data_versions(client, &changed).await?;
        audit::append_in(client, std::slice::from_ref(entry)).await?;
        client.batch_execute("COMMIT").await?;
        Ok(Committed::New(self.id))
    }
}

async fn existing_batch(
    client: &impl GenericClient,
    agency_id: Uuid,
    sha: &[u8],
) -> Result<Option<Uuid>, StoreError> {
    Ok(client
        .query_opt(
            "SELECT id FROM batches WHERE agency_id = $1 AND file_sha256 = $2 AND status = 'committed'",
            &[&agency_id, &sha],
        )
        .await?
        .map(|row| row.get(0)))
}

async fn write_rejections(
    client: &tokio_postgres::Client,
    batch: Uuid,
    rejections: impl IntoIterator<Item = RejectionRow>,
) -> Result<(), StoreError> {
    let sink = client
        .copy_in("COPY batch_rejections (batch_id, row_number, field, reason, ordinal) FROM STDIN (FORMAT binary)")
        .await?;
    let writer = BinaryCopyInWriter::new(
        sink,
        &[Type::UUID, Type::INT8, Type::TEXT, Type::TEXT, Type::INT4],
    );
    let mut writer = std::pin::pin!(writer);
    for (ordinal, rejection) in rejections.into_iter().enumerate() {
        let ordinal = i32::try_from(ordinal)
            .map_err(|_| StoreError::Invalid("too many rejections".to_owned()))?;
        writer
            .as_mut()
            .write(&[
                &batch,
                &rejection.row,
                &rejection.field,
                &rejection.reason,
                &ordinal,
            ])
            .await?;
    }
    writer.finish().await?;
    Ok(())
}

/// Marks a committed batch of `agency_id` withdrawn or superseded and deletes its records.
/// Raises the data version of every partnership the batches fed, in one statement (so two
/// transactions always lock those rows in the same order).
async fn bump_data_versions(
    client: &impl GenericClient,
    batches: &[Uuid],
) -> Result<(), StoreError> {
    // Partnerships locked in code order, as retention locks them: no deadlock between the two.
    client
        .execute(
            "SELECT code FROM partnerships
             WHERE code IN (SELECT partnership_code FROM batch_partnerships WHERE batch_id = ANY($1))
             ORDER BY code FOR UPDATE",
            &[&batches],
        )
        .await?;
    client
        .execute(
            "UPDATE partnerships SET data_version = data_version + 1
             WHERE code IN (SELECT partnership_code FROM batch_partnerships WHERE batch_id = ANY($1))",
            &[&batches],
        )
        .await?;
    Ok(())
}

/// Deletes a batch's (`$1`) records from the partitions of the partnerships it touched (`$2`,
/// given as values so that the planner reads only their partitions; docs/scale-out.md).
pub(crate) const DELETE_BATCH_RECORDS: &str =
    "DELETE FROM case_records WHERE batch_id = $1 AND partnership_code = ANY($2)";

async fn retire(
    client: &impl GenericClient,
    id: Uuid,
    agency_id: Uuid,
    status: BatchStatus,
    superseded_by: Option<Uuid>,
) -> Result<(), StoreError> {
    let row = client
        .query_opt(
            "SELECT agency_id, status FROM batches WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await?
        .filter(|row| row.get::<_, Uuid>(0) == agency_id)
        .ok_or_else(|| StoreError::NotFound(format!("your agency has no batch {id}")))?;
    let current: BatchStatus = read_back(row.get(1))?;
    if current != BatchStatus::Committed {
        return Err(StoreError::Conflict(format!(
            "batch {id} is already {current}"
        )));
    }
    let touched: Vec<String> = client
        .query(
            "SELECT partnership_code FROM batch_partnerships WHERE batch_id = $1",
            &[&id],
        )
        .await?
        .into_iter()
        .map(|row| row.get(0))
        .collect();
    client
        .execute(DELETE_BATCH_RECORDS, &[&id, &touched])
        .await?;
    // The partnerships a batch touched are recorded when it commits; should a record lie
    // elsewhere all the same, it goes too (reading every partition) rather than outlive its
    // batch.
    if client
        .query_opt(
            "SELECT 1 FROM case_records WHERE batch_id = $1 LIMIT 1",
            &[&id],
        )
        .await?
        .is_some()
    {
        tracing::warn!(batch = %id, "records outside the partnerships the batch recorded");
        client
            .execute("DELETE FROM case_records WHERE batch_id = $1", &[&id])
            .await?;
    }
    client
        .execute(
            "UPDATE batches SET status = $2, superseded_by = $3, withdrawn_at = now() WHERE id = $1",
            &[&id, &status.as_str(), &superseded_by],
        )
        .await?;
    Ok(())
}

/// Withdraws a committed batch of `agency_id`: its records are deleted and it is marked
/// withdrawn, and `entry` appended to the audit trail, in one transaction.
///
/// # Errors
/// [`StoreError::NotFound`] when the agency has no such batch, [`StoreError::Conflict`] when it
/// is not committed.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn withdraw(
    url: &str,
    id: Uuid,
    agency_id: Uuid,
    entry: &audit::NewEntry,
) -> Result<(), StoreError> {
    let mut client = connect_admin(url, Duration::from_secs(10)).await?;
    let transaction = crate::read_committed(&mut client).await?;
    retire(&transaction, id, agency_id, BatchStatus::Withdrawn, None).await?;
    bump_data_versions(&transaction, &[id]).await?;
    audit::append_in(&transaction, std::slice::from_ref(entry)).await?;
    transaction.commit().await?;
    Ok(())
}

/// Checks, before an upload starts, that `id` is a committed batch of `agency_id`.
///
/// # Errors
/// As [`withdraw`].
#[tracing::instrument(level = "debug", skip_all)]
pub async fn check_supersedable(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    agency_id: Uuid,
) -> Result<(), StoreError> {
    match find(conn, id).await? {
        Some(batch)
            if batch.record.agency_id == agency_id
                && batch.record.status == BatchStatus::Committed =>
        {
            Ok(())
        }
        Some(batch) if batch.record.agency_id == agency_id => Err(StoreError::Conflict(format!(
            "batch {id} is already {}",
            batch.record.status
        ))),
        _ => Err(StoreError::NotFound(format!(
            "your agency has no batch {id}"
        ))),
    }
}

/// One batch, or `None`.
///
/// # Errors
/// [`StoreError::Query`] when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<Batch>, StoreError> {
    use diesel_async::RunQueryDsl as _;
    let Some(record) = batches::table
        .find(id)
        .select(BatchRecord::as_select())
        .first(conn)
        .await
        .optional()?
    else {
        return Ok(None);
    };
    let partnerships = batch_partnerships::table
        .filter(batch_partnerships::batch_id.eq(id))
        .select(Share::as_select())
        .load::<Share>(conn)
        .await?
        .into_iter()
        .map(|share| Ok((read_back(share.partnership_code)?, share.rows_accepted)))
        .collect::<Result<_, StoreError>>()?;
    Ok(Some(Batch {
        record,
        partnerships,
    }))
}

/// The most recent batches of an agency (at most `limit`), newest first.
///
/// # Errors
/// [`StoreError::Query`] when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn of_agency(
    conn: &mut AsyncPgConnection,
    agency_id: Uuid,
    limit: i64,
) -> Result<Vec<Batch>, StoreError> {
    use diesel_async::RunQueryDsl as _;
    let records: Vec<BatchRecord> = batches::table
        .filter(batches::agency_id.eq(agency_id))
        .order((batches::received_at.desc(), batches::id))
        .limit(limit)
        .select(BatchRecord::as_select())
        .load(conn)
        .await?;
    let ids: Vec<Uuid> = records.iter().map(|record| record.id).collect();
    let mut partnerships: HashMap<Uuid, BTreeMap<GssCode, i32>> = HashMap::new();
    for share in batch_partnerships::table
        .filter(batch_partnerships::batch_id.eq_any(&ids))
        .select(Share::as_select())
        .load::<Share>(conn)
        .await?
    {
        partnerships
            .entry(share.batch_id)
            .or_default()
            .insert(read_back(share.partnership_code)?, share.rows_accepted);
    }
    Ok(records
        .into_iter()
        .map(|record| Batch {
            partnerships: partnerships.remove(&record.id).unwrap_or_default(),
            record,
        })
        .collect())
}

/// The rejection report of a batch, in file order.
///
/// # Errors
/// [`StoreError::Query`] when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn rejections(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Vec<RejectionRow>, StoreError> {
    use diesel_async::RunQueryDsl as _;
    Ok(batch_rejections::table
        .filter(batch_rejections::batch_id.eq(id))
        .order(batch_rejections::ordinal)
        .select(RejectionRow::as_select())
        .load(conn)
        .await?)
}

#[derive(diesel::QueryableByName)]
struct ContributedSpan {
    #[diesel(sql_type = diesel::sql_types::Text)]
    partnership_code: String,
    #[diesel(sql_type = diesel::sql_types::Date)]
    first_date: NaiveDate,
    #[diesel(sql_type = diesel::sql_types::Date)]
    last_date: NaiveDate,
}

/// For each of `codes`, which of the periods starting at `starts` (the last ending on `last`)
/// some agency (`agency` only, when given) contributed to: a committed batch with records in
/// the partnership whose dates overlap the period. A period no agency contributed to has no
/// data, which is not zero.
///
/// # Errors
/// [`StoreError`] when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn contributed_periods(
    conn: &mut AsyncPgConnection,
    codes: &[String],
    starts: &[NaiveDate],
    last: NaiveDate,
    agency: Option<Uuid>,
) -> Result<HashMap<String, Vec<bool>>, StoreError> {
    use diesel_async::RunQueryDsl as _;
    let spans: Vec<ContributedSpan> = diesel::sql_query(
        "SELECT bp.partnership_code,
                (b.quality ->> 'first_date')::date AS first_date,
                (b.quality ->> 'last_date')::date AS last_date
         FROM batch_partnerships bp JOIN batches b ON b.id = bp.batch_id
         WHERE b.status = 'committed' AND bp.rows_accepted > 0
           AND bp.partnership_code = ANY($1)
           AND ($2::uuid IS NULL OR b.agency_id = $2)
           AND b.quality ->> 'first_date' IS NOT NULL AND b.quality ->> 'last_date' IS NOT NULL",
    )
    .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(codes)
    .bind::<diesel::sql_types::Nullable<diesel::sql_types::Uuid>, _>(agency)
    .load(conn)
    .await?;
    let ends: Vec<NaiveDate> = starts
        .iter()
        .skip(1)
        .map(|next| next.pred_opt().unwrap_or(*next))
        .chain(std::iter::once(last))
        .collect();
    let mut contributed: HashMap<String, Vec<bool>> = codes
        .iter()
        .map(|code| (code.clone(), vec![false; starts.len()]))
        .collect();
    for span in spans {
        if let Some(periods) = contributed.get_mut(&span.partnership_code) {
            for (period, (start, end)) in starts.iter().zip(&ends).enumerate() {
                periods[period] |= span.first_date <= *end && span.last_date >= *start;
            }
        }
    }
    Ok(contributed)
}

/// A batch with records of one partnership dated within a period, as a profile reports it.
#[derive(Debug, Clone, PartialEq, diesel::QueryableByName)]
pub struct PeriodBatch {
    /// The uploading agency.
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub agency_id: Uuid,
    /// `committed`, `withdrawn` or `superseded`.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub status: String,
    /// Rows read from the extract.
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub rows_total: i32,
    /// Rows accepted for the partnership.
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub rows_accepted: i32,
    /// Share of the extract's rows whose location resolved to a cell.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Double>)]
    pub geocoded_share: Option<f64>,
    /// Share of accepted rows with at least one indicator.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Double>)]
    pub indicator_completeness: Option<f64>,
    /// When it was committed.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
    pub committed_at: Option<DateTime<Utc>>,
}

/// The batches (committed, withdrawn or superseded) that brought `partnership` records dated
/// from `first` to `last`, oldest first.
///
/// # Errors
/// [`StoreError`] when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn of_period(
    conn: &mut AsyncPgConnection,
    partnership: &str,
    first: NaiveDate,
    last: NaiveDate,
) -> Result<Vec<PeriodBatch>, StoreError> {
    use diesel_async::RunQueryDsl as _;
    Ok(diesel::sql_query(
        "SELECT b.agency_id, b.status, b.rows_total, bp.rows_accepted,
                (b.quality ->> 'geocoded_share')::float8 AS geocoded_share,
                (b.quality ->> 'indicator_completeness')::float8 AS indicator_completeness,
                b.committed_at
         FROM batch_partnerships bp JOIN batches b ON b.id = bp.batch_id
         WHERE bp.partnership_code = $1 AND bp.rows_accepted > 0
           AND (b.quality ->> 'first_date')::date <= $3
           AND (b.quality ->> 'last_date')::date >= $2
         ORDER BY b.received_at, b.id",
    )
    .bind::<diesel::sql_types::Text, _>(partnership)
    .bind::<diesel::sql_types::Date, _>(first)
    .bind::<diesel::sql_types::Date, _>(last)
    .load(conn)
    .await?)
}
