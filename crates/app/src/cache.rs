//! The case records the analyses read, cached per partnership and reloaded when its data
//! version moves (a batch committed, withdrawn or superseded raises it in the same transaction).
//!
//! Grids and hotspots are computed from these in memory, so a question answers in
//! milliseconds once the partnership is loaded, and the answer is always that of the committed
//! data: a request first reads the version (one indexed row) and reloads when it changed.
//!
//! Loads are single flight: concurrent requests that find a partnership cold (or stale) wait for
//! one load of it rather than each reading every record, and none holds a pooled connection while
//! it waits.
//!
//! Records leave the cache only through [`RecordCache::records`], narrowed to the caller's
//! [`RecordScope`]: agency staff get their own agency's records and no other's.
//!
//! The cache holds as many partnerships as fit in its memory budget (`cache.max_bytes`,
//! counted with [`footprint`]): the least recently used leave first, but never one a request is
//! still reading (its records would stay in memory anyway), so a comparison of many members
//! keeps them all and is served warm the next time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use atlas_access::RecordScope;
use atlas_domain::{CaseRecord, GssCode};
use atlas_store::records::{self, PartnershipRecords};
use atlas_store::snapshots;
use atlas_store::{Database, StoreError};

/// The default memory budget: 2 GiB, some 67 million records.
pub const DEFAULT_BUDGET_BYTES: u64 = 2 * 1024 * 1024 * 1024;

struct Entry {
    version: i64,
    records: Arc<PartnershipRecords>,
    used: u64,
    bytes: u64,
}

/// The bytes a partnership's records take in the cache: each record's fixed size
/// (`size_of::<CaseRecord>()`, 32 bytes) and each agency's id, as allocated.
#[must_use]
pub fn footprint(records: &PartnershipRecords) -> u64 {
    let bytes = records.records.capacity() * std::mem::size_of::<CaseRecord>()
        + records.agencies.capacity() * std::mem::size_of::<uuid::Uuid>()
        + std::mem::size_of::<PartnershipRecords>();
    u64::try_from(bytes).unwrap_or(u64::MAX)
}

/// The record cache's figures for `/metrics`, read at each scrape:
/// `atlas_record_cache_bytes`, `atlas_record_cache_partnerships`,
/// `atlas_record_cache_budget_bytes`, `atlas_record_cache_loads_total` and
/// `atlas_record_cache_snapshot_loads_total`.
pub struct CacheMetrics {
    cache: Arc<RecordCache>,
    descriptions: Vec<prometheus::core::Desc>,
}

