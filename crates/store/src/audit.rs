//! The audit trail: append-only (a trigger refuses UPDATE, DELETE and TRUNCATE) and
//! hash-chained, one chain per partnership (an entry's `partnership`) plus one for
//! administration (entries about no partnership), so appends to different partnerships never
//! wait for each other. Each entry stores `hash = HMAC-SHA256(key, previous_hash ‖ content)`,
//! keyed with a secret held outside the database ([`ChainKey`]), where `content` is the
//! canonical JSON of the entry (`chain_content`); a chain's first entry's previous hash is 32
//! zero bytes. Someone who can write to the database but does not hold the key cannot alter an
//! entry and recompute the hashes after it. Entries written before chains were split form the
//! chain `global`, hashed with plain SHA-256 as they were; fields added later (the caller's
//! partnership, the partnerships whose records an answer used, the chain) are in the content
//! only when set, so entries written before them still verify.
//!
//! Appends take a transaction-scoped advisory lock per chain, in the chains' name order, so
//! entries chain in commit order whichever connection writes them, and the locks are held
//! only from the append to the commit. Entries are appended inside the caller's transaction:
//! a change and its entry commit together.
//!
//! A signed [`Checkpoint`] of every chain's head, kept outside the database, lets
//! [`verify`] start where the last one ended and reveals a truncated chain.

use std::collections::BTreeMap;

use chrono::{DateTime, SubsecRound as _, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Jsonb};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use hmac::{Hmac, Mac as _};
use serde::Deserialize;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::StoreError;
use crate::schema::audit_log;

/// The advisory-lock class of the chains ("ATAU"): appends to a chain take the lock
/// `(CHAIN_LOCK_CLASS, hashtext(chain))`.
const CHAIN_LOCK_CLASS: i32 = 0x4154_4155;

/// The previous hash of a chain's first entry.
const GENESIS: [u8; 32] = [0; 32];

/// The chain of the entries written before chains were split (plain SHA-256).
pub const LEGACY_CHAIN: &str = "global";

/// The chain of entries about no partnership (instance-wide data, operators' changes).
pub const ADMINISTRATION_CHAIN: &str = "administration";

/// Takes the locks of the chains `$2` until the transaction ends, in the order of their lock
/// keys (each key once): every appender takes them in the same order, so two never wait for
/// each other in a circle, whichever chains they share.
const LOCK: &str = "SELECT count(pg_advisory_xact_lock($1, key)) FROM \
    (SELECT DISTINCT hashtext(chain) AS key FROM unnest($2::text[]) AS c(chain) \
     ORDER BY key) AS ordered";
/// The last hash of each chain of `$1`, and the key that made it (none for a new chain).
const HEADS: &str = "SELECT c.chain, h.hash, h.key_id FROM unnest($1::text[]) AS c(chain) \
    LEFT JOIN LATERAL (SELECT hash, key_id FROM audit_log WHERE chain = c.chain \
                       ORDER BY id DESC LIMIT 1) h ON true";

/// The development chain key, published in this repository: fine for the demo and tests,
/// refused by the settings outside them (`audit.chain_key`).
pub const DEVELOPMENT_CHAIN_KEY: &str =
    "6465762d6f6e6c792d61756469742d6b65792d6e6f742d666f722d7265616c21";

/// The secret an entry's hash is keyed with (HMAC-SHA256), held outside the database like the
/// pseudonym key, and identified in each entry by a fingerprint that does not reveal it.
#[derive(Clone)]
pub struct ChainKey {
    key: [u8; 32],
    id: String,
}

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl ChainKey {
    /// Parses a key written as 64 hexadecimal characters (surrounding whitespace ignored).
    ///
    /// # Errors
    /// A sentence saying what a key is.
    pub fn from_hex(text: &str) -> Result<Self, String> {
        let mut key = [0_u8; 32];
        let text = text.trim();
        if text.len() != 64 || !text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Err("an audit chain key is 64 hexadecimal characters (256 bits)".to_owned());
        }
        for (index, byte) in key.iter_mut().enumerate() {
            let pair = text.get(index * 2..index * 2 + 2).unwrap_or("00");
            *byte = u8::from_str_radix(pair, 16).unwrap_or(0);
        }
        let mut chain_key = Self {
            key,
            id: String::new(),
        };
        chain_key.id = hex(&chain_key.mac(&[b"safeguard-atlas: audit chain key id"])[..8]);
        Ok(chain_key)
    }

    /// The key's fingerprint (16 hexadecimal characters), stored with every entry it keyed.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// HMAC-SHA256 of the parts, in order.
    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as hmac::Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!());
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

/// The key this process chains with: the one [`use_chain_key`] set, else the development key.
static CHAIN_KEY: std::sync::OnceLock<ChainKey> = std::sync::OnceLock::new();

/// Keys every entry this process appends, and verifies, with `key` (once, at start).
///
/// # Errors
/// When the process already uses another key.
pub fn use_chain_key(key: ChainKey) -> Result<(), String> {
    let id = key.id.clone();
    let used = CHAIN_KEY.get_or_init(|| key);
    if used.id == id {
        Ok(())
    } else {
        Err(format!(
            "this process already keys the audit trail with key {}, not {id}",
            used.id
        ))
    }
}

/// The key this process chains with.
fn chain_key() -> &'static ChainKey {
    CHAIN_KEY.get_or_init(|| {
        ChainKey::from_hex(DEVELOPMENT_CHAIN_KEY).unwrap_or_else(|_| unreachable!())
    })
}

/// The chain an entry about `partnership` belongs to.
fn chain_of(partnership: Option<&str>) -> &str {
    partnership.unwrap_or(ADMINISTRATION_CHAIN)
}

