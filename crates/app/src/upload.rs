//! The upload pipeline: the request body streams through a bounded channel into a blocking task
//! that hashes, decompresses, parses, validates, keys and places each row; accepted rows stream
//! back into a binary COPY inside one transaction. Memory stays bounded whatever the file size.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Read;
use std::rc::Rc;
use std::time::Duration;

use atlas_domain::{AgeBand, Indicator, LocationRole, RecordKind, Sex};
use atlas_ingest::extract::{
    ExtractError, ExtractFormat, ExtractReader, PostcodeLookup, Rejection, RowOutcome, Rules, Tally,
};
use atlas_ingest::placement::{Coverage, CoveredCell, PostcodePlace, Territory, tile_span};
use atlas_ingest::pseudonym::PseudonymKey;
use atlas_ingest::reference::boundary_polygons;
use atlas_store::batches::{
    self, AgencyArea, AreaReader, BatchCounts, BatchLoad, RejectionRow, StoredRecord,
};
use bytes::Bytes;
use chrono::NaiveDate;
use futures_util::{Stream, StreamExt as _};
use geo::MultiPolygon;
use h3o::CellIndex;
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::settings::IngestSettings;

/// Rows sent from the parser to the COPY writer per message.
const CHUNK_ROWS: usize = 1024;

/// A row ready for the database.
struct Prepared {
    partnership: usize,
    subject: [u8; 32],
    record_kind: RecordKind,
    occurred_on: NaiveDate,
    cell: u64,
    location_role: LocationRole,
    indicators: Vec<Indicator>,
    age_band: Option<AgeBand>,
    sex: Option<Sex>,
}

/// Where the agency may put records: its territory (the partnerships it serves and every
/// boundary nearby, [`atlas_ingest::placement`]), with their coverage and postcodes read from
/// the database as records reach them (a tile of cells or a postcode district at a time), so
/// an upload's time and memory follow its records, not the size of the agency's area.
pub struct Placement {
    area: AgencyArea,
    reader: AreaReader,
}

impl Placement {
    /// The placement of `agency`'s records; `None` when the agency is not registered.
    ///
    /// # Errors
    /// [`atlas_store::StoreError`] when PostgreSQL fails.
    pub async fn of_agency(
        url: &str,
        agency: uuid::Uuid,
    ) -> Result<Option<Self>, atlas_store::StoreError> {
        let Some(area) = batches::agency_area(url, agency).await? else {
            return Ok(None);
        };
        let served = area.served.iter().map(|(code, _)| code.clone()).collect();
        let reader = AreaReader::connect(url, served).await?;
        Ok(Some(Self { area, reader }))
    }

    /// The served partnerships' codes, sorted: a placed record's area indexes them.
    fn codes(&self) -> Vec<String> {
        self.area
            .served
            .iter()
            .map(|(code, _)| code.clone())
            .collect()
    }
}

/// A placement at work on the parser's thread: the territory, the postcode lookup, and the
/// first failure to read the database behind them (the upload then fails whole). A stored
/// boundary that cannot be read leaves its partnership placed by coverage alone, with a
/// warning.
struct Placing {
    territory: Territory,
    postcodes: DistrictPostcodes,
    source: Rc<Source>,
}

/// The database behind a placement, read from the parser's thread.
struct Source {
    reader: AreaReader,
    runtime: tokio::runtime::Handle,
    codes: Vec<String>,
    failure: RefCell<Option<atlas_store::StoreError>>,
}

impl Source {
    /// Runs a read on the runtime and waits for it; a failure is kept and answered as nothing.
    fn read<T: Default>(
        &self,
        read: impl Future<Output = Result<T, atlas_store::StoreError>>,
    ) -> T {
        self.runtime.block_on(read).unwrap_or_else(|err| {
            self.failure.borrow_mut().get_or_insert(err);
            T::default()
        })
    }

    /// The index of a served partnership's code.
    fn index(&self, code: &str) -> Option<usize> {
        self.codes
            .binary_search_by(|known| known.as_str().cmp(code))
            .ok()
    }
}

/// The coverage of the served partnerships, a tile at a time.
struct TileCoverage(Rc<Source>);

