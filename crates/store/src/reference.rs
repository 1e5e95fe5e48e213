//! Loading reference geography: partnerships, local authorities, coverage and neighbours.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use atlas_domain::{
    Coverage, FINEST_RESOLUTION, GssCode, PostcodeCell, ReferenceArea, SmallAreaPopulation,
};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

use crate::{StoreError, connect_admin};

/// The tiling that coverage is written with (`partnerships.coverage_tiling`): 2, every
/// resolution-9 cell a boundary touches, with the cells wholly inside marked (`cover` of
/// `atlas_ingest::reference`). Coverage of an older tiling is re-tiled by [`retile_outdated`].
pub const COVERAGE_TILING: i16 = 2;

/// What an import changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportSummary {
    /// Areas that were not in the database before.
    pub added: usize,
    /// Areas whose name or boundary changed (their coverage was recomputed).
    pub updated: usize,
    /// Areas identical to what was stored, left untouched.
    pub unchanged: usize,
    /// Coverage rows written, over every stored resolution.
    pub cells_written: u64,
    /// Neighbour pairs added (each direction counts once).
    pub neighbours_added: usize,
    /// Neighbour pairs removed because the file no longer lists them.
    pub neighbours_removed: usize,
}

impl ImportSummary {
    /// Whether the import changed anything.
    #[must_use]
    pub fn changed_nothing(&self) -> bool {
        self.added == 0
            && self.updated == 0
            && self.neighbours_added == 0
            && self.neighbours_removed == 0
    }
}

/// Imports areas and, when given, their neighbour pairs, in one transaction: either all of it
/// is stored or none. Each area becomes a local authority and a partnership with the same code.
/// Re-importing identical data changes nothing; a changed area has its coverage replaced.
/// Neighbour pairs are stored in both directions; for the areas of this import, pairs that the
/// table no longer lists are removed.
///
/// # Errors
/// [`StoreError::NotFound`] when a neighbour pair names a partnership that is neither in this
/// import nor already stored; other [`StoreError`]s when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn import(
    url: &str,
    areas: &[ReferenceArea],
    neighbours: Option<&[(GssCode, GssCode)]>,
) -> Result<ImportSummary, StoreError> {
    let mut client = connect_admin(url, Duration::from_secs(10)).await?;
    let transaction = client.transaction().await?;
    let mut summary = ImportSummary::default();
    let mut changed = Vec::new();
    for area in areas {
        let boundary = &area.boundary;
        let existing = transaction
            .query_opt(
                "SELECT name = $2 AND boundary = $3 FROM local_authorities WHERE code = $1",
                &[&area.code.as_str(), &area.name, &boundary],
            )
            .await?;
        match existing {
            Some(row) if row.get::<_, bool>(0) => {
                summary.unchanged += 1;
                continue;
            }
            Some(_) => summary.updated += 1,
            None => summary.added += 1,
        }
        transaction
            .execute(
                "INSERT INTO partnerships (code, name, coverage_tiling) VALUES ($1, $2, $3)
                 ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, updated_at = now()
                 WHERE partnerships.name IS DISTINCT FROM EXCLUDED.name",
                &[&area.code.as_str(), &area.name, &COVERAGE_TILING],
            )
            .await?;
        transaction
            .execute(
                "INSERT INTO local_authorities (code, name, partnership_code, boundary)
                 VALUES ($1, $2, $1, $3)
                 ON CONFLICT (code) DO UPDATE
                 SET name = EXCLUDED.name, boundary = EXCLUDED.boundary, updated_at = now()",
                &[&area.code.as_str(), &area.name, &boundary],
            )
            .await?;
        transaction
            .execute(
                "DELETE FROM partnership_cells WHERE partnership_code = $1",
                &[&area.code.as_str()],
            )
            .await?;
        changed.push(area);
    }
    if !changed.is_empty() {
        let coverages: Vec<(&str, &Coverage)> = changed
            .iter()
            .map(|area| (area.code.as_str(), &area.coverage))
            .collect();
        summary.cells_written = write_coverage(&transaction, &coverages).await?;
    }
    if let Some(pairs) = neighbours {
        let imported: Vec<&str> = areas.iter().map(|area| area.code.as_str()).collect();
        let (added, removed) = replace_neighbours(&transaction, &imported, pairs).await?;
        summary.neighbours_added = added;
        summary.neighbours_removed = removed;
    }
    transaction.commit().await?;
    Ok(summary)
}