/// Inserts chained entries given as one JSON array, in the array's order so ids follow the
/// chain.
const INSERT: &str = "INSERT INTO audit_log (occurred_at, request_id, subject, roles, \
    partnership_code, agency_id, action, resource, parameters, outcome, rows_returned, \
    previous_hash, hash, records_of, caller_partnership, chain, key_id) \
    SELECT occurred_at, request_id, subject, roles, partnership_code, agency_id, action, \
    resource, parameters, outcome, rows_returned, decode(previous_hash, 'hex'), \
    decode(hash, 'hex'), records_of, caller_partnership, chain, key_id \
    FROM ROWS FROM (jsonb_to_recordset($1) AS (occurred_at timestamptz, request_id text, \
    subject text, roles text[], partnership_code text, agency_id uuid, action text, \
    resource text, parameters jsonb, outcome text, rows_returned bigint, previous_hash text, \
    hash text, records_of text[], caller_partnership text, chain text, key_id text)) \
    WITH ORDINALITY AS \
    entry(occurred_at, request_id, subject, roles, partnership_code, agency_id, action, \
    resource, parameters, outcome, rows_returned, previous_hash, hash, records_of, \
    caller_partnership, chain, key_id, position) \
    ORDER BY position";

/// The most characters kept of a parameter's value (and of the subject, action and request id).
pub const MAX_VALUE_CHARS: usize = 200;
/// The most characters kept of a parameter's name.
pub const MAX_NAME_CHARS: usize = 64;
/// The most parameters kept (besides [`OMITTED_PARAMETERS`], which counts the rest).
pub const MAX_PARAMETERS: usize = 32;
/// The most characters kept of the resource (the request's path).
pub const MAX_RESOURCE_CHARS: usize = 512;
/// The parameter that counts those beyond [`MAX_PARAMETERS`].
pub const OMITTED_PARAMETERS: &str = "(omitted)";

/// `text` as it can be stored: each control character (NUL, escape, DEL, C1 controls…) written
/// as a `\u{…}` escape, then cut to at most `max_chars` characters on a character boundary,
/// the last one an ellipsis when something was cut. Storable text passes unchanged.
#[must_use]
pub fn storable(text: &str, max_chars: usize) -> String {
    let mut escaped = String::with_capacity(text.len().min(max_chars.saturating_mul(4)));
    let mut chars = 0_usize;
    let mut cut = false;
    for character in text.chars() {
        let piece = if character.is_control() {
            character.escape_unicode().to_string()
        } else {
            character.to_string()
        };
        for piece_char in piece.chars() {
            if chars == max_chars {
                cut = true;
                break;
            }
            escaped.push(piece_char);
            chars += 1;
        }
        if cut {
            break;
        }
    }
    if cut && max_chars > 0 {
        escaped.pop();
        escaped.push('…');
    }
    escaped
}

/// `pairs` (names and values, in the order given) as they can be stored: each [`storable`],
/// the values of a name given more than once (or of names that become equal) joined with
/// commas, the first [`MAX_PARAMETERS`] names kept and the rest counted under
/// [`OMITTED_PARAMETERS`]. Storable parameters pass unchanged.
#[must_use]
pub fn storable_parameters<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> BTreeMap<String, String> {
    let mut kept: BTreeMap<String, String> = BTreeMap::new();
    let mut count = None;
    let mut omitted = 0_usize;
    for (name, value) in pairs {
        let name = storable(name, MAX_NAME_CHARS);
        let value = storable(value, MAX_VALUE_CHARS);
        if name == OMITTED_PARAMETERS {
            count = Some(value);
        } else if let Some(existing) = kept.get_mut(&name) {
            *existing = storable(&format!("{existing},{value}"), MAX_VALUE_CHARS);
        } else if kept.len() < MAX_PARAMETERS {
            kept.insert(name, value);
        } else {
            omitted += 1;
        }
    }
    if omitted > 0 {
        count = Some(format!("{omitted} more parameters not kept"));
    }
    if let Some(count) = count {
        kept.insert(OMITTED_PARAMETERS.to_owned(), count);
    }
    kept
}

/// How a request ended, as far as the audit trail is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The policy allowed it and it succeeded.
    Allowed,
    /// The policy refused it.
    Denied,
    /// The policy allowed it but it failed (bad input, refused extract, fault).
    Failed,
}

impl Outcome {
    /// The name stored in the trail.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Denied => "denied",
            Self::Failed => "failed",
        }
    }
}

/// One entry to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    /// The request's id (the `x-request-id` response header), or `None` outside HTTP.
    pub request_id: Option<String>,
    /// Who: the token's `sub`, or `cli:<user>` for the command line.
    pub subject: String,
    /// The caller's roles.
    pub roles: Vec<String>,
    /// The partnership whose data was touched; `None` for instance-wide data.
    pub partnership: Option<String>,
    /// The caller's agency.
    pub agency: Option<Uuid>,
    /// What was done, such as `grid.read`.
    pub action: String,
    /// On what, such as `/api/v1/batches/…`.
    pub resource: String,
    /// The request's parameters (query and relevant body fields).
    pub parameters: BTreeMap<String, String>,
    /// How it ended.
    pub outcome: Outcome,
    /// Rows or cells returned, for reads.
    pub rows_returned: Option<i64>,
    /// The partnerships whose case records the answer used, sorted; empty when it used none.
    pub records_of: Vec<String>,
    /// The caller's own partnership (the token's); `None` outside HTTP.
    pub caller_partnership: Option<String>,
}

