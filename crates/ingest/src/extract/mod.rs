//! The canonical extract: reading CSV or NDJSON row by row, refusing extracts that are
//! structurally unusable or still carry direct identifiers, and validating each row into a
//! [`CanonicalRecord`] or a list of [`Rejection`]s. See docs/extract-format.md.
//!
//! Memory does not grow with the file: one row is held at a time.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};

use atlas_domain::{AgeBand, Indicator, LocationRole, RecordKind, Sex};
use chrono::NaiveDate;
use h3o::{CellIndex, LatLng};

use crate::bng;
use crate::identifiers::{IdentifierKind, identifying_column, identifying_value};
pub use crate::placement::{Location, PostcodePlace};

/// The two encodings of an extract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtractFormat {
    /// RFC 4180 CSV with a header row.
    Csv,
    /// One JSON object per line.
    Ndjson,
}

/// A field of the canonical extract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// The agency-side pseudonym.
    Subject,
    /// The [`RecordKind`].
    RecordKind,
    /// The date of the event.
    OccurredOn,
    /// WGS84 latitude.
    Lat,
    /// WGS84 longitude.
    Lon,
    /// British National Grid easting.
    Easting,
    /// British National Grid northing.
    Northing,
    /// A postcode.
    Postcode,
    /// An H3 cell.
    H3,
    /// The [`LocationRole`].
    LocationRole,
    /// `;`-separated [`Indicator`]s.
    Indicators,
    /// Age in whole years.
    Age,
    /// The [`AgeBand`].
    AgeBand,
    /// The [`Sex`].
    Sex,
}

impl Column {
    /// Every column, in documentation order.
    pub const ALL: [Self; 14] = [
        Self::Subject,
        Self::RecordKind,
        Self::OccurredOn,
        Self::Lat,
        Self::Lon,
        Self::Easting,
        Self::Northing,
        Self::Postcode,
        Self::H3,
        Self::LocationRole,
        Self::Indicators,
        Self::Age,
        Self::AgeBand,
        Self::Sex,
    ];

    /// The columns every extract must have.
    pub const REQUIRED: [Self; 3] = [Self::Subject, Self::RecordKind, Self::OccurredOn];

    /// The column's name in files.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Subject => "subject",
            Self::RecordKind => "record_kind",
            Self::OccurredOn => "occurred_on",
            Self::Lat => "lat",
            Self::Lon => "lon",
            Self::Easting => "easting",
            Self::Northing => "northing",
            Self::Postcode => "postcode",
            Self::H3 => "h3",
            Self::LocationRole => "location_role",
            Self::Indicators => "indicators",
            Self::Age => "age",
            Self::AgeBand => "age_band",
            Self::Sex => "sex",
        }
    }

    /// The column a header names, ignoring case and surrounding space.
    #[must_use]
    pub fn from_header(header: &str) -> Option<Self> {
        let header = header.trim();
        Self::ALL
            .into_iter()
            .find(|column| column.name().eq_ignore_ascii_case(header))
    }

    const fn index(self) -> usize {
        self as usize
    }

    const fn is_location(self) -> bool {
        matches!(
            self,
            Self::Lat | Self::Lon | Self::Easting | Self::Northing | Self::Postcode | Self::H3
        )
    }
}

/// The longest line of an extract, in bytes: longer lines refuse the extract before they are
/// held in memory, so one endless line cannot grow the reader.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// The longest field of an extract, in bytes: no canonical field comes near it.
pub const MAX_FIELD_BYTES: usize = 1024;