impl Coverage for TileCoverage {
    fn tile(&mut self, tile: CellIndex) -> Vec<CoveredCell> {
        let Some((first, last)) = tile_span(tile) else {
            return Vec::new();
        };
        let source = &self.0;
        source
            .read(source.reader.cells(first, last))
            .into_iter()
            .filter_map(|covered| {
                Some(CoveredCell {
                    cell: covered.cell,
                    area: source.index(&covered.partnership)?,
                    whole: covered.whole,
                })
            })
            .collect()
    }
}

/// The served partnerships' postcodes, a district at a time, kept for the upload.
struct DistrictPostcodes {
    source: Rc<Source>,
    districts: RefCell<HashMap<String, HashMap<String, PostcodePlace>>>,
}

/// The most postcode districts one upload keeps (the United Kingdom has some 3,000): beyond
/// it, a district is read again for each row naming it, so memory stays bounded whatever rows
/// say.
const MAX_DISTRICTS: usize = 4_096;

/// Whether a normalised postcode has the shape of one (`FY11AA`, `M11AE`, `EC1A1BB`): an
/// outward code of a letter then letters and digits with a digit among them, and an inward
/// code of a digit and two letters. Anything else is unknown without asking the database.
fn has_postcode_shape(postcode: &str) -> bool {
    let bytes = postcode.as_bytes();
    if !(5..=7).contains(&bytes.len()) {
        return false;
    }
    let (outward, inward) = bytes.split_at(bytes.len() - 3);
    matches!(inward, [digit, first, second]
        if digit.is_ascii_digit() && first.is_ascii_uppercase() && second.is_ascii_uppercase())
        && outward.first().is_some_and(u8::is_ascii_uppercase)
        && outward.iter().all(u8::is_ascii_alphanumeric)
        && outward.iter().any(u8::is_ascii_digit)
}

impl PostcodeLookup for DistrictPostcodes {
    fn locate(&self, postcode: &str) -> Option<PostcodePlace> {
        if !has_postcode_shape(postcode) {
            return None;
        }
        let district = postcode.get(..postcode.len().checked_sub(3)?)?;
        if let Some(known) = self.districts.borrow().get(district) {
            return known.get(postcode).copied();
        }
        let source = &self.source;
        let places: HashMap<String, PostcodePlace> = source
            .read(source.reader.district(district))
            .into_iter()
            .filter_map(|postcode| {
                let place = PostcodePlace {
                    cell: CellIndex::try_from(postcode.cell).ok()?,
                    area: postcode
                        .partnership
                        .as_deref()
                        .and_then(|code| source.index(code)),
                };
                Some((postcode.postcode, place))
            })
            .collect();
        let found = places.get(postcode).copied();
        let mut districts = self.districts.borrow_mut();
        if districts.len() < MAX_DISTRICTS {
            districts.insert(district.to_owned(), places);
        }
        found
    }
}

impl Placing {
    /// Sets `placement` to work on this thread, reading through `runtime`.
    fn new(placement: Placement, runtime: tokio::runtime::Handle) -> Self {
        let Placement { area, reader } = placement;
        let AgencyArea { served, others } = area;
        let codes: Vec<String> = served.iter().map(|(code, _)| code.clone()).collect();
        let source = Rc::new(Source {
            reader,
            runtime,
            codes,
            failure: RefCell::new(None),
        });
        let served = served
            .into_iter()
            .map(|(code, boundaries)| {
                let polygons = polygons(&code, &boundaries);
                (code, polygons)
            })
            .collect();
        let others: Vec<MultiPolygon> = others
            .iter()
            .filter_map(|boundary| {
                polygons("a neighbouring partnership", std::slice::from_ref(boundary))
            })
            .collect();
        Self {
            territory: Territory::new(served, TileCoverage(Rc::clone(&source)), &others),
            postcodes: DistrictPostcodes {
                source: Rc::clone(&source),
                districts: RefCell::new(HashMap::new()),
            },
            source,
        }
    }

    /// The first failure to read the database, if any (taken).
    fn failure(&self) -> Option<UploadFailure> {
        self.source
            .failure
            .borrow_mut()
            .take()
            .map(UploadFailure::Store)
    }
}