impl NewEntry {
    /// An allowed change made outside HTTP, by an operator at the command line.
    #[must_use]
    pub fn operator(subject: String, action: &str, resource: String) -> Self {
        Self {
            request_id: None,
            subject,
            roles: vec!["operator".to_owned()],
            partnership: None,
            agency: None,
            action: action.to_owned(),
            resource,
            parameters: BTreeMap::new(),
            outcome: Outcome::Allowed,
            rows_returned: None,
            records_of: Vec::new(),
            caller_partnership: None,
        }
    }
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Position in the chain.
    pub id: i64,
    /// When it was appended.
    pub occurred_at: DateTime<Utc>,
    /// See [`NewEntry`].
    pub request_id: Option<String>,
    /// See [`NewEntry`].
    pub subject: String,
    /// See [`NewEntry`].
    pub roles: Vec<String>,
    /// See [`NewEntry`].
    pub partnership: Option<String>,
    /// See [`NewEntry`].
    pub agency: Option<Uuid>,
    /// See [`NewEntry`].
    pub action: String,
    /// See [`NewEntry`].
    pub resource: String,
    /// See [`NewEntry`].
    pub parameters: BTreeMap<String, String>,
    /// `allowed`, `denied` or `failed`.
    pub outcome: String,
    /// See [`NewEntry`].
    pub rows_returned: Option<i64>,
    /// See [`NewEntry`].
    pub records_of: Vec<String>,
    /// See [`NewEntry`].
    pub caller_partnership: Option<String>,
    /// The chain it belongs to: its partnership's code, `administration`, or `global` for
    /// entries written before chains were split.
    pub chain: String,
    /// The fingerprint of the key its hash is keyed with; `None` in the `global` chain.
    pub key_id: Option<String>,
    /// The previous entry's hash, hex.
    pub previous_hash: String,
    /// This entry's hash, hex.
    pub hash: String,
}

/// The fields an entry's hash covers, in a fixed order. The last two were added with need to
/// know and are left out when unset, so an entry written before them hashes as it did.
#[derive(Serialize)]
struct Content<'a> {
    occurred_at: String,
    request_id: Option<&'a str>,
    subject: &'a str,
    roles: &'a [String],
    partnership: Option<&'a str>,
    agency: Option<Uuid>,
    action: &'a str,
    resource: &'a str,
    parameters: &'a BTreeMap<String, String>,
    outcome: &'a str,
    rows_returned: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    caller_partnership: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    records_of: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    chain: Option<&'a str>,
}

/// The canonical bytes of an entry: compact JSON of its fields in a fixed order, the time in
/// RFC 3339 with microseconds and `Z`.
fn chain_content(entry: &Entry) -> Vec<u8> {
    let content = Content {
        occurred_at: entry
            .occurred_at
            .format("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string(),
        request_id: entry.request_id.as_deref(),
        subject: &entry.subject,
        roles: &entry.roles,
        partnership: entry.partnership.as_deref(),
        agency: entry.agency,
        action: &entry.action,
        resource: &entry.resource,
        parameters: &entry.parameters,
        outcome: &entry.outcome,
        rows_returned: entry.rows_returned,
        caller_partnership: entry.caller_partnership.as_deref(),
        records_of: &entry.records_of,
        chain: (entry.chain != LEGACY_CHAIN).then_some(entry.chain.as_str()),
    };
    serde_json::to_vec(&content).unwrap_or_default()
}

/// The hash an entry must have after `previous`: `HMAC-SHA256(key, previous ‖ content)` with
/// `key`, or `SHA-256(previous ‖ content)` for the `global` chain's unkeyed entries.
fn chain_hash(previous: &[u8], entry: &Entry, key: Option<&ChainKey>) -> [u8; 32] {
    let content = chain_content(entry);
    match key {
        Some(key) => key.mac(&[previous, &content]),
        None => {
            let mut hasher = Sha256::new();
            hasher.update(previous);
            hasher.update(content);
            hasher.finalize().into()
        }
    }
}

/// Chains `entries` (all of `chain`) after `previous` with `key` and renders them as the JSON
/// rows [`INSERT`] reads.
fn chained(
    previous: [u8; 32],
    chain: &str,
    entries: &[&NewEntry],
    key: &ChainKey,
) -> Vec<serde_json::Value> {
    let now = Utc::now().trunc_subsecs(6);
    let mut previous = previous;
    entries
        .iter()
        .map(|new| {
            let mut entry = Entry {
                id: 0,
                occurred_at: now,
                request_id: new
                    .request_id
                    .as_deref()
                    .map(|id| storable(id, MAX_VALUE_CHARS)),
                subject: storable(&new.subject, MAX_VALUE_CHARS),
                roles: new
                    .roles
                    .iter()
                    .map(|role| storable(role, MAX_NAME_CHARS))
                    .collect(),
                partnership: new.partnership.clone(),
                agency: new.agency,
                action: storable(&new.action, MAX_VALUE_CHARS),
                resource: storable(&new.resource, MAX_RESOURCE_CHARS),
                parameters: storable_parameters(
                    new.parameters
                        .iter()
                        .map(|(name, value)| (name.as_str(), value.as_str())),
                ),
                outcome: new.outcome.as_str().to_owned(),
                rows_returned: new.rows_returned,
                records_of: new.records_of.clone(),
                caller_partnership: new.caller_partnership.clone(),
                chain: chain.to_owned(),
                key_id: Some(key.id().to_owned()),
                previous_hash: hex(&previous),
                hash: String::new(),
            };
            let hash = chain_hash(&previous, &entry, Some(key));
            entry.hash = hex(&hash);
            previous = hash;
            serde_json::json!({
                "occurred_at": entry.occurred_at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
                "request_id": entry.request_id,
                "subject": entry.subject,
                "roles": entry.roles,
                "partnership_code": entry.partnership,
                "agency_id": entry.agency,
                "action": entry.action,
                "resource": entry.resource,
                "parameters": entry.parameters,
                "outcome": entry.outcome,
                "rows_returned": entry.rows_returned,
                "previous_hash": entry.previous_hash,
                "hash": entry.hash,
                "records_of": entry.records_of,
                "caller_partnership": entry.caller_partnership,
                "chain": entry.chain,
                "key_id": entry.key_id,
            })
        })
        .collect()
}

/// `entries` by chain, each chain's in their order; chains in name order (the order their
/// locks are taken in).
fn by_chain(entries: &[NewEntry]) -> BTreeMap<&str, Vec<&NewEntry>> {
    let mut chains: BTreeMap<&str, Vec<&NewEntry>> = BTreeMap::new();
    for entry in entries {
        chains
            .entry(chain_of(entry.partnership.as_deref()))
            .or_default()
            .push(entry);
    }
    chains
}

/// The rows to insert for `chains`, given each chain's last hash and the key that made it
/// (`None` for a new chain). A chain another key made is refused: this process's
/// `audit.chain_key` is not the instance's, and entries keyed with it would break the chain.
fn rows(
    chains: &BTreeMap<&str, Vec<&NewEntry>>,
    heads: &BTreeMap<String, Head>,
) -> Result<serde_json::Value, StoreError> {
    let key = chain_key();
    let mut rows = Vec::new();
    for (chain, entries) in chains {
        let head = heads.get(*chain);
        if let Some(other) = head.and_then(|head| head.key_id.as_deref())
            && other != key.id()
        {
            return Err(StoreError::Invalid(format!(
                "this process's audit.chain_key (key {}) is not the key the audit chain {chain} \
                 is keyed with (key {other}): configure the instance's chain key",
                key.id()
            )));
        }
        let previous = head_hash(head.and_then(|head| head.hash.clone()))?;
        rows.extend(chained(previous, chain, entries, key));
    }
    Ok(serde_json::Value::Array(rows))
}

/// A chain's last entry as appends read it.
#[derive(Debug, Clone, QueryableByName)]
struct Head {
    #[diesel(sql_type = diesel::sql_types::Text)]
    chain: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Bytea>)]
    hash: Option<Vec<u8>>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    key_id: Option<String>,
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}