/// Why a whole extract is refused. Nothing of a refused extract is stored, and no message
/// repeats a value from the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    /// Zero bytes, or nothing but blank lines.
    #[error("the extract is empty")]
    Empty,
    /// A header and no rows.
    #[error("the extract has a header but no rows")]
    NoRows,
    /// Required columns are missing from the header.
    #[error("the header lacks the required column(s) {}", .0.join(", "))]
    MissingColumns(Vec<&'static str>),
    /// No column can give a location.
    #[error(
        "the header has no location columns: give lat and lon, easting and northing, postcode or h3"
    )]
    NoLocationColumns,
    /// A column is named twice.
    #[error("column `{0}` appears twice in the header")]
    DuplicateColumn(String),
    /// Columns that are not part of the canonical extract, by position from 1 (names are not
    /// repeated: a file without a header row would have data there).
    #[error(
        "unknown column(s) at position(s) {} of the header: the canonical extract has subject, \
         record_kind, occurred_on, lat, lon, easting, northing, postcode, h3, location_role, \
         indicators, age, age_band and sex (an extract profile can map other names)",
        .0.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    )]
    UnknownColumns(Vec<usize>),
    /// A column's name says it holds a direct identifier.
    #[error(
        "column `{column}` looks like it holds {kind}: remove direct identifiers before uploading \
         (atlas pseudonymise does); nothing was stored"
    )]
    IdentifierColumn {
        /// The column's name as written.
        column: String,
        /// What it seems to hold.
        kind: IdentifierKind,
    },
    /// A value looks like a direct identifier; the value itself is never repeated.
    #[error(
        "row {row}, column `{column}`: a value looks like {kind}: remove direct identifiers before \
         uploading (atlas pseudonymise does); nothing was stored"
    )]
    IdentifierValue {
        /// Row number (the header is row 1).
        row: u64,
        /// The column's name.
        column: &'static str,
        /// What the value seems to be.
        kind: IdentifierKind,
    },
    /// A quoted field spans lines, which no canonical field does: almost always an unclosed
    /// quote that would swallow the rows after it.
    #[error("row {row}: a field runs over several lines, probably an unclosed quote")]
    MultilineField {
        /// Row number (the header is row 1).
        row: u64,
    },
    /// A line longer than [`MAX_LINE_BYTES`].
    #[error("row {row} is longer than {limit} bytes, the most one line of an extract may hold")]
    LineTooLong {
        /// Row number (the header is row 1).
        row: u64,
        /// The limit, in bytes.
        limit: usize,
    },
    /// A field longer than [`MAX_FIELD_BYTES`].
    #[error(
        "row {row}, column `{column}`: the field is longer than {limit} bytes, the most one field \
         may hold"
    )]
    FieldTooLong {
        /// Row number (the header is row 1).
        row: u64,
        /// The column's name.
        column: &'static str,
        /// The limit, in bytes.
        limit: usize,
    },
    /// Bytes that are not UTF-8.
    #[error("row {row} is not valid UTF-8: save the extract as UTF-8")]
    NotUtf8 {
        /// Row number (the header is row 1).
        row: u64,
    },
    /// The bytes could not be read (for example a truncated gzip stream).
    #[error("the extract could not be read: {0}")]
    Read(String),
}

/// One problem with one field of one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Row number: the line where the row starts, the header being row 1 (NDJSON: the line).
    pub row: u64,
    /// The field at fault, or `row` for the row as a whole.
    pub field: &'static str,
    /// Why, without repeating the value.
    pub reason: String,
}

/// How the reason of a row refused for being past its kind's retention period ends.
const PAST_RETENTION: &str = "(the retention period): an older one is not stored";

impl Rejection {
    /// Whether the row was refused for being older than its kind's retention period keeps
    /// ([`Rules::kept_from`]).
    #[must_use]
    pub fn is_past_retention(&self) -> bool {
        self.field == Column::OccurredOn.name() && self.reason.ends_with(PAST_RETENTION)
    }

    /// Whether the problem leaves the row's location unknown (a location field, or the row as a
    /// whole, which could not be read).
    #[must_use]
    pub fn is_about_location(&self) -> bool {
        Column::ALL
            .iter()
            .any(|column| column.is_location() && column.name() == self.field)
            || self.field == "location"
    }
}

/// A validated row, ready to be placed, keyed and stored. Its location is kept only until the
/// upload places it in a partnership ([`crate::placement`]); what is stored is a resolution-9
/// cell.
#[derive(Debug, Clone, PartialEq)]
pub struct CanonicalRecord {
    /// Row number in the file.
    pub row: u64,
    /// The agency-side pseudonym (HMAC-SHA256 output).
    pub subject: [u8; 32],
    /// What kind of event.
    pub record_kind: RecordKind,
    /// When it happened.
    pub occurred_on: NaiveDate,
    /// Where, as given (a position or a postcode).
    pub location: Location,
    /// What the place was to the event.
    pub location_role: LocationRole,
    /// Risk indicators, sorted and distinct.
    pub indicators: Vec<Indicator>,
    /// Age band, when given.
    pub age_band: Option<AgeBand>,
    /// Sex, when given.
    pub sex: Option<Sex>,
}

/// What became of one row.
#[derive(Debug, Clone, PartialEq)]
pub enum RowOutcome {
    /// The row is valid.
    Accepted(CanonicalRecord),
    /// The row is not, for these reasons (at least one).
    Rejected(Vec<Rejection>),
}

/// Finds a postcode's cell and partnership.
pub trait PostcodeLookup {
    /// Where a postcode normalised by [`normalise_postcode`] is, if known.
    fn locate(&self, postcode: &str) -> Option<PostcodePlace>;
}