/// Writes the coverage of partnerships whose old coverage is already deleted, with binary COPY,
/// and records its size and tiling on each partnership and raises its `coverage_version` (the
/// analyses' cached study areas are then stale). Returns the rows written.
async fn write_coverage(
    transaction: &tokio_postgres::Transaction<'_>,
    coverages: &[(&str, &Coverage)],
) -> Result<u64, StoreError> {
    let sink = transaction
        .copy_in("COPY partnership_cells (partnership_code, resolution, cell, whole) FROM STDIN (FORMAT binary)")
        .await?;
    let writer = BinaryCopyInWriter::new(sink, &[Type::TEXT, Type::INT2, Type::INT8, Type::BOOL]);
    let mut writer = std::pin::pin!(writer);
    for (code, coverage) in coverages {
        for (resolution, cell) in coverage.iter() {
            let whole = resolution.get() == FINEST_RESOLUTION && coverage.is_whole(cell);
            let resolution = i16::from(resolution.get());
            // H3 indexes keep their top bit clear, so every cell fits in a BIGINT.
            let cell = i64::try_from(cell).map_err(|_| {
                StoreError::Invalid(format!("{code}: cell {cell:#x} is not an H3 index"))
            })?;
            writer
                .as_mut()
                .write(&[code, &resolution, &cell, &whole])
                .await?;
        }
    }
    let written = writer.finish().await?;
    let codes: Vec<&str> = coverages.iter().map(|(code, _)| *code).collect();
    transaction
        .execute(
            "UPDATE partnerships SET coverage_tiling = $3, coverage_cells = (
                 SELECT count(*) FROM partnership_cells
                 WHERE partnership_code = partnerships.code AND resolution = $2),
                 coverage_version = coverage_version + 1
             WHERE code = ANY($1)",
            &[&codes, &i16::from(FINEST_RESOLUTION), &COVERAGE_TILING],
        )
        .await?;
    Ok(written)
}

/// Re-tiles, from their stored boundaries, the partnerships whose coverage was made by an older
/// tiling than [`COVERAGE_TILING`], in one transaction; returns how many. `tile` computes the
/// coverage of a partnership's stored boundaries (GeoJSON geometries). Several processes may
/// call it at once: each partnership is re-tiled once.
///
/// # Errors
/// [`StoreError::Invalid`] when `tile` refuses a stored boundary; other [`StoreError`]s when
/// PostgreSQL fails. Nothing is changed then.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn retile_outdated(
    url: &str,
    tile: impl Fn(&[serde_json::Value]) -> Result<Coverage, String>,
) -> Result<usize, StoreError> {
    let mut client = connect_admin(url, Duration::from_secs(10)).await?;
    let transaction = client.transaction().await?;
    let rows = transaction
        .query(
            "SELECT p.code, la.boundary FROM partnerships p
             JOIN local_authorities la ON la.partnership_code = p.code
             WHERE p.coverage_tiling < $1 ORDER BY p.code, la.code FOR UPDATE OF p",
            &[&COVERAGE_TILING],
        )
        .await?;
    let mut boundaries: std::collections::BTreeMap<String, Vec<serde_json::Value>> =
        std::collections::BTreeMap::new();
    for row in rows {
        boundaries.entry(row.get(0)).or_default().push(row.get(1));
    }
    let mut coverages = Vec::with_capacity(boundaries.len());
    for (code, stored) in &boundaries {
        let coverage = tile(stored)
            .map_err(|err| StoreError::Invalid(format!("{code}: stored boundary: {err}")))?;
        coverages.push((code.as_str(), coverage));
    }
    if coverages.is_empty() {
        return Ok(0);
    }
    let codes: Vec<&str> = coverages.iter().map(|(code, _)| *code).collect();
    transaction
        .execute(
            "DELETE FROM partnership_cells WHERE partnership_code = ANY($1)",
            &[&codes],
        )
        .await?;
    let borrowed: Vec<(&str, &Coverage)> = coverages
        .iter()
        .map(|(code, coverage)| (*code, coverage))
        .collect();
    write_coverage(&transaction, &borrowed).await?;
    transaction.commit().await?;
    Ok(coverages.len())
}