fn head_hash(row: Option<Vec<u8>>) -> Result<[u8; 32], StoreError> {
    row.map_or(Ok(GENESIS), |hash| {
        hash.try_into().map_err(|_| {
            StoreError::Invalid("the last audit entry's hash is not 32 bytes".to_owned())
        })
    })
}

/// Heads by chain.
fn heads_of(rows: impl IntoIterator<Item = Head>) -> BTreeMap<String, Head> {
    rows.into_iter()
        .map(|head| (head.chain.clone(), head))
        .collect()
}

/// Takes the locks of the chains of entries about `partnerships` (`None`: administration)
/// until the transaction ends: for a transaction that appends more than once, so that it takes
/// every lock it will need at once, in the order every appender takes them.
///
/// # Errors
/// [`StoreError::Query`] when PostgreSQL fails.
pub async fn lock_chains(
    conn: &mut AsyncPgConnection,
    partnerships: &[Option<&str>],
) -> Result<(), StoreError> {
    let names: Vec<&str> = partnerships.iter().map(|code| chain_of(*code)).collect();
    diesel::sql_query("SET LOCAL lock_timeout = 0")
        .execute(conn)
        .await?;
    diesel::sql_query(LOCK)
        .bind::<diesel::sql_types::Integer, _>(CHAIN_LOCK_CLASS)
        .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(&names)
        .execute(conn)
        .await?;
    Ok(())
}

/// Appends `entries` to their chains on a diesel connection. Call it inside the transaction of
/// the change being recorded (or a transaction of its own); the chains' locks are held until
/// that transaction ends.
///
/// # Errors
/// [`StoreError::Query`] when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn append(conn: &mut AsyncPgConnection, entries: &[NewEntry]) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    // Appends queue for the chain by design: no lock timeout while waiting for it.
    diesel::sql_query("SET LOCAL lock_timeout = 0")
        .execute(conn)
        .await?;
    let chains = by_chain(entries);
    let names: Vec<&str> = chains.keys().copied().collect();
    diesel::sql_query(LOCK)
        .bind::<diesel::sql_types::Integer, _>(CHAIN_LOCK_CLASS)
        .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(&names)
        .execute(conn)
        .await?;
    let heads: Vec<Head> = diesel::sql_query(HEADS)
        .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(&names)
        .load(conn)
        .await?;
    let rows = rows(&chains, &heads_of(heads))?;
    diesel::sql_query(INSERT)
        .bind::<Jsonb, _>(rows)
        .execute(conn)
        .await?;
    Ok(())
}

/// Appends `entries` in a transaction of their own and commits it.
///
/// # Errors
/// [`StoreError::Query`] when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn append_committed(
    conn: &mut AsyncPgConnection,
    entries: &[NewEntry],
) -> Result<(), StoreError> {
    conn.transaction::<_, StoreError, _>(async |conn| append(conn, entries).await)
        .await
}

/// [`append`] on a tokio-postgres client inside an open transaction (the upload path's COPY
/// transaction).
///
/// # Errors
/// [`StoreError::Statement`] when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn append_in(
    transaction: &impl tokio_postgres::GenericClient,
    entries: &[NewEntry],
) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let chains = by_chain(entries);
    let names: Vec<&str> = chains.keys().copied().collect();
    transaction
        .query(LOCK, &[&CHAIN_LOCK_CLASS, &names])
        .await?;
    let heads = transaction.query(HEADS, &[&names]).await?;
    let rows = rows(
        &chains,
        &heads_of(heads.into_iter().map(|row| Head {
            chain: row.get(0),
            hash: row.get(1),
            key_id: row.get(2),
        })),
    )?;
    transaction.execute(INSERT, &[&rows]).await?;
    Ok(())
}