impl PostcodeLookup for HashMap<String, PostcodePlace> {
    fn locate(&self, postcode: &str) -> Option<PostcodePlace> {
        self.get(postcode).copied()
    }
}

/// A postcode in upper case without spaces (`fy1 1aa` -> `FY11AA`).
#[must_use]
pub fn normalise_postcode(postcode: &str) -> String {
    postcode
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The rules a row is checked against that depend on the world outside the file.
pub struct Rules<'a> {
    /// Dates after this day are refused as being in the future.
    pub today: NaiveDate,
    /// Where postcodes are looked up.
    pub postcodes: &'a dyn PostcodeLookup,
    /// The first day kept of each record kind with a retention period: an older row is refused,
    /// since retention would delete it at its next run (docs/operations.md, "Retention").
    pub kept_from: &'a [(RecordKind, NaiveDate)],
}

/// The earliest date accepted.
const EARLIEST: (i32, u32, u32) = (1990, 1, 1);

/// Great Britain's extent, WGS84 degrees, with a margin for offshore islands.
const GB_LATITUDE: std::ops::RangeInclusive<f64> = 49.8..=60.95;
const GB_LONGITUDE: std::ops::RangeInclusive<f64> = -8.75..=1.8;

/// The raw fields of one row, by column.
#[derive(Debug, Default)]
struct RawRow {
    row: u64,
    fields: [Option<String>; Column::ALL.len()],
}

impl RawRow {
    fn get(&self, column: Column) -> Option<&str> {
        self.fields[column.index()].as_deref()
    }

    fn set(&mut self, column: Column, value: &str) {
        let trimmed = value.trim();
        self.fields[column.index()] = (!trimmed.is_empty()).then(|| trimmed.to_owned());
    }
}

/// Reads an extract row by row. Each item is a row's outcome; an `Err` refuses the whole extract
/// and ends the iteration.
pub struct ExtractReader<'a, R: Read> {
    source: Source<R>,
    rules: Rules<'a>,
    rows: u64,
    finished: bool,
}

enum Source<R: Read> {
    Csv {
        reader: csv::Reader<LineLimit<R>>,
        columns: Vec<Column>,
        record: csv::ByteRecord,
    },
    Ndjson {
        reader: BufReader<LineLimit<R>>,
        line: u64,
        buffer: Vec<u8>,
    },
}