/// The union of an area's stored boundaries, or `None` (with a warning) when there are none or
/// one cannot be read.
fn polygons(code: &str, boundaries: &[serde_json::Value]) -> Option<MultiPolygon> {
    let mut all = MultiPolygon::new(Vec::new());
    for boundary in boundaries {
        match boundary_polygons(boundary) {
            Ok(polygons) => all.0.extend(polygons),
            Err(err) => {
                tracing::warn!(%code, %err, "a stored boundary cannot be read; placing by coverage");
                return None;
            }
        }
    }
    (!all.0.is_empty()).then_some(all)
}

/// What the parser found.
pub struct Parsed {
    /// Counts and quality figures.
    pub tally: Tally,
    /// Every rejected field, in file order, spilled to a temporary file.
    pub rejections: RejectionLog,
    /// SHA-256 of the extract's content (after any gzip decoding).
    pub sha256: [u8; 32],
}

impl Parsed {
    /// The batch's counts and quality figures, or why the extract is refused whole: more of its
    /// rows rejected than `max_rejected_share` allows.
    ///
    /// # Errors
    /// [`UploadFailure::TooManyRejected`], [`UploadFailure::TooManyRows`].
    pub fn counts(&self, max_rejected_share: f64) -> Result<BatchCounts, UploadFailure> {
        let tally = &self.tally;
        if tally.rejected_share() > max_rejected_share {
            let first = self
                .rejections
                .first()
                .iter()
                .map(|rejection| {
                    format!(
                        "row {} {}: {}",
                        rejection.row, rejection.field, rejection.reason
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            return Err(UploadFailure::TooManyRejected(format!(
                "{} of {} rows were rejected ({:.1} %), more than the {:.1} % allowed; nothing was stored{}. First problems: {first}",
                tally.rows_rejected - tally.rows_past_retention,
                tally.rows_total - tally.rows_past_retention,
                tally.rejected_share() * 100.0,
                max_rejected_share * 100.0,
                if tally.rows_past_retention > 0 {
                    format!(
                        " ({} further rows past their retention period are not counted)",
                        tally.rows_past_retention
                    )
                } else {
                    String::new()
                },
            )));
        }
        let count = |value: u64| i32::try_from(value).map_err(|_| UploadFailure::TooManyRows);
        Ok(BatchCounts {
            rows_total: count(tally.rows_total)?,
            rows_accepted: count(tally.rows_accepted)?,
            rows_rejected: count(tally.rows_rejected)?,
            quality: serde_json::json!({
                "geocoded_share": tally.geocoded_share(),
                "indicator_completeness": tally.indicator_completeness(),
                "first_date": tally.first_date,
                "last_date": tally.last_date,
            }),
        })
    }
}

/// Why an upload stopped before it could be committed.
pub enum UploadFailure {
    /// The body grew past the limit.
    TooLarge(u64),
    /// The body came too slowly, stalled or took too long; the reason names the setting.
    TimedOut(String),
    /// The extract was refused whole.
    Refused(ExtractError),
    /// More rows were rejected than `ingest.max_rejected_share` allows; the message gives the
    /// figures and the first problems.
    TooManyRejected(String),
    /// More rows than a batch can count.
    TooManyRows,
    /// The database failed.
    Store(atlas_store::StoreError),
    /// The parser task died.
    Internal(String),
}

/// How long and how slowly an upload body may arrive (the `ingest.*` settings).
struct Pace {
    min_rate: u64,
    window: Duration,
    idle: Duration,
    deadline: Duration,
}

impl Pace {
    fn of(settings: &IngestSettings) -> Self {
        Self {
            min_rate: settings.min_body_bytes_per_sec,
            window: Duration::from_secs(settings.body_rate_window_secs.max(1)),
            idle: Duration::from_secs(settings.body_idle_timeout_secs.max(1)),
            deadline: Duration::from_secs(settings.body_deadline_secs.max(1)),
        }
    }

    fn idle(&self) -> String {
        format!(
            "the upload sent no data for {} s (ingest.body_idle_timeout_secs); nothing was stored",
            self.idle.as_secs()
        )
    }

    fn late(&self) -> String {
        format!(
            "the upload did not arrive whole within {} s (ingest.body_deadline_secs); nothing was \
             stored",
            self.deadline.as_secs()
        )
    }

    fn slow(&self, received: u64, over: Duration) -> String {
        #[expect(clippy::cast_precision_loss, reason = "a rate for a message")]
        let rate = received as f64 / over.as_secs_f64();
        format!(
            "the upload arrived at {rate:.1} bytes a second over {:.0} s, slower than the {} bytes \
             a second required (ingest.min_body_bytes_per_sec); nothing was stored",
            over.as_secs_f64(),
            self.min_rate
        )
    }
}

/// Streams `payload` (the request body's chunks) through the parser into `load`, within the
/// size and pace `settings` allow, refusing rows older than the first day `kept_from` keeps of
/// their kind (the retention period). Returns what the parser found; the caller decides
/// whether to commit, after [`Parsed::counts`].
///
/// # Errors
/// [`UploadFailure`] when the body is too large, too slow or refused, or the store fails.
#[expect(
    clippy::too_many_arguments,
    reason = "the parts of one upload, each from somewhere else (request, settings, store)"
)]
pub async fn stream<E: std::fmt::Display>(
    mut payload: impl Stream<Item = Result<Bytes, E>> + Unpin,
    format: ExtractFormat,
    gzip: bool,
    settings: &IngestSettings,
    kept_from: Vec<(RecordKind, NaiveDate)>,
    key: PseudonymKey,
    placement: Placement,
    load: &mut BatchLoad,
) -> Result<Parsed, UploadFailure> {
    let max_bytes = settings.max_upload_bytes;
    let pace = Pace::of(settings);
    let (bytes_tx, bytes_rx) = mpsc::channel::<std::io::Result<Bytes>>(16);
    let (rows_tx, mut rows_rx) = mpsc::channel::<Vec<Prepared>>(4);
    let codes = placement.codes();
    let runtime = tokio::runtime::Handle::current();
    let parser = tokio::task::spawn_blocking(move || {
        let placing = Placing::new(placement, runtime);
        let limits = Limits {
            max_bytes,
            kept_from: &kept_from,
        };
        parse(bytes_rx, format, gzip, limits, &key, &placing, &rows_tx)
    });

    let feed = async {
        let mut received = 0_u64;
        let mut parser_listening = true;
        let deadline = Instant::now() + pace.deadline;
        // The rate is averaged over windows of `pace.window`; time spent waiting for the
        // parser is not the client's and is left out.
        let (mut window_start, mut window_bytes) = (Instant::now(), 0_u64);
        let cut = |reason: String| async {
            let _ = bytes_tx
                .send(Err(std::io::Error::other("the upload was cut")))
                .await;
            Err(UploadFailure::TimedOut(reason))
        };
        loop {
            let now = Instant::now();
            if now >= deadline {
                return cut(pace.late()).await;
            }
            let Ok(next) =
                tokio::time::timeout_at((now + pace.idle).min(deadline), payload.next()).await
            else {
                let reason = if Instant::now() >= deadline {
                    pace.late()
                } else {
                    pace.idle()
                };
                return cut(reason).await;
            };
            let Some(chunk) = next else { break };
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(err) => {
                    let _ = bytes_tx
                        .send(Err(std::io::Error::other(err.to_string())))
                        .await;
                    return Ok(());
                }
            };
            received += chunk.len() as u64;
            if received > max_bytes {
                let _ = bytes_tx
                    .send(Err(std::io::Error::other("the upload is too large")))
                    .await;
                return Err(UploadFailure::TooLarge(max_bytes));
            }
            window_bytes += chunk.len() as u64;
            let over = window_start.elapsed();
            if over >= pace.window {
                if u128::from(window_bytes) * 1000 < u128::from(pace.min_rate) * over.as_millis() {
                    return cut(pace.slow(window_bytes, over)).await;
                }
                (window_start, window_bytes) = (Instant::now(), 0);
            }
            // When the parser stops early (a refused extract) the rest of the body is read and
            // dropped, so the client receives the verdict rather than a broken connection.
            let waited = Instant::now();
            if parser_listening && bytes_tx.send(Ok(chunk)).await.is_err() {
                parser_listening = false;
            }
            window_start += waited.elapsed();
        }
        drop(bytes_tx);
        Ok(())
    };
    let copy = async {
        while let Some(rows) = rows_rx.recv().await {
            for row in rows {
                let record = StoredRecord {
                    partnership_code: &codes[row.partnership],
                    subject: row.subject,
                    record_kind: row.record_kind,
                    occurred_on: row.occurred_on,
                    cell: row.cell,
                    location_role: row.location_role,
                    indicators: &row.indicators,
                    age_band: row.age_band,
                    sex: row.sex,
                };
                load.write(&record).await.map_err(UploadFailure::Store)?;
            }
        }
        Ok(())
    };
    let (fed, copied) = tokio::join!(feed, copy);
    let parsed = parser
        .await
        .map_err(|err| UploadFailure::Internal(err.to_string()))?;
    fed?;
    copied?;
    parsed
}