/// The outcome of checking the chains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Entries checked (since the checkpoint, when verification started from one).
    pub entries: u64,
    /// The first entry that does not verify, if any.
    pub first_broken: Option<BrokenEntry>,
    /// Every chain's head after the check: what the next checkpoint records (empty when a
    /// chain is broken).
    pub heads: Vec<ChainHead>,
}

/// An entry whose stored hashes do not match its content or its predecessor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokenEntry {
    /// The entry's id.
    pub id: i64,
    /// Its chain.
    pub chain: String,
    /// What does not match.
    pub reason: String,
}

/// The last entry of one chain, and how many the chain holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    /// The chain.
    pub chain: String,
    /// Its last entry's id.
    pub last_id: i64,
    /// Its last entry's hash, hex.
    pub last_hash: String,
    /// Its entries.
    pub entries: u64,
}

/// What a checkpoint's signature covers first, so that it can never pass for an entry's hash.
const CHECKPOINT_LABEL: &[u8] = b"safeguard-atlas: audit checkpoint v1\n";

/// Bytes written as hexadecimal, if they are.
fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok())
        .collect()
}

/// Every chain's head at one time, signed with the chain key: written outside the database
/// (`audit.checkpoint_dir`), so that an entry removed from a chain's end, a chain rewritten
/// from its start, or a chain deleted whole, is found by the next [`verify`] from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// When it was taken.
    pub taken_at: DateTime<Utc>,
    /// Every chain's head.
    pub heads: Vec<ChainHead>,
    /// The fingerprint of the key that signed it.
    pub key_id: String,
    /// HMAC-SHA256 of the other fields' canonical JSON, hex.
    pub signature: String,
}

impl Checkpoint {
    /// `heads` at `taken_at`, signed with this process's chain key.
    #[must_use]
    pub fn sign(taken_at: DateTime<Utc>, heads: Vec<ChainHead>) -> Self {
        let key = chain_key();
        let mut checkpoint = Self {
            taken_at: taken_at.trunc_subsecs(6),
            heads,
            key_id: key.id().to_owned(),
            signature: String::new(),
        };
        checkpoint.signature = hex(&key.mac(&[CHECKPOINT_LABEL, &checkpoint.signed_bytes()]));
        checkpoint
    }

    /// Whether its signature is this process's key's over its content (compared in constant
    /// time).
    #[must_use]
    pub fn is_authentic(&self) -> bool {
        let key = chain_key();
        let Some(signature) = unhex(&self.signature) else {
            return false;
        };
        let mut mac = <Hmac<Sha256> as hmac::Mac>::new_from_slice(&key.key)
            .unwrap_or_else(|_| unreachable!());
        mac.update(CHECKPOINT_LABEL);
        mac.update(&self.signed_bytes());
        self.key_id == key.id() && mac.verify_slice(&signature).is_ok()
    }

    /// The bytes its signature covers.
    fn signed_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&(
            self.taken_at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
            &self.heads,
            &self.key_id,
        ))
        .unwrap_or_default()
    }
}

type Row = (
    i64,
    DateTime<Utc>,
    Option<String>,
    String,
    Vec<String>,
    Option<String>,
    Option<Uuid>,
    String,
    String,
    serde_json::Value,
    String,
    Option<i64>,
    Vec<u8>,
    Vec<u8>,
    Vec<String>,
    Option<String>,
    String,
    Option<String>,
);

macro_rules! entry_columns {
    () => {
        (
            audit_log::id,
            audit_log::occurred_at,
            audit_log::request_id,
            audit_log::subject,
            audit_log::roles,
            audit_log::partnership_code,
            audit_log::agency_id,
            audit_log::action,
            audit_log::resource,
            audit_log::parameters,
            audit_log::outcome,
            audit_log::rows_returned,
            audit_log::previous_hash,
            audit_log::hash,
            audit_log::records_of,
            audit_log::caller_partnership,
            audit_log::chain,
            audit_log::key_id,
        )
    };
}

/// An entry read back, with its stored hashes as bytes.
struct StoredEntry {
    entry: Entry,
    /// `None` when the stored parameters are not an object of strings (only a tampered row).
    parameters_ok: bool,
    previous_hash: Vec<u8>,
    hash: Vec<u8>,
}

fn stored(row: Row) -> StoredEntry {
    let (
        id,
        occurred_at,
        request_id,
        subject,
        roles,
        partnership,
        agency,
        action,
        resource,
        parameters,
        outcome,
        rows_returned,
        previous_hash,
        hash,
        records_of,
        caller_partnership,
        chain,
        key_id,
    ) = row;
    let parsed: Option<BTreeMap<String, String>> = serde_json::from_value(parameters).ok();
    StoredEntry {
        parameters_ok: parsed.is_some(),
        entry: Entry {
            id,
            occurred_at,
            request_id,
            subject,
            roles,
            partnership,
            agency,
            action,
            resource,
            parameters: parsed.unwrap_or_default(),
            outcome,
            rows_returned,
            records_of,
            caller_partnership,
            chain,
            key_id,
            previous_hash: hex(&previous_hash),
            hash: hex(&hash),
        },
        previous_hash,
        hash,
    }
}

/// The chains, in name order (a skip scan of the `(chain, id)` index).
const CHAINS: &str = "WITH RECURSIVE chains AS ( \
    SELECT min(chain) AS chain FROM audit_log \
    UNION ALL \
    SELECT (SELECT min(chain) FROM audit_log WHERE chain > chains.chain) FROM chains \
    WHERE chains.chain IS NOT NULL) \
    SELECT chain FROM chains WHERE chain IS NOT NULL";