impl<'a, R: Read> ExtractReader<'a, R> {
    /// Opens an extract. For CSV the header is read and checked here.
    ///
    /// # Errors
    /// [`ExtractError`] when the CSV header is unusable.
    pub fn new(reader: R, format: ExtractFormat, rules: Rules<'a>) -> Result<Self, ExtractError> {
        let reader = LineLimit::new(reader, format == ExtractFormat::Csv);
        let source = match format {
            ExtractFormat::Csv => {
                let mut reader = csv::ReaderBuilder::new()
                    .flexible(true)
                    .has_headers(true)
                    .from_reader(reader);
                let headers = reader.byte_headers().map_err(read_error)?.clone();
                if headers.is_empty()
                    || headers
                        .iter()
                        .all(|field| field.iter().all(u8::is_ascii_whitespace))
                {
                    return Err(ExtractError::Empty);
                }
                let names = headers
                    .iter()
                    .map(|field| {
                        std::str::from_utf8(field).map_err(|_| ExtractError::NotUtf8 { row: 1 })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let columns =
                    header_columns(names.iter().map(|name| name.trim_start_matches('\u{feff}')))?;
                check_required(&columns)?;
                Source::Csv {
                    reader,
                    columns,
                    record: csv::ByteRecord::new(),
                }
            }
            ExtractFormat::Ndjson => Source::Ndjson {
                reader: BufReader::new(reader),
                line: 0,
                buffer: Vec::new(),
            },
        };
        Ok(Self {
            source,
            rules,
            rows: 0,
            finished: false,
        })
    }

    fn next_raw(&mut self) -> Result<Option<Result<RawRow, Vec<Rejection>>>, ExtractError> {
        match &mut self.source {
            Source::Csv {
                reader,
                columns,
                record,
            } => {
                if !reader.read_byte_record(record).map_err(read_error)? {
                    return Ok(None);
                }
                let row = record.position().map_or(0, csv::Position::line);
                // Every field of every row is checked for identifiers and for line breaks, even
                // in a row that is rejected for its shape.
                for (index, field) in record.iter().enumerate() {
                    let column = columns.get(index).map_or("row", |column| column.name());
                    if field.contains(&b'\n') || field.contains(&b'\r') {
                        return Err(ExtractError::MultilineField { row });
                    }
                    if field.len() > MAX_FIELD_BYTES {
                        return Err(ExtractError::FieldTooLong {
                            row,
                            column,
                            limit: MAX_FIELD_BYTES,
                        });
                    }
                    let text =
                        std::str::from_utf8(field).map_err(|_| ExtractError::NotUtf8 { row })?;
                    if let Some(kind) = identifying_value(text) {
                        return Err(ExtractError::IdentifierValue { row, column, kind });
                    }
                }
                if record.len() != columns.len() {
                    return Ok(Some(Err(vec![Rejection {
                        row,
                        field: "row",
                        reason: format!(
                            "expected {} fields, found {}",
                            columns.len(),
                            record.len()
                        ),
                    }])));
                }
                let mut raw = RawRow {
                    row,
                    ..RawRow::default()
                };
                for (column, field) in columns.iter().zip(record.iter()) {
                    let text =
                        std::str::from_utf8(field).map_err(|_| ExtractError::NotUtf8 { row })?;
                    raw.set(*column, text);
                }
                Ok(Some(Ok(raw)))
            }
            Source::Ndjson {
                reader,
                line,
                buffer,
            } => loop {
                buffer.clear();
                if reader
                    .read_until(b'\n', buffer)
                    .map_err(|err| io_error(&err))?
                    == 0
                {
                    return Ok(None);
                }
                *line += 1;
                let row = *line;
                let text =
                    std::str::from_utf8(buffer).map_err(|_| ExtractError::NotUtf8 { row })?;
                let text = text.trim_start_matches('\u{feff}').trim();
                if text.is_empty() {
                    continue;
                }
                return ndjson_row(row, text);
            },
        }
    }
}

impl<R: Read> Iterator for ExtractReader<'_, R> {
    type Item = Result<RowOutcome, ExtractError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let raw = match self.next_raw() {
            Ok(Some(raw)) => raw,
            Ok(None) => {
                self.finished = true;
                return match (self.rows, &self.source) {
                    (0, Source::Csv { .. }) => Some(Err(ExtractError::NoRows)),
                    (0, Source::Ndjson { .. }) => Some(Err(ExtractError::Empty)),
                    _ => None,
                };
            }
            Err(err) => {
                self.finished = true;
                return Some(Err(err));
            }
        };
        self.rows += 1;
        Some(match raw {
            Ok(raw) => Ok(validate(&raw, &self.rules)),
            Err(rejections) => Ok(RowOutcome::Rejected(rejections)),
        })
    }
}

fn read_error(err: csv::Error) -> ExtractError {
    match err.kind() {
        csv::ErrorKind::Utf8 { pos, .. } => ExtractError::NotUtf8 {
            row: pos.as_ref().map_or(0, csv::Position::line),
        },
        csv::ErrorKind::Io(io) => io_error(io),
        _ => ExtractError::Read(err.to_string()),
    }
}

/// A failed read: a line over [`MAX_LINE_BYTES`], or the bytes could not be read.
fn io_error(err: &std::io::Error) -> ExtractError {
    match err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<LongLine>())
    {
        Some(LongLine {
            row,
            multiline: true,
        }) => ExtractError::MultilineField { row: *row },
        Some(LongLine {
            row,
            multiline: false,
        }) => ExtractError::LineTooLong {
            row: *row,
            limit: MAX_LINE_BYTES,
        },
        None => ExtractError::Read(err.to_string()),
    }
}

/// The error a [`LineLimit`] reads with: the record starting at `row` passed
/// [`MAX_LINE_BYTES`], on one line or (inside quotes) over several.
#[derive(Debug, thiserror::Error)]
#[error("row {row} is longer than {MAX_LINE_BYTES} bytes")]
struct LongLine {
    row: u64,
    multiline: bool,
}

/// Where a CSV scanner is within a record, as far as line ends are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quoting {
    /// At the start of a field.
    FieldStart,
    /// In a field without quotes.
    Unquoted,
    /// Inside quotes, where a line break does not end the record.
    Quoted,
    /// On a quote inside quotes: the closing one, or the first of an escaped pair.
    QuoteInQuoted,
}

/// Passes bytes through and fails once one record grows past [`MAX_LINE_BYTES`], before the
/// parser above it holds more of it. Records are lines; with `csv`, a line break inside quotes
/// does not end one (so an unclosed quote cannot swallow the rest of the file into memory).
struct LineLimit<R> {
    inner: R,
    csv: bool,
    quoting: Quoting,
    /// Line breaks read so far.
    lines: u64,
    /// The line (from 1) where the current record starts.
    record_row: u64,
    /// Bytes of the current record so far.
    length: usize,
}