/// What the parser refuses beyond the extract format's own rules.
struct Limits<'a> {
    /// The most bytes an upload may hold, after decompression too.
    max_bytes: u64,
    /// The first day kept of each record kind with a retention period.
    kept_from: &'a [(RecordKind, NaiveDate)],
}

/// The blocking half: bytes in, prepared rows out.
fn parse(
    bytes: mpsc::Receiver<std::io::Result<Bytes>>,
    format: ExtractFormat,
    gzip: bool,
    limits: Limits<'_>,
    key: &PseudonymKey,
    placement: &Placing,
    rows: &mpsc::Sender<Vec<Prepared>>,
) -> Result<Parsed, UploadFailure> {
    let Limits {
        max_bytes,
        kept_from,
    } = limits;
    let too_large = std::rc::Rc::new(std::cell::Cell::new(false));
    let failure = |err: ExtractError| {
        // A database that failed part-way explains a refusal better than the file does.
        if let Some(failure) = placement.failure() {
            return failure;
        }
        if too_large.get() {
            UploadFailure::TooLarge(max_bytes)
        } else {
            UploadFailure::Refused(err)
        }
    };
    let body = ChannelReader {
        receiver: bytes,
        current: Bytes::new(),
    };
    // A gzip stream may hold several members (`cat a.gz b.gz`): all are read.
    let decoded: Box<dyn Read> = if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(body))
    } else {
        Box::new(body)
    };
    // The size limit applies to the content too, so a small gzip bomb cannot grow a row or the
    // work without bound.
    let mut hashing = HashingReader {
        inner: decoded,
        hasher: Sha256::new(),
        remaining: max_bytes,
        exceeded: std::rc::Rc::clone(&too_large),
    };
    // One day's grace so that an event dated today in the United Kingdom is never "future".
    let today = (chrono::Utc::now() + chrono::Duration::days(1)).date_naive();
    // Postcodes outside the agency's area are absent from its lookup: such rows are rejected
    // as unknown postcodes rather than after placement. A row placed while the database could
    // not be read may be wrongly refused: the upload then fails whole before anything is kept.
    let rules = Rules {
        today,
        postcodes: &placement.postcodes,
        kept_from,
    };
    let mut tally = Tally::default();
    let mut rejections = RejectionLog::new()
        .map_err(|err| UploadFailure::Internal(format!("rejection report: {err}")))?;
    let mut chunk = Vec::with_capacity(CHUNK_ROWS);
    for outcome in ExtractReader::new(&mut hashing, format, rules).map_err(failure)? {
        let outcome = match outcome.map_err(failure)? {
            RowOutcome::Accepted(record) => match placement.territory.place(record.location) {
                Ok(placed) => {
                    chunk.push(Prepared {
                        partnership: placed.area,
                        subject: key.sign(&record.subject),
                        record_kind: record.record_kind,
                        occurred_on: record.occurred_on,
                        cell: u64::from(placed.cell),
                        location_role: record.location_role,
                        indicators: record.indicators.clone(),
                        age_band: record.age_band,
                        sex: record.sex,
                    });
                    if chunk.len() == CHUNK_ROWS {
                        if let Some(failure) = placement.failure() {
                            return Err(failure);
                        }
                        if rows.blocking_send(std::mem::take(&mut chunk)).is_err() {
                            return Err(UploadFailure::Internal(
                                "the upload was abandoned".to_owned(),
                            ));
                        }
                    }
                    RowOutcome::Accepted(record)
                }
                Err(unplaced) => RowOutcome::Rejected(vec![Rejection {
                    row: record.row,
                    field: "location",
                    reason: unplaced.to_string(),
                }]),
            },
            rejected @ RowOutcome::Rejected(_) => rejected,
        };
        tally.count(&outcome);
        if let RowOutcome::Rejected(problems) = outcome {
            for problem in problems {
                rejections
                    .push(problem)
                    .map_err(|err| UploadFailure::Internal(format!("rejection report: {err}")))?;
            }
        }
    }
    if let Some(failure) = placement.failure() {
        return Err(failure);
    }
    if !chunk.is_empty() && rows.blocking_send(chunk).is_err() {
        return Err(UploadFailure::Internal(
            "the upload was abandoned".to_owned(),
        ));
    }
    // Hash whatever follows the last row too (trailing blank lines).
    std::io::copy(&mut hashing, &mut std::io::sink())
        .map_err(|err| failure(ExtractError::Read(err.to_string())))?;
    Ok(Parsed {
        tally,
        rejections,
        sha256: hashing.hasher.finalize().into(),
    })
}