/// Why a stored entry does not verify after `previous`, if it does not. Entries outside the
/// `global` chain must be keyed with this process's key.
fn fault(stored: &StoredEntry, previous: &[u8]) -> Option<&'static str> {
    if stored.previous_hash != previous {
        return Some(
            "its previous hash is not the hash of the entry before it in its chain: an entry \
             was removed or reordered",
        );
    }
    let key = match (&stored.entry.key_id, stored.entry.chain.as_str()) {
        (None, LEGACY_CHAIN) => None,
        (Some(id), _) if id == chain_key().id() => Some(chain_key()),
        (None, _) => return Some("it is not keyed: the entry was rewritten without the key"),
        (Some(_), _) => {
            return Some("it is keyed with another key than this process's audit.chain_key");
        }
    };
    (!stored.parameters_ok || stored.hash != chain_hash(previous, &stored.entry, key))
        .then_some("its hash does not match its content: the entry was altered")
}

/// The last id of the entries written before chains were split (migration 000023); `None`
/// when there were none.
const LEGACY_END: &str = "SELECT last_id FROM audit_legacy_end";

/// Checks every chain in order: each entry's previous hash is the hash of the entry before
/// it in its chain, and its hash is the keyed hash of its content; the unkeyed chain `global`
/// holds only entries written before chains were split. From a `checkpoint`, each chain it
/// names must still hold, as its entry number `entries`, the entry it names, whole, and a chain
/// it names that is gone is broken; `full` walks every chain from its start all the same
/// (finding an entry altered, removed or inserted before the checkpoint), otherwise each chain
/// it names is walked from its head there on, with its entries up to there counted. Reads in
/// pages, so a chain may be any length.
///
/// # Errors
/// [`StoreError::Query`] when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn verify(
    conn: &mut AsyncPgConnection,
    checkpoint: Option<&Checkpoint>,
    full: bool,
) -> Result<Verification, StoreError> {
    const PAGE: i64 = 10_000;
    #[derive(QueryableByName)]
    struct Chain {
        #[diesel(sql_type = diesel::sql_types::Text)]
        chain: String,
    }
    #[derive(QueryableByName)]
    struct LegacyEnd {
        #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
        last_id: Option<i64>,
    }
    let names: Vec<String> = diesel::sql_query(CHAINS)
        .load::<Chain>(conn)
        .await?
        .into_iter()
        .map(|chain| chain.chain)
        .collect();
    let legacy_end = diesel::sql_query(LEGACY_END)
        .get_result::<LegacyEnd>(conn)
        .await
        .optional()?
        .and_then(|end| end.last_id);
    let mut entries = 0_u64;
    let mut heads = Vec::new();
    let broken = |entries, id, chain: &str, reason: &str| Verification {
        entries,
        first_broken: Some(BrokenEntry {
            id,
            chain: chain.to_owned(),
            reason: reason.to_owned(),
        }),
        heads: Vec::new(),
    };
    let checkpointed = |chain: &str| {
        checkpoint.and_then(|checkpoint| checkpoint.heads.iter().find(|head| head.chain == chain))
    };
    if let Some(gone) = checkpoint
        .into_iter()
        .flat_map(|checkpoint| &checkpoint.heads)
        .find(|head| !names.contains(&head.chain))
    {
        return Ok(broken(
            entries,
            gone.last_id,
            &gone.chain,
            "the chain was in the checkpoint and is gone: it was deleted",
        ));
    }
    for chain in &names {
        let head = checkpointed(chain);
        let legacy = chain == LEGACY_CHAIN;
        let (mut after, mut previous, mut count) = (None, GENESIS.to_vec(), 0_u64);
        // Whether the checkpoint's last entry of the chain was met (or there is none).
        let mut met = head.is_none();
        if let Some(head) = head
            && !full
        {
            let row: Option<Row> = audit_log::table
                .select(entry_columns!())
                .filter(audit_log::chain.eq(chain))
                .filter(audit_log::id.eq(head.last_id))
                .first(conn)
                .await
                .optional()?;
            let Some(row) = row else {
                return Ok(broken(
                    entries,
                    head.last_id,
                    chain,
                    "the checkpoint's last entry of the chain is gone: the chain was truncated",
                ));
            };
            let stored = stored(row);
            let before: i64 = audit_log::table
                .filter(audit_log::chain.eq(chain))
                .filter(audit_log::id.le(head.last_id))
                .count()
                .get_result(conn)
                .await?;
            let whole = stored.entry.hash == head.last_hash
                && fault(&stored, &stored.previous_hash).is_none()
                && u64::try_from(before).ok() == Some(head.entries);
            if !whole {
                return Ok(broken(
                    entries,
                    head.last_id,
                    chain,
                    "the chain up to the checkpoint's last entry is not what the checkpoint \
                     holds: an entry was altered, added or removed",
                ));
            }
            (after, previous, count, met) = (Some(head.last_id), stored.hash, head.entries, true);
        }
        if legacy && checkpoint.is_some() && head.is_none() {
            return Ok(broken(
                entries,
                0,
                chain,
                "the unkeyed chain `global` appeared after the checkpoint",
            ));
        }
        loop {
            let mut query = audit_log::table
                .select(entry_columns!())
                .filter(audit_log::chain.eq(chain))
                .order(audit_log::id)
                .limit(PAGE)
                .into_boxed();
            if let Some(after) = after {
                query = query.filter(audit_log::id.gt(after));
            }
            let page: Vec<Row> = query.load(conn).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.0);
            for row in page {
                let stored = stored(row);
                let id = stored.entry.id;
                entries += 1;
                count += 1;
                if let Some(reason) = fault(&stored, &previous) {
                    return Ok(broken(entries, id, chain, reason));
                }
                if legacy
                    && (legacy_end.is_none_or(|end| id > end)
                        || head.is_some_and(|head| id > head.last_id))
                {
                    return Ok(broken(
                        entries,
                        id,
                        chain,
                        "an unkeyed entry was added to the chain `global` after chains were keyed",
                    ));
                }
                if let Some(head) = head {
                    if id == head.last_id {
                        if hex(&stored.hash) != head.last_hash || count != head.entries {
                            return Ok(broken(
                                entries,
                                id,
                                chain,
                                "the chain up to the checkpoint's last entry is not what the \
                                 checkpoint holds: an entry was altered, added or removed",
                            ));
                        }
                        met = true;
                    } else if id > head.last_id && !met {
                        return Ok(broken(
                            entries,
                            head.last_id,
                            chain,
                            "the checkpoint's last entry of the chain is gone: the chain was \
                             truncated",
                        ));
                    }
                }
                previous = stored.hash;
            }
        }
        if !met {
            return Ok(broken(
                entries,
                head.map_or(0, |head| head.last_id),
                chain,
                "the checkpoint's last entry of the chain is gone: the chain was truncated",
            ));
        }
        heads.push(ChainHead {
            chain: chain.clone(),
            last_id: after.unwrap_or_default(),
            last_hash: hex(&previous),
            entries: count,
        });
    }
    Ok(Verification {
        entries,
        first_broken: None,
        heads,
    })
}