impl<R> LineLimit<R> {
    fn new(inner: R, csv: bool) -> Self {
        Self {
            inner,
            csv,
            quoting: Quoting::FieldStart,
            lines: 0,
            record_row: 1,
            length: 0,
        }
    }

    /// Follows one byte; true when it ends the record.
    fn ends_record(&mut self, byte: u8) -> bool {
        if !self.csv {
            return byte == b'\n';
        }
        let (next, ends) = match (self.quoting, byte) {
            (Quoting::Quoted, b'"') => (Quoting::QuoteInQuoted, false),
            (Quoting::Quoted, _) => (Quoting::Quoted, false),
            (Quoting::FieldStart | Quoting::QuoteInQuoted, b'"') => (Quoting::Quoted, false),
            (_, b',') => (Quoting::FieldStart, false),
            (_, b'\n') => (Quoting::FieldStart, true),
            _ => (Quoting::Unquoted, false),
        };
        self.quoting = next;
        ends
    }
}

impl<R: Read> Read for LineLimit<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let count = self.inner.read(buffer)?;
        for &byte in buffer.get(..count).unwrap_or_default() {
            if byte == b'\n' {
                self.lines += 1;
            }
            if self.ends_record(byte) {
                self.record_row = self.lines + 1;
                self.length = 0;
            } else {
                self.length += 1;
                if self.length > MAX_LINE_BYTES {
                    return Err(std::io::Error::other(LongLine {
                        row: self.record_row,
                        multiline: self.lines + 1 > self.record_row,
                    }));
                }
            }
        }
        Ok(count)
    }
}

/// Maps header names (or NDJSON keys) to columns, refusing identifying names or values,
/// duplicates and unknown columns.
fn header_columns<'n>(names: impl Iterator<Item = &'n str>) -> Result<Vec<Column>, ExtractError> {
    let mut columns = Vec::new();
    let mut unknown = Vec::new();
    for (position, name) in names.enumerate() {
        if let Some(kind) = identifying_value(name) {
            return Err(ExtractError::IdentifierValue {
                row: 1,
                column: "header",
                kind,
            });
        }
        match Column::from_header(name) {
            Some(column) if columns.contains(&column) => {
                return Err(ExtractError::DuplicateColumn(name.trim().to_owned()));
            }
            Some(column) => columns.push(column),
            None => {
                if let Some(kind) = identifying_column(name) {
                    return Err(ExtractError::IdentifierColumn {
                        column: name.trim().to_owned(),
                        kind,
                    });
                }
                unknown.push(position + 1);
            }
        }
    }
    if !unknown.is_empty() {
        return Err(ExtractError::UnknownColumns(unknown));
    }
    Ok(columns)
}

/// Refuses a CSV header without the required or any location column.
fn check_required(columns: &[Column]) -> Result<(), ExtractError> {
    let missing: Vec<&'static str> = Column::REQUIRED
        .into_iter()
        .filter(|column| !columns.contains(column))
        .map(Column::name)
        .collect();
    if !missing.is_empty() {
        return Err(ExtractError::MissingColumns(missing));
    }
    if !columns.iter().any(|column| column.is_location()) {
        return Err(ExtractError::NoLocationColumns);
    }
    Ok(())
}