impl CacheMetrics {
    /// Registers `cache`'s figures with `registry`.
    ///
    /// # Errors
    /// When the registry refuses them (a second registration).
    pub fn register(
        cache: Arc<RecordCache>,
        registry: &prometheus::Registry,
    ) -> Result<(), prometheus::Error> {
        let descriptions = Self::gauges(&cache)
            .iter()
            .map(|gauge| {
                prometheus::core::Collector::desc(gauge)
                    .into_iter()
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
            .concat();
        registry.register(Box::new(Self {
            cache,
            descriptions,
        }))
    }

    /// The figures now, as gauges.
    fn gauges(cache: &RecordCache) -> Vec<prometheus::IntGauge> {
        let (partnerships, bytes) = cache.held();
        [
            (
                "atlas_record_cache_bytes",
                "Bytes of records the cache holds",
                bytes,
            ),
            (
                "atlas_record_cache_partnerships",
                "Partnerships whose records the cache holds",
                u64::try_from(partnerships).unwrap_or(u64::MAX),
            ),
            (
                "atlas_record_cache_budget_bytes",
                "The cache's memory budget (cache.max_bytes)",
                cache.budget,
            ),
            (
                "atlas_record_cache_loads_total",
                "Loads of a partnership's records from PostgreSQL",
                cache.loads(),
            ),
            (
                "atlas_record_cache_snapshot_loads_total",
                "Of those, the loads read from a record snapshot",
                cache.snapshot_loads(),
            ),
        ]
        .into_iter()
        .filter_map(|(name, help, value)| {
            let gauge = prometheus::IntGauge::new(name, help).ok()?;
            gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
            Some(gauge)
        })
        .collect()
    }
}

impl prometheus::core::Collector for CacheMetrics {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.descriptions.iter().collect()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        Self::gauges(&self.cache)
            .iter()
            .flat_map(prometheus::core::Collector::collect)
            .collect()
    }
}

/// The cached entries, their total bytes and the clock of their last use.
#[derive(Default)]
struct Entries {
    clock: u64,
    bytes: u64,
    by_partnership: HashMap<GssCode, Entry>,
}

/// The cache, shared by every worker.
pub struct RecordCache {
    budget: u64,
    entries: Mutex<Entries>,
    /// One lock per partnership, held while its records load (single flight).
    loads: Mutex<HashMap<GssCode, Arc<tokio::sync::Mutex<()>>>>,
    /// Loads from PostgreSQL so far.
    loaded: AtomicU64,
    /// Of those, the loads read from a record snapshot.
    from_snapshots: AtomicU64,
    /// One record snapshot written at a time (one connection, one encoded copy in memory); the
    /// others wait their turn holding only their records, which the cache holds anyway unless
    /// it evicted them meanwhile.
    snapshot_writer: Arc<tokio::sync::Semaphore>,
    /// False while the partnerships named for warm-up are loading.
    warm: std::sync::atomic::AtomicBool,
}

impl Default for RecordCache {
    fn default() -> Self {
        Self::new(DEFAULT_BUDGET_BYTES)
    }
}

impl RecordCache {
    /// A cache keeping at most `budget` bytes of records (see [`footprint`]), beyond what
    /// requests are still reading.
    #[must_use]
    pub fn new(budget: u64) -> Self {
        Self {
            budget,
            entries: Mutex::new(Entries::default()),
            loads: Mutex::new(HashMap::new()),
            loaded: AtomicU64::new(0),
            from_snapshots: AtomicU64::new(0),
            snapshot_writer: Arc::new(tokio::sync::Semaphore::new(1)),
            warm: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// Whether the warm-up (see [`RecordCache::warm`]) is done, or there is none.
    #[must_use]
    pub fn is_warm(&self) -> bool {
        self.warm.load(Ordering::Acquire)
    }

    /// How many times records were loaded from PostgreSQL.
    #[must_use]
    pub fn loads(&self) -> u64 {
        self.loaded.load(Ordering::Relaxed)
    }

    /// How many of the loads read a record snapshot rather than every row.
    #[must_use]
    pub fn snapshot_loads(&self) -> u64 {
        self.from_snapshots.load(Ordering::Relaxed)
    }

    /// The partnerships cached and the bytes they take.
    #[must_use]
    pub fn held(&self) -> (usize, u64) {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (entries.by_partnership.len(), entries.bytes)
    }

    /// Marks the cache cold until [`RecordCache::warm`] has run: called before the warm-up
    /// is spawned, so readiness never reports a warm-up that has not begun.
    pub fn begin_warming(&self) {
        self.warm.store(false, Ordering::Release);
    }

    /// Loads `partnerships` (those that exist) before a server turns ready: [`Self::is_warm`]
    /// is false meanwhile. A load that fails for want of the database (not reachable, not yet
    /// migrated) is tried again; a partnership whose records cannot be read is left out (said
    /// in the log); and the log says when the budget cannot hold them all.
    pub async fn warm(&self, database: &Database, partnerships: &[GssCode]) {
        self.begin_warming();
        let mut delay = std::time::Duration::from_millis(500);
        for code in partnerships {
            loop {
                match self.all_records(database, code).await {
                    Ok(_) => break,
                    Err(StoreError::Invalid(reason)) => {
                        tracing::error!(%code, %reason, "not warmed: its records cannot be read");
                        break;
                    }
                    Err(err) => {
                        tracing::warn!(%code, error = %err, "warming the record cache; retrying");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(std::time::Duration::from_secs(30));
                    }
                }
            }
        }
        let (count, bytes) = self.held();
        let kept = {
            let entries = self
                .entries
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            partnerships
                .iter()
                .filter(|code| entries.by_partnership.contains_key(*code))
                .count()
        };
        if kept < partnerships.len() {
            tracing::warn!(
                kept,
                named = partnerships.len(),
                budget = self.budget,
                "cache.warm names more partnerships than cache.max_bytes holds"
            );
        }
        tracing::info!(partnerships = count, bytes, "the record cache is warm");
        self.warm.store(true, Ordering::Release);
    }

    /// The current records of `partnership` within `scope` (those of the caller's agency only,
    /// for agency staff), or `None` when the partnership does not exist.
    ///
    /// # Errors
    /// [`StoreError`] when PostgreSQL fails.
    pub async fn records(
        &self,
        database: &Database,
        partnership: &GssCode,
        scope: RecordScope,
    ) -> Result<Option<Arc<PartnershipRecords>>, StoreError> {
        let Some(all) = self.all_records(database, partnership).await? else {
            return Ok(None);
        };
        Ok(Some(match scope {
            RecordScope::Partnership => all,
            RecordScope::Agency(_) => Arc::new(PartnershipRecords {
                records: all
                    .records
                    .iter()
                    .filter(|record| {
                        all.agencies
                            .get(record.agency as usize)
                            .is_some_and(|id| scope.admits(*id))
                    })
                    .cloned()
                    .collect(),
                agencies: all.agencies.clone(),
            }),
        }))
    }

    /// Every current record of `partnership`, loaded or from the cache.
    async fn all_records(
        &self,
        database: &Database,
        partnership: &GssCode,
    ) -> Result<Option<Arc<PartnershipRecords>>, StoreError> {
        let version = {
            let mut conn = database.connection().await?;
            records::data_version(&mut conn, partnership).await?
        };
        let Some(version) = version else {
            return Ok(None);
        };
        if let Some(records) = self.fresh(partnership, version) {
            return Ok(Some(records));
        }
        let flight = self.flight(partnership);
        let _turn = flight.lock().await;
        // Whoever held the turn before may have loaded this version (or a newer one) already.
        if let Some(records) = self.fresh(partnership, version) {
            return Ok(Some(records));
        }
        let loaded = records::load(database, partnership).await?;
        self.loaded.fetch_add(1, Ordering::Relaxed);
        if loaded.from_snapshot {
            self.from_snapshots.fetch_add(1, Ordering::Relaxed);
        }
        let records = Arc::new(loaded.records);
        self.keep(partnership, loaded.version, &records);
        if !loaded.from_snapshot {
            self.snapshot_later(database, partnership, loaded.version, &records);
        }
        Ok(Some(records))
    }

    /// Writes, in the background, the snapshot of `records` (of data `version`) that the next
    /// process to load `partnership` reads instead of every row (`atlas_store::snapshots`), one
    /// at a time. Failures are only logged: the next load reads the rows again.
    fn snapshot_later(
        &self,
        database: &Database,
        partnership: &GssCode,
        version: i64,
        records: &Arc<PartnershipRecords>,
    ) {
        let writer = Arc::clone(&self.snapshot_writer);
        let (database, partnership, records) =
            (database.clone(), partnership.clone(), Arc::clone(records));
        tokio::spawn(async move {
            let Ok(_turn) = writer.acquire_owned().await else {
                return;
            };
            match snapshots::save(&database, &partnership, version, records).await {
                Ok(written) => {
                    tracing::debug!(%partnership, version, written, "record snapshot");
                }
                Err(err) => {
                    tracing::warn!(%partnership, error = %err, "the record snapshot was not written");
                }
            }
        });
    }

    /// Reloads, in the background, the records of the partnerships a batch just changed that
    /// are in the cache (someone is analysing them), so the next request finds them loaded.
    /// Failures are only logged: a request reloads anyway.
    pub fn refresh_later(
        cache: Arc<Self>,
        database: Database,
        partnerships: impl IntoIterator<Item = GssCode>,
    ) {
        let codes: Vec<GssCode> = {
            let guard = cache
                .entries
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            partnerships
                .into_iter()
                .filter(|code| guard.by_partnership.contains_key(code))
                .collect()
        };
        if codes.is_empty() {
            return;
        }
        tokio::spawn(async move {
            for code in codes {
                if let Err(err) = cache.all_records(&database, &code).await {
                    tracing::warn!(%code, error = %err, "could not reload records after a batch");
                }
            }
        });
    }

    /// Keeps `records` (of `version`) for `partnership`, making room within the budget: the
    /// least recently used entries no request is reading leave first. When every other entry
    /// is being read, the cache holds more than its budget until they are done (said in the
    /// log).
    fn keep(&self, partnership: &GssCode, version: i64, records: &Arc<PartnershipRecords>) {
        let bytes = footprint(records);
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.clock += 1;
        if let Some(old) = entries.by_partnership.remove(partnership) {
            entries.bytes -= old.bytes;
        }
        while entries.bytes + bytes > self.budget {
            let idle = entries
                .by_partnership
                .iter()
                .filter(|(_, entry)| Arc::strong_count(&entry.records) == 1)
                .min_by_key(|(_, entry)| entry.used)
                .map(|(code, _)| code.clone());
            let Some(idle) = idle else {
                tracing::warn!(
                    %partnership,
                    held = entries.bytes + bytes,
                    budget = self.budget,
                    "the record cache is over its budget: every other partnership in it is being read"
                );
                break;
            };
            if let Some(evicted) = entries.by_partnership.remove(&idle) {
                entries.bytes -= evicted.bytes;
            }
        }
        let used = entries.clock;
        entries.bytes += bytes;
        entries.by_partnership.insert(
            partnership.clone(),
            Entry {
                version,
                records: Arc::clone(records),
                used,
                bytes,
            },
        );
    }

    /// The lock that single-flights loads of `partnership`.
    fn flight(&self, partnership: &GssCode) -> Arc<tokio::sync::Mutex<()>> {
        let mut loads = self
            .loads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(loads.entry(partnership.clone()).or_default())
    }

    /// The cached records of `partnership` if they are of `version` or newer.
    fn fresh(&self, partnership: &GssCode, version: i64) -> Option<Arc<PartnershipRecords>> {
        let mut guard = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entries = &mut *guard;
        entries.clock += 1;
        let clock = entries.clock;
        let entry = entries
            .by_partnership
            .get_mut(partnership)
            .filter(|entry| entry.version >= version)?;
        entry.used = clock;
        Some(Arc::clone(&entry.records))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use atlas_postgres::test_db::TestDatabase;
    use atlas_store::DatabaseSettings;

    use super::*;

    /// Synthetic records of `count` rows, as loaded.
    fn records_of(count: usize) -> Arc<PartnershipRecords> {
        let record = CaseRecord {
            cell: h3o::CellIndex::try_from(0x0889_1950_4e1f_ffff_u64).unwrap(),
            subject: 1,
            record_key: 0,
            agency: 0,
            agency_kind: atlas_domain::AgencyKind::Police,
            record_kind: atlas_domain::RecordKind::Referral,
            occurred_on: chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
            location_role: atlas_domain::LocationRole::Home,
            indicators: atlas_domain::Indicators::default(),
            age_band: None,
            sex: None,
        };
        Arc::new(PartnershipRecords {
            records: vec![record; count],
            agencies: vec![uuid::Uuid::nil()],
        })
    }

    fn code(n: usize) -> GssCode {
        GssCode::parse(&format!("E0600{n:04}")).unwrap()
    }

    #[test]
    fn a_record_takes_32_bytes_in_the_cache() {
        // docs/operations.md sizes the cache with this.
        assert_eq!(std::mem::size_of::<CaseRecord>(), 32);
        let thousand = records_of(1_000);
        assert!(footprint(&thousand) >= 32_000 && footprint(&thousand) < 32_200);
    }

    #[test]
    fn the_budget_keeps_what_fits_and_never_evicts_what_is_being_read() {
        let each = footprint(&records_of(1_000));
        // Room for fifteen: a comparison of fifteen members keeps them all.
        let cache = RecordCache::new(15 * each);
        for n in 0..15 {
            cache.keep(&code(n), 1, &records_of(1_000));
        }
        assert_eq!(cache.held(), (15, 15 * each));
        // A sixteenth pushes out the least recently used one that no request is reading.
        assert!(cache.fresh(&code(0), 1).is_some()); // code 0 used again: code 1 is oldest
        let reading = cache.fresh(&code(1), 1).unwrap(); // a request reads code 1
        assert!(cache.fresh(&code(0), 1).is_some());
        cache.keep(&code(15), 1, &records_of(1_000));
        assert_eq!(cache.held(), (15, 15 * each));
        assert!(cache.fresh(&code(1), 1).is_some(), "being read: kept");
        assert!(
            cache.fresh(&code(2), 1).is_none(),
            "the least recently used idle one left"
        );
        drop(reading);
        // With every other entry being read, the cache goes over its budget rather than drop
        // what would stay in memory anyway.
        let small = RecordCache::new(each);
        let held: Vec<_> = (0..3)
            .map(|n| {
                let records = records_of(1_000);
                small.keep(&code(n), 1, &records);
                records
            })
            .collect();
        assert_eq!(small.held().0, 3);
        drop(held);
        small.keep(&code(9), 1, &records_of(1_000));
        assert_eq!(small.held(), (1, each));
    }

    /// A test database holding the partnerships `codes` (no records), and a pool of `pool_size`
    /// connections to it.
    async fn with_partnerships(codes: &[GssCode], pool_size: usize) -> (TestDatabase, Database) {
        let test_db = TestDatabase::new().await;
        let client = atlas_store::connect_admin(test_db.url(), Duration::from_secs(5))
            .await
            .unwrap();
        let codes: Vec<&str> = codes.iter().map(GssCode::as_str).collect();
        client
            .execute(
                "INSERT INTO partnerships (code, name) SELECT code, code FROM unnest($1::text[]) code",
                &[&codes],
            )
            .await
            .unwrap();
        let database = Database::new(&DatabaseSettings::new(
            test_db.url().to_owned().into(),
            pool_size,
        ))
        .unwrap();
        (test_db, database)
    }

    #[tokio::test]
    async fn fifteen_partnerships_are_served_warm_the_second_time() {
        let codes: Vec<GssCode> = (0..15).map(code).collect();
        let (_test_db, database) = with_partnerships(&codes, 2).await;
        let cache = RecordCache::default();
        for _ in 0..2 {
            for n in 0..15 {
                cache
                    .records(&database, &code(n), RecordScope::Partnership)
                    .await
                    .unwrap()
                    .unwrap();
            }
        }
        assert_eq!(cache.loads(), 15, "each partnership loaded once");
    }

    #[tokio::test]
    async fn a_load_row_by_row_leaves_a_snapshot_the_next_process_reads() {
        let code = GssCode::parse("E06000009").unwrap();
        let (test_db, database) = with_partnerships(std::slice::from_ref(&code), 2).await;
        let client = atlas_store::connect_admin(test_db.url(), Duration::from_secs(5))
            .await
            .unwrap();
        let first = RecordCache::default();
        first
            .records(&database, &code, RecordScope::Partnership)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((first.loads(), first.snapshot_loads()), (1, 0));
        // Written in the background after the load.
        let mut waited = 0;
        while client
            .query_one("SELECT count(*) FROM record_snapshots", &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
            == 0
        {
            assert!(waited < 100, "no snapshot was written");
            tokio::time::sleep(Duration::from_millis(50)).await;
            waited += 1;
        }
        let next_process = RecordCache::default();
        next_process
            .records(&database, &code, RecordScope::Partnership)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (next_process.loads(), next_process.snapshot_loads()),
            (1, 1)
        );
    }

    #[tokio::test]
    async fn concurrent_cold_loads_of_one_partnership_share_one_load() {
        let code = GssCode::parse("E10000017").unwrap();
        let (_test_db, database) = with_partnerships(std::slice::from_ref(&code), 8).await;
        // Connections ready in the pool, so the four requests run side by side.
        let warm = futures_util::future::join_all((0..4).map(|_| database.connection())).await;
        drop(warm);
        let cache = RecordCache::default();
        let loaded: Vec<Arc<PartnershipRecords>> = futures_util::future::join_all(
            (0..4).map(|_| cache.records(&database, &code, RecordScope::Partnership)),
        )
        .await
        .into_iter()
        .map(|records| records.unwrap().unwrap())
        .collect();
        assert!(
            loaded
                .windows(2)
                .all(|pair| Arc::ptr_eq(&pair[0], &pair[1])),
            "each request loaded the partnership's records itself"
        );
    }
}