/// Which entries to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// At or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Before this time.
    pub to: Option<DateTime<Utc>>,
    /// Only this subject.
    pub subject: Option<String>,
    /// Only entries involving this partnership: its data were touched, or its own staff
    /// acted (a request it made to another partnership, say).
    pub partnership: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only entries older than this id (for paging backwards).
    pub before_id: Option<i64>,
    /// At most this many (newest first).
    pub limit: i64,
}

/// Lists entries matching `filter`, newest first.
///
/// # Errors
/// [`StoreError::Query`] when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn list(conn: &mut AsyncPgConnection, filter: &Filter) -> Result<Vec<Entry>, StoreError> {
    let mut query = audit_log::table.select(entry_columns!()).into_boxed();
    if let Some(from) = filter.from {
        query = query.filter(audit_log::occurred_at.ge(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(audit_log::occurred_at.lt(to));
    }
    if let Some(subject) = &filter.subject {
        query = query.filter(audit_log::subject.eq(subject.clone()));
    }
    if let Some(partnership) = &filter.partnership {
        query = query.filter(
            audit_log::partnership_code
                .eq(partnership.clone())
                .or(audit_log::caller_partnership.eq(partnership.clone())),
        );
    }
    if let Some(action) = &filter.action {
        query = query.filter(audit_log::action.eq(action.clone()));
    }
    if let Some(before) = filter.before_id {
        query = query.filter(audit_log::id.lt(before));
    }
    let rows: Vec<Row> = query
        .order(audit_log::id.desc())
        .limit(filter.limit)
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(|row| stored(row).entry).collect())
}

/// Entries of answers that used `partnership`'s case records and were asked by someone whose
/// own partnership is another (or by an operator), newest first: who outside a partnership
/// read its records.
///
/// # Errors
/// [`StoreError::Query`] when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn readers(
    conn: &mut AsyncPgConnection,
    partnership: &str,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<Entry>, StoreError> {
    let mut query = audit_log::table
        .select(entry_columns!())
        .filter(audit_log::records_of.contains(vec![partnership.to_owned()]))
        .filter(audit_log::caller_partnership.is_distinct_from(partnership.to_owned()))
        .into_boxed();
    if let Some(before) = before_id {
        query = query.filter(audit_log::id.lt(before));
    }
    let rows: Vec<Row> = query
        .order(audit_log::id.desc())
        .limit(limit)
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(|row| stored(row).entry).collect())
}

/// The number of entries.
///
/// # Errors
/// [`StoreError::Query`] when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn count(conn: &mut AsyncPgConnection) -> Result<i64, StoreError> {
    Ok(audit_log::table.count().get_result(conn).await?)
}