/// Reads the bytes that the request handler forwards, blocking until they arrive.
struct ChannelReader {
    receiver: mpsc::Receiver<std::io::Result<Bytes>>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.receiver.blocking_recv() {
                Some(Ok(bytes)) => self.current = bytes,
                Some(Err(err)) => return Err(err),
                None => return Ok(0),
            }
        }
        let count = buffer.len().min(self.current.len());
        buffer[..count].copy_from_slice(&self.current[..count]);
        self.current = self.current.slice(count..);
        Ok(count)
    }
}

/// Hashes everything read through it, and fails once more than `remaining` bytes pass.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    remaining: u64,
    exceeded: std::rc::Rc<std::cell::Cell<bool>>,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let count = self.inner.read(buffer)?;
        self.remaining = self.remaining.checked_sub(count as u64).ok_or_else(|| {
            self.exceeded.set(true);
            std::io::Error::other("the decompressed extract is larger than the upload limit")
        })?;
        self.hasher.update(&buffer[..count]);
        Ok(count)
    }
}

/// The rejection report of an upload, written to a temporary file as it grows so that memory
/// stays flat however many rows are rejected; the first few are also kept for messages.
pub struct RejectionLog {
    file: std::io::BufWriter<std::fs::File>,
    first: Vec<RejectionRow>,
}