/// Makes the stored neighbours of `imported` areas equal to `pairs` (made symmetric).
async fn replace_neighbours(
    transaction: &tokio_postgres::Transaction<'_>,
    imported: &[&str],
    pairs: &[(GssCode, GssCode)],
) -> Result<(usize, usize), StoreError> {
    let known: HashSet<String> = transaction
        .query("SELECT code FROM partnerships", &[])
        .await?
        .into_iter()
        .map(|row| row.get(0))
        .collect();
    let mut wanted = BTreeSet::new();
    for (code, neighbour) in pairs {
        if let Some(unknown) = [code, neighbour]
            .into_iter()
            .find(|code| !known.contains(code.as_str()))
        {
            return Err(StoreError::NotFound(format!(
                "neighbour pair {code},{neighbour}: {unknown} is not a known partnership; import its boundary first"
            )));
        }
        wanted.insert((code.to_string(), neighbour.to_string()));
        wanted.insert((neighbour.to_string(), code.to_string()));
    }
    let involved: Vec<&str> = imported
        .iter()
        .copied()
        .chain(
            wanted
                .iter()
                .flat_map(|(code, neighbour)| [code.as_str(), neighbour.as_str()]),
        )
        .collect();
    let stored: BTreeSet<(String, String)> = transaction
        .query(
            "SELECT partnership_code, neighbour_code FROM partnership_neighbours
             WHERE partnership_code = ANY($1) OR neighbour_code = ANY($1)",
            &[&involved],
        )
        .await?
        .into_iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let imported: HashSet<&str> = imported.iter().copied().collect();
    let mut removed = 0;
    for (code, neighbour) in stored.difference(&wanted) {
        // Only pairs touching this import are the import's to remove.
        if imported.contains(code.as_str()) || imported.contains(neighbour.as_str()) {
            transaction
                .execute(
                    "DELETE FROM partnership_neighbours WHERE partnership_code = $1 AND neighbour_code = $2",
                    &[code, neighbour],
                )
                .await?;
            removed += 1;
        }
    }
    let mut added = 0;
    for (code, neighbour) in wanted.difference(&stored) {
        transaction
            .execute(
                "INSERT INTO partnership_neighbours (partnership_code, neighbour_code) VALUES ($1, $2)",
                &[code, neighbour],
            )
            .await?;
        added += 1;
    }
    Ok((added, removed))
}

/// What a load of national reference rows (postcodes, small-area populations) changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RowSummary {
    /// Rows not known before.
    pub added: u64,
    /// Rows whose figures changed.
    pub updated: u64,
    /// Rows already stored with the same figures.
    pub unchanged: u64,
}

/// Loads postcodes (binary COPY into a staging table, then one upsert), in one transaction.
/// Re-importing the same file changes nothing.
///
/// # Errors
/// [`StoreError`] when PostgreSQL fails; nothing is stored then.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn import_postcodes(
    url: &str,
    postcodes: &[PostcodeCell],
) -> Result<RowSummary, StoreError> {
    let mut client = connect_admin(url, Duration::from_secs(10)).await?;
    let transaction = client.transaction().await?;
    transaction
        .batch_execute("CREATE TEMPORARY TABLE staged_postcodes (postcode TEXT NOT NULL, cell BIGINT NOT NULL, authority_code TEXT) ON COMMIT DROP")
        .await?;
    let sink = transaction
        .copy_in(
            "COPY staged_postcodes (postcode, cell, authority_code) FROM STDIN (FORMAT binary)",
        )
        .await?;
    let writer = BinaryCopyInWriter::new(sink, &[Type::TEXT, Type::INT8, Type::TEXT]);
    let mut writer = std::pin::pin!(writer);
    for postcode in postcodes {
        let cell = i64::try_from(postcode.cell)
            .map_err(|_| StoreError::Invalid(format!("{}: not an H3 cell", postcode.postcode)))?;
        let authority = postcode.authority.as_ref().map(GssCode::as_str);
        writer
            .as_mut()
            .write(&[&postcode.postcode, &cell, &authority])
            .await?;
    }
    let staged = writer.finish().await?;
    // A directory lists each postcode once; keep the last row should one repeat.
    let row = transaction
        .query_one(
            "WITH incoming AS (
                 SELECT DISTINCT ON (postcode) postcode, cell, authority_code FROM staged_postcodes
                 ORDER BY postcode
             ), changed AS (
                 INSERT INTO postcodes (postcode, cell, authority_code)
                 SELECT postcode, cell, authority_code FROM incoming
                 ON CONFLICT (postcode) DO UPDATE
                 SET cell = EXCLUDED.cell, authority_code = EXCLUDED.authority_code
                 WHERE (postcodes.cell, postcodes.authority_code)
                       IS DISTINCT FROM (EXCLUDED.cell, EXCLUDED.authority_code)
                 RETURNING (xmax = 0) AS inserted
             )
             SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted),
                    (SELECT count(*) FROM incoming)
             FROM changed",
            &[],
        )
        .await?;
    transaction.commit().await?;
    let (added, updated, distinct): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    let _ = staged;
    Ok(RowSummary {
        added: added.cast_unsigned(),
        updated: updated.cast_unsigned(),
        unchanged: (distinct - added - updated).cast_unsigned(),
    })
}