/// How many distinct cross-boundary questions (entries whose parameters carry
/// `cross_boundary`: a resource and its parameters) `subject` asked since `since`: what query
/// auditing counts (docs/privacy.md, "Query auditing").
///
/// # Errors
/// [`StoreError::Query`] when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn cross_boundary_questions(
    conn: &mut AsyncPgConnection,
    subject: &str,
    since: DateTime<Utc>,
) -> Result<i64, StoreError> {
    use diesel::dsl::sql;
    Ok(audit_log::table
        .filter(audit_log::subject.eq(subject))
        .filter(audit_log::occurred_at.ge(since))
        .filter(sql::<diesel::sql_types::Bool>(
            "parameters ? 'cross_boundary'",
        ))
        .select(sql::<BigInt>("count(DISTINCT (resource, parameters))"))
        .first(conn)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            id: 1,
            occurred_at: "2026-11-28T10:00:00.123456Z".parse().unwrap(),
            request_id: Some("r-1".to_owned()),
            subject: "analyst".to_owned(),
            roles: vec!["partnership_analyst".to_owned()],
            partnership: Some("E10000017".to_owned()),
            agency: None,
            action: "grid.read".to_owned(),
            resource: "/api/v1/partnerships/E10000017/grid".to_owned(),
            parameters: BTreeMap::from([("resolution".to_owned(), "8".to_owned())]),
            outcome: "allowed".to_owned(),
            rows_returned: Some(12),
            records_of: Vec::new(),
            caller_partnership: None,
            chain: LEGACY_CHAIN.to_owned(),
            key_id: None,
            previous_hash: String::new(),
            hash: String::new(),
        }
    }

    /// The content as entries were hashed before need to know: an entry without the new fields
    /// (every entry written before the migration) still hashes to what was stored.
    #[test]
    fn an_entry_without_the_new_fields_hashes_as_before() {
        let old_format = concat!(
            r#"{"occurred_at":"2026-11-28T10:00:00.123456Z","request_id":"r-1","subject":"analyst","#,
            r#""roles":["partnership_analyst"],"partnership":"E10000017","agency":null,"#,
            r#""action":"grid.read","resource":"/api/v1/partnerships/E10000017/grid","#,
            r#""parameters":{"resolution":"8"},"outcome":"allowed","rows_returned":12}"#
        );
        assert_eq!(
            String::from_utf8(chain_content(&entry())).unwrap(),
            old_format
        );
    }

    #[test]
    fn the_new_fields_are_hashed_when_set() {
        let mut read = entry();
        read.caller_partnership = Some("E06000009".to_owned());
        read.records_of = vec!["E06000009".to_owned(), "E10000017".to_owned()];
        let content = String::from_utf8(chain_content(&read)).unwrap();
        assert!(
            content.ends_with(
                r#""rows_returned":12,"caller_partnership":"E06000009","records_of":["E06000009","E10000017"]}"#
            ),
            "{content}"
        );
        let mut altered = read.clone();
        altered.records_of.pop();
        assert_ne!(
            chain_hash(&GENESIS, &read, None),
            chain_hash(&GENESIS, &altered, None),
            "removing a partnership from records_of breaks the hash"
        );
    }

    #[test]
    fn entries_of_the_new_chains_name_their_chain_and_are_keyed() {
        let mut entry = entry();
        entry.chain = "E10000017".to_owned();
        let content = String::from_utf8(chain_content(&entry)).unwrap();
        assert!(content.ends_with(r#""chain":"E10000017"}"#), "{content}");
        let key = ChainKey::from_hex(&"11".repeat(32)).unwrap();
        let other = ChainKey::from_hex(&"12".repeat(32)).unwrap();
        assert_eq!(key.id().len(), 16);
        assert_ne!(key.id(), other.id());
        let keyed = chain_hash(&GENESIS, &entry, Some(&key));
        assert_ne!(keyed, chain_hash(&GENESIS, &entry, Some(&other)));
        assert_ne!(
            keyed,
            chain_hash(&GENESIS, &entry, None),
            "without the key, the hash cannot be made"
        );
        assert!(ChainKey::from_hex("not a key").is_err());
        assert!(
            !format!("{key:?}").contains("1111"),
            "the key is never shown"
        );
    }

    #[test]
    fn a_checkpoint_is_signed_and_any_change_shows() {
        let heads = vec![ChainHead {
            chain: "E10000017".to_owned(),
            last_id: 12,
            last_hash: "ab".repeat(32),
            entries: 12,
        }];
        let checkpoint = Checkpoint::sign(Utc::now(), heads);
        assert!(checkpoint.is_authentic());
        let text = serde_json::to_string(&checkpoint).unwrap();
        let read: Checkpoint = serde_json::from_str(&text).unwrap();
        assert!(
            read.is_authentic(),
            "a checkpoint read back is still authentic"
        );
        let mut shortened = checkpoint.clone();
        shortened.heads[0].last_id = 11;
        assert!(!shortened.is_authentic());
        let mut dropped = checkpoint;
        dropped.heads.clear();
        assert!(!dropped.is_authentic());
    }

    #[test]
    fn control_characters_are_escaped_and_text_is_cut_on_character_boundaries() {
        assert_eq!(
            storable("a\u{0}b\u{1b}[1m\u{7f}\u{85}", 100),
            "a\\u{0}b\\u{1b}[1m\\u{7f}\\u{85}"
        );
        assert_eq!(storable("plain text, ünïcödé", 100), "plain text, ünïcödé");
        let across = format!("{}é", "a".repeat(199));
        assert_eq!(storable(&across, 200), across, "200 characters fit");
        let longer = format!("{}ééé", "a".repeat(199));
        let cut = storable(&longer, 200);
        assert_eq!(cut.chars().count(), 200);
        assert!(cut.ends_with('…'));
        assert_eq!(storable(&cut, 200), cut, "storable text passes unchanged");
        assert_eq!(storable("\u{0}\u{0}\u{0}", 8), "\\u{0}\\u…");
    }

    #[test]
    fn parameters_are_bounded_in_number_names_and_values() {
        let mut parameters = BTreeMap::new();
        for number in 0..100 {
            parameters.insert(format!("{}{number:03}", "ñ".repeat(100)), "xx".to_owned());
        }
        let kept = storable_parameters(parameters.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        // Every name shares its first 64 characters, so they join under one.
        assert_eq!(kept.len(), 1);
        let value = kept.values().next().unwrap();
        assert_eq!(value.chars().count(), MAX_VALUE_CHARS);
        let distinct: BTreeMap<String, String> = (0..100)
            .map(|number| (format!("p{number:03}"), "\u{0}".to_owned()))
            .collect();
        let kept = storable_parameters(distinct.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        assert_eq!(
            storable_parameters(kept.iter().map(|(n, v)| (n.as_str(), v.as_str()))),
            kept,
            "storable parameters pass unchanged"
        );
        assert_eq!(kept.len(), MAX_PARAMETERS + 1);
        assert_eq!(kept[OMITTED_PARAMETERS], "68 more parameters not kept");
        assert_eq!(kept["p000"], "\\u{0}");
    }
}