/// Reads one NDJSON line into a raw row. Keys are checked like a CSV header.
fn ndjson_row(
    row: u64,
    text: &str,
) -> Result<Option<Result<RawRow, Vec<Rejection>>>, ExtractError> {
    let reject = |reason: String| {
        Ok(Some(Err(vec![Rejection {
            row,
            field: "row",
            reason,
        }])))
    };
    let object = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(object)) => object,
        Ok(_) => return reject("the line is not a JSON object".to_owned()),
        Err(err) => return reject(format!("the line is not valid JSON ({err})")),
    };
    let columns = header_columns(object.keys().map(String::as_str))?;
    for (column, value) in columns.iter().zip(object.values()) {
        let text = match value {
            serde_json::Value::String(text) => std::borrow::Cow::Borrowed(text.as_str()),
            other => std::borrow::Cow::Owned(other.to_string()),
        };
        if text.len() > MAX_FIELD_BYTES {
            return Err(ExtractError::FieldTooLong {
                row,
                column: column.name(),
                limit: MAX_FIELD_BYTES,
            });
        }
        let kind = identifying_value(&text);
        if let Some(kind) = kind {
            return Err(ExtractError::IdentifierValue {
                row,
                column: column.name(),
                kind,
            });
        }
    }
    let mut raw = RawRow {
        row,
        ..RawRow::default()
    };
    let mut rejections = Vec::new();
    for (column, value) in columns.into_iter().zip(object.values()) {
        let text = match value {
            serde_json::Value::Null => continue,
            serde_json::Value::String(text) => text.clone(),
            serde_json::Value::Number(number) => number.to_string(),
            serde_json::Value::Array(items) if column == Column::Indicators => {
                match items
                    .iter()
                    .map(|item| item.as_str().ok_or(()))
                    .collect::<Result<Vec<_>, _>>()
                {
                    Ok(codes) => codes.join(";"),
                    Err(()) => {
                        rejections.push(Rejection {
                            row,
                            field: column.name(),
                            reason: "indicators must be strings".to_owned(),
                        });
                        continue;
                    }
                }
            }
            _ => {
                rejections.push(Rejection {
                    row,
                    field: column.name(),
                    reason: "expected a string or a number".to_owned(),
                });
                continue;
            }
        };
        raw.set(column, &text);
    }
    if rejections.is_empty() {
        Ok(Some(Ok(raw)))
    } else {
        Ok(Some(Err(rejections)))
    }
}

/// Checks every field of a row; a row with any problem is rejected with all of them.
fn validate(raw: &RawRow, rules: &Rules<'_>) -> RowOutcome {
    let mut rejections = Vec::new();
    let mut reject = |field: Column, reason: String| {
        rejections.push(Rejection {
            row: raw.row,
            field: field.name(),
            reason,
        })
    };

    let subject = match raw.get(Column::Subject) {
        None => {
            reject(Column::Subject, "missing".to_owned());
            None
        }
        Some(text) => parse_pseudonym(text)
            .map_err(|reason| reject(Column::Subject, reason))
            .ok(),
    };
    let record_kind = required(raw, Column::RecordKind, &mut reject, |text| {
        text.parse::<RecordKind>()
            .map_err(|_| unknown("record kind", &RecordKind::names()))
    });
    let occurred_on = required(raw, Column::OccurredOn, &mut reject, |text| {
        let day = parse_date(text, rules.today)?;
        match rules
            .kept_from
            .iter()
            .find(|(kind, _)| Some(*kind) == record_kind)
        {
            Some((kind, first_kept)) if day < *first_kept => Err(format!(
                "{kind} records are kept from {first_kept} {PAST_RETENTION}"
            )),
            _ => Ok(day),
        }
    });
    let location = locate(raw, rules)
        .map_err(|(field, reason)| reject(field, reason))
        .ok();
    let location_role = optional(raw, Column::LocationRole, &mut reject, |text| {
        text.parse::<LocationRole>()
            .map_err(|_| unknown("location role", &LocationRole::names()))
    })
    .map(|role| role.unwrap_or(LocationRole::Incident));
    let indicators = optional(raw, Column::Indicators, &mut reject, parse_indicators)
        .map(Option::unwrap_or_default);
    let age_band = age_band(raw)
        .map_err(|(field, reason)| reject(field, reason))
        .ok();
    let sex = optional(raw, Column::Sex, &mut reject, |text| {
        text.parse::<Sex>()
            .map_err(|_| unknown("sex", &Sex::names()))
    });

    match (
        subject,
        record_kind,
        occurred_on,
        location,
        location_role,
        indicators,
        age_band,
        sex,
    ) {
        (
            Some(subject),
            Some(record_kind),
            Some(occurred_on),
            Some(location),
            Some(location_role),
            Some(indicators),
            Some(age_band),
            Some(sex),
        ) if rejections.is_empty() => RowOutcome::Accepted(CanonicalRecord {
            row: raw.row,
            subject,
            record_kind,
            occurred_on,
            location,
            location_role,
            indicators,
            age_band,
            sex,
        }),
        _ => RowOutcome::Rejected(rejections),
    }
}