/// Loads small-area child populations (binary COPY into a staging table, then one upsert), in
/// one transaction; `approximate` and `source` label every row. Re-importing the same file
/// changes nothing.
///
/// # Errors
/// [`StoreError`] when PostgreSQL fails; nothing is stored then.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn import_small_area_populations(
    url: &str,
    areas: &[SmallAreaPopulation],
    approximate: bool,
    source: &str,
) -> Result<RowSummary, StoreError> {
    let mut client = connect_admin(url, Duration::from_secs(10)).await?;
    let transaction = client.transaction().await?;
    transaction
        .batch_execute(
            "CREATE TEMPORARY TABLE staged_small_areas (code TEXT NOT NULL, year SMALLINT NOT NULL, \
             cell BIGINT NOT NULL, population_0_17 INTEGER NOT NULL) ON COMMIT DROP",
        )
        .await?;
    let sink = transaction
        .copy_in("COPY staged_small_areas (code, year, cell, population_0_17) FROM STDIN (FORMAT binary)")
        .await?;
    let writer = BinaryCopyInWriter::new(sink, &[Type::TEXT, Type::INT2, Type::INT8, Type::INT4]);
    let mut writer = std::pin::pin!(writer);
    for area in areas {
        let cell = i64::try_from(area.cell)
            .map_err(|_| StoreError::Invalid(format!("{}: not an H3 cell", area.code)))?;
        let children = i32::try_from(area.children)
            .map_err(|_| StoreError::Invalid(format!("{}: too many children", area.code)))?;
        writer
            .as_mut()
            .write(&[&area.code, &area.year, &cell, &children])
            .await?;
    }
    writer.finish().await?;
    let row = transaction
        .query_one(
            "WITH incoming AS (
                 SELECT DISTINCT ON (code, year) code, year, cell, population_0_17
                 FROM staged_small_areas ORDER BY code, year
             ), changed AS (
                 INSERT INTO small_area_populations (code, year, cell, population_0_17, approximate, source)
                 SELECT code, year, cell, population_0_17, $1, $2 FROM incoming
                 ON CONFLICT (code, year) DO UPDATE
                 SET cell = EXCLUDED.cell, population_0_17 = EXCLUDED.population_0_17,
                     approximate = EXCLUDED.approximate, source = EXCLUDED.source
                 WHERE (small_area_populations.cell, small_area_populations.population_0_17,
                        small_area_populations.approximate, small_area_populations.source)
                       IS DISTINCT FROM
                       (EXCLUDED.cell, EXCLUDED.population_0_17, EXCLUDED.approximate, EXCLUDED.source)
                 RETURNING (xmax = 0) AS inserted
             )
             SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted),
                    (SELECT count(*) FROM incoming)
             FROM changed",
            &[&approximate, &source],
        )
        .await?;
    transaction.commit().await?;
    let (added, updated, distinct): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    Ok(RowSummary {
        added: added.cast_unsigned(),
        updated: updated.cast_unsigned(),
        unchanged: (distinct - added - updated).cast_unsigned(),
    })
}