impl RejectionLog {
    /// How many rejections are kept in memory for messages.
    const KEPT: usize = 5;

    fn new() -> std::io::Result<Self> {
        Ok(Self {
            file: std::io::BufWriter::new(tempfile::tempfile()?),
            first: Vec::new(),
        })
    }

    fn push(&mut self, problem: Rejection) -> std::io::Result<()> {
        use std::io::Write as _;
        let row = RejectionRow {
            row: i64::try_from(problem.row).unwrap_or(i64::MAX),
            field: problem.field.to_owned(),
            reason: problem.reason,
        };
        // One record per line: the reason has no line breaks, and tabs separate the fields.
        writeln!(
            self.file,
            "{}\t{}\t{}",
            row.row,
            row.field,
            row.reason.replace(['\t', '\n'], " ")
        )?;
        if self.first.len() < Self::KEPT {
            self.first.push(row);
        }
        Ok(())
    }

    /// The first few rejections, for messages.
    #[must_use]
    pub fn first(&self) -> &[RejectionRow] {
        &self.first
    }

    /// Every rejection, in file order.
    ///
    /// # Errors
    /// When the temporary file cannot be read back.
    pub fn into_rows(self) -> std::io::Result<impl Iterator<Item = RejectionRow>> {
        use std::io::{BufRead as _, Seek as _};
        let mut file = self
            .file
            .into_inner()
            .map_err(std::io::IntoInnerError::into_error)?;
        file.rewind()?;
        Ok(std::io::BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .filter_map(|line| {
                let mut parts = line.splitn(3, '\t');
                let row = parts.next()?.parse().ok()?;
                let (field, reason) = (parts.next()?.to_owned(), parts.next()?.to_owned());
                Some(RejectionRow { row, field, reason })
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::has_postcode_shape;

    #[test]
    fn only_what_looks_like_a_postcode_is_looked_up() {
        for postcode in ["FY11AA", "M11AE", "EC1A1BB", "W1A0AX", "PR18XY", "SW1A2AA"] {
            assert!(has_postcode_shape(postcode), "{postcode}");
        }
        for text in [
            "",
            "FY1",
            "11AAAA",
            "FYAAAA",
            "FY11A1",
            "FY1 1AA",
            "ABCDEFGH1AA",
            "É11AA",
        ] {
            assert!(!has_postcode_shape(text), "{text}");
        }
    }
}