fn required<T>(
    raw: &RawRow,
    column: Column,
    reject: &mut impl FnMut(Column, String),
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Option<T> {
    match raw.get(column) {
        None => {
            reject(column, "missing".to_owned());
            None
        }
        Some(text) => parse(text).map_err(|reason| reject(column, reason)).ok(),
    }
}

/// `Some(None)` when absent, `Some(Some(value))` when valid, `None` when invalid.
fn optional<T>(
    raw: &RawRow,
    column: Column,
    reject: &mut impl FnMut(Column, String),
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Option<Option<T>> {
    match raw.get(column) {
        None => Some(None),
        Some(text) => parse(text)
            .map(Some)
            .map_err(|reason| reject(column, reason))
            .ok(),
    }
}

/// A reason for an unknown code that names the choices but never repeats the value, which might
/// be anything (a misplaced name, a pseudonym, a coordinate).
fn unknown(noun: &str, names: &[&str]) -> String {
    format!("not a known {noun}: expected one of {}", names.join(", "))
}

/// Reads an agency-side pseudonym: 64 hexadecimal characters.
///
/// # Errors
/// What is wrong with `text`, in words that never repeat it.
pub fn parse_pseudonym(text: &str) -> Result<[u8; 32], String> {
    let mut bytes = [0_u8; 32];
    if text.len() != 64 {
        return Err(format!(
            "a pseudonym is 64 hexadecimal characters, this has {}",
            text.chars().count()
        ));
    }
    hex::decode_to_slice(text, &mut bytes)
        .map_err(|_| "a pseudonym is 64 hexadecimal characters (0-9, a-f)".to_owned())?;
    Ok(bytes)
}

fn parse_date(text: &str, today: NaiveDate) -> Result<NaiveDate, String> {
    let well_formed = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !well_formed {
        return Err("expected a date as YYYY-MM-DD".to_owned());
    }
    let date =
        NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| "not a real date".to_owned())?;
    let earliest =
        NaiveDate::from_ymd_opt(EARLIEST.0, EARLIEST.1, EARLIEST.2).unwrap_or(NaiveDate::MIN);
    if date > today {
        Err("the date is in the future".to_owned())
    } else if date < earliest {
        Err(format!("dates before {earliest} are not accepted"))
    } else {
        Ok(date)
    }
}

fn parse_indicators(text: &str) -> Result<Vec<Indicator>, String> {
    let mut indicators = text
        .split(';')
        .map(str::trim)
        .filter(|code| !code.is_empty())
        .map(|code| {
            code.parse::<Indicator>()
                .map_err(|_| unknown("indicator", &Indicator::names()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    indicators.sort();
    indicators.dedup();
    Ok(indicators)
}

fn age_band(raw: &RawRow) -> Result<Option<AgeBand>, (Column, String)> {
    let from_age = raw
        .get(Column::Age)
        .map(|text| {
            text.parse::<u8>().ok().and_then(AgeBand::of_age).ok_or((
                Column::Age,
                format!(
                    "expected a whole number of years from 0 to {}",
                    AgeBand::MAX_AGE
                ),
            ))
        })
        .transpose()?;
    let given = raw
        .get(Column::AgeBand)
        .map(|text| {
            text.parse::<AgeBand>()
                .map_err(|_| (Column::AgeBand, unknown("age band", &AgeBand::names())))
        })
        .transpose()?;
    match (from_age, given) {
        (Some(age), Some(band)) if age != band => Err((
            Column::AgeBand,
            format!("does not match the age, which is in band {age}"),
        )),
        (age, band) => Ok(age.or(band)),
    }
}

/// Reads exactly one of the four location kinds as a position in Great Britain (a given H3 cell
/// stands for its centre) or a postcode of the directory.
fn locate(raw: &RawRow, rules: &Rules<'_>) -> Result<Location, (Column, String)> {
    let given = |column| raw.get(column).is_some();
    let kinds = [
        given(Column::Lat) || given(Column::Lon),
        given(Column::Easting) || given(Column::Northing),
        given(Column::Postcode),
        given(Column::H3),
    ];
    match kinds.iter().filter(|present| **present).count() {
        0 => return Err((Column::Lat, "no location: give lat and lon, easting and northing, postcode or h3".to_owned())),
        1 => {}
        _ => return Err((Column::Lat, "two kinds of location in one row: give exactly one of lat/lon, easting/northing, postcode or h3".to_owned())),
    }
    let number = |column: Column| -> Result<f64, (Column, String)> {
        let text = raw.get(column).ok_or((
            column,
            "missing (the row gives the other coordinate)".to_owned(),
        ))?;
        text.parse::<f64>()
            .ok()
            .filter(|value| value.is_finite())
            .ok_or((column, "expected a number".to_owned()))
    };
    let location = if kinds[0] {
        let (lat, lon) = (number(Column::Lat)?, number(Column::Lon)?);
        in_great_britain(lat, lon).map_err(|reason| (Column::Lat, reason))?;
        Location::Point(
            LatLng::new(lat, lon)
                .map_err(|_| (Column::Lat, "not a latitude and longitude".to_owned()))?,
        )
    } else if kinds[1] {
        let (easting, northing) = (number(Column::Easting)?, number(Column::Northing)?);
        if !(0.0..=700_000.0).contains(&easting) || !(0.0..=1_300_000.0).contains(&northing) {
            return Err((
                Column::Easting,
                "outside the British National Grid".to_owned(),
            ));
        }
        let (lat, lon) = bng::to_wgs84(easting, northing);
        in_great_britain(lat, lon).map_err(|reason| (Column::Easting, reason))?;
        Location::Point(
            LatLng::new(lat, lon)
                .map_err(|_| (Column::Easting, "not a grid reference".to_owned()))?,
        )
    } else if let Some(postcode) = raw.get(Column::Postcode) {
        let place = rules
            .postcodes
            .locate(&normalise_postcode(postcode))
            .ok_or((
                Column::Postcode,
                "not in the imported postcode directory within the partnerships your agency serves"
                    .to_owned(),
            ))?;
        Location::Postcode(place)
    } else {
        let text = raw.get(Column::H3).unwrap_or_default();
        let cell = text
            .parse::<CellIndex>()
            .map_err(|_| (Column::H3, "not an H3 cell index".to_owned()))?;
        let resolution = u8::from(cell.resolution());
        if resolution < 9 {
            return Err((
                Column::H3,
                format!(
                    "resolution {resolution} is coarser than 9: give a cell at resolution 9 or finer"
                ),
            ));
        }
        let centre = LatLng::from(cell);
        in_great_britain(centre.lat(), centre.lng()).map_err(|reason| (Column::H3, reason))?;
        Location::Point(centre)
    };
    Ok(location)
}

fn in_great_britain(lat: f64, lon: f64) -> Result<(), String> {
    if GB_LATITUDE.contains(&lat) && GB_LONGITUDE.contains(&lon) {
        Ok(())
    } else {
        Err("the location is outside Great Britain".to_owned())
    }
}

/// Counts and data-quality figures of an extract, accumulated row by row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Rows read.
    pub rows_total: u64,
    /// Rows accepted.
    pub rows_accepted: u64,
    /// Rows rejected.
    pub rows_rejected: u64,
    /// Rows rejected only for being older than their kind's retention period keeps: valid
    /// rows the service may not keep, left out of the rejected share.
    pub rows_past_retention: u64,
    /// Rows whose location resolved to a cell (accepted, or rejected for another reason).
    pub rows_located: u64,
    /// Accepted rows with at least one indicator.
    pub rows_with_indicators: u64,
    /// Earliest date among accepted rows.
    pub first_date: Option<NaiveDate>,
    /// Latest date among accepted rows.
    pub last_date: Option<NaiveDate>,
}

impl Tally {
    /// Counts one row's final outcome.
    pub fn count(&mut self, outcome: &RowOutcome) {
        self.rows_total += 1;
        match outcome {
            RowOutcome::Accepted(record) => {
                self.rows_accepted += 1;
                self.rows_located += 1;
                self.rows_with_indicators += u64::from(!record.indicators.is_empty());
                self.first_date = Some(
                    self.first_date
                        .map_or(record.occurred_on, |d| d.min(record.occurred_on)),
                );
                self.last_date = Some(
                    self.last_date
                        .map_or(record.occurred_on, |d| d.max(record.occurred_on)),
                );
            }
            RowOutcome::Rejected(rejections) => {
                self.rows_rejected += 1;
                self.rows_past_retention +=
                    u64::from(rejections.iter().all(Rejection::is_past_retention));
                self.rows_located +=
                    u64::from(!rejections.iter().any(Rejection::is_about_location));
            }
        }
    }

    /// Share of rows rejected among those the service may keep (0 for none): a row past its
    /// retention period is refused, but says nothing about the extract's quality.
    #[must_use]
    pub fn rejected_share(&self) -> f64 {
        ratio(
            self.rows_rejected - self.rows_past_retention,
            self.rows_total - self.rows_past_retention,
        )
    }

    /// Share of rows whose location resolved to a cell.
    #[must_use]
    pub fn geocoded_share(&self) -> f64 {
        ratio(self.rows_located, self.rows_total)
    }

    /// Share of accepted rows with at least one indicator.
    #[must_use]
    pub fn indicator_completeness(&self) -> f64 {
        ratio(self.rows_with_indicators, self.rows_accepted)
    }
}

#[expect(clippy::cast_precision_loss, reason = "row counts are far below 2^52")]
fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

#[cfg(test)]
mod tests;
