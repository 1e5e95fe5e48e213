//! Children aged 0 to 17 per local authority and year: the denominators of rates per 10,000
//! children (ONS mid-year estimates, or an approximation the demo labels as such).

use std::collections::{BTreeMap, BTreeSet};

use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};

use atlas_domain::GssCode;

use crate::StoreError;
use crate::schema::{
    child_populations, local_authorities, partnership_cells, population_sources_version, postcodes,
    small_area_populations,
};

/// One local authority's children in one year, as imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Estimate {
    /// GSS code of the local authority.
    pub code: GssCode,
    /// Year.
    pub year: i16,
    /// Children aged 0 to 17.
    pub population_0_17: i32,
}

/// The version of the tables small-area child populations are worked out from
/// (`small_area_populations`, `postcodes`): raised by every statement that changes either, in
/// its transaction (migration 000028), so that populations kept in memory know when they are
/// stale.
///
/// # Errors
/// [`StoreError::Query`] when PostgreSQL fails.
pub async fn sources_version(conn: &mut AsyncPgConnection) -> Result<i64, StoreError> {
    Ok(population_sources_version::table
        .select(population_sources_version::version)
        .first(conn)
        .await?)
}

/// A row of `child_populations`.
#[derive(Queryable, Selectable)]
#[diesel(table_name = child_populations, check_for_backend(diesel::pg::Pg))]
struct StoredEstimate {
    local_authority_code: String,
    partnership_code: String,
    year: i16,
    population_0_17: i32,
    approximate: bool,
    source: String,
}

/// What an import changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Rows written (new or changed).
    pub written: usize,
    /// Rows already stored with the same figures.
    pub unchanged: usize,
}

/// Stores estimates, replacing earlier figures for the same authority and year, in one
/// transaction. `approximate` marks figures that are not official estimates; `source` says
/// where they come from.
///
/// # Errors
/// [`StoreError::Invalid`] naming codes that are not local authorities Atlas knows (nothing is
/// stored then).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn import(
    conn: &mut AsyncPgConnection,
    estimates: &[Estimate],
    approximate: bool,
    source: &str,
) -> Result<ImportSummary, StoreError> {
    conn.transaction::<_, StoreError, _>(async |conn| {
        let codes: BTreeSet<&str> = estimates.iter().map(|e| e.code.as_str()).collect();
        let partnerships: BTreeMap<String, String> = local_authorities::table
            .filter(local_authorities::code.eq_any(&codes))
            .select((local_authorities::code, local_authorities::partnership_code))
            .load::<(String, String)>(conn)
            .await?
            .into_iter()
            .collect();
        let unknown: Vec<&str> = codes
            .iter()
            .filter(|code| !partnerships.contains_key(**code))
            .copied()
            .collect();
        if !unknown.is_empty() {
            return Err(StoreError::Invalid(format!(
                "{} code(s) are not local authorities Atlas knows (import the boundaries first, \
                 or give upper-tier authority codes): {}",
                unknown.len(),
                unknown
                    .iter()
                    .take(5)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let stored: BTreeMap<(String, i16), (i32, bool, String)> = child_populations::table
            .filter(child_populations::local_authority_code.eq_any(&codes))
            .select(StoredEstimate::as_select())
            .load::<StoredEstimate>(conn)
            .await?
            .into_iter()
            .map(|row| {
                (
                    (row.local_authority_code, row.year),
                    (row.population_0_17, row.approximate, row.source),
                )
            })
            .collect();
        let mut summary = ImportSummary::default();
        for estimate in estimates {
            let figures = (estimate.population_0_17, approximate, source.to_owned());
            if stored.get(&(estimate.code.to_string(), estimate.year)) == Some(&figures) {
                summary.unchanged += 1;
                continue;
            }
            diesel::insert_into(child_populations::table)
                .values((
                    child_populations::partnership_code.eq(&partnerships[estimate.code.as_str()]),
                    child_populations::local_authority_code.eq(estimate.code.as_str()),
                    child_populations::year.eq(estimate.year),
                    child_populations::population_0_17.eq(estimate.population_0_17),
                    child_populations::approximate.eq(approximate),
                    child_populations::source.eq(source),
                ))
                .on_conflict((
                    child_populations::partnership_code,
                    child_populations::local_authority_code,
                    child_populations::year,
                ))
                .do_update()
                .set((
                    child_populations::population_0_17
                        .eq(excluded(child_populations::population_0_17)),
                    child_populations::approximate.eq(excluded(child_populations::approximate)),
                    child_populations::source.eq(excluded(child_populations::source)),
                ))
                .execute(conn)
                .await?;
            summary.written += 1;
        }
        Ok(summary)
    })
    .await
}

/// A partnership's children in one year: the sum over its local authorities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnershipPopulation {
    /// Year.
    pub year: i16,
    /// Children aged 0 to 17.
    pub population_0_17: i64,
    /// Whether any of the figures summed is an approximation.
    pub approximate: bool,
    /// Where the figures come from.
    pub source: String,
}

/// For each of `partnerships`, its child population by year, for the years in which every one
/// of its local authorities has a figure (a partial sum would understate the denominator).
///
/// # Errors
/// [`StoreError`] when the query fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn of_partnerships(
    conn: &mut AsyncPgConnection,
    partnerships: &[String],
) -> Result<BTreeMap<String, Vec<PartnershipPopulation>>, StoreError> {
    let authorities: Vec<(String, String)> = local_authorities::table
        .filter(local_authorities::partnership_code.eq_any(partnerships))
        .select((local_authorities::partnership_code, local_authorities::code))
        .load(conn)
        .await?;
    let mut members: BTreeMap<String, usize> = BTreeMap::new();
    for (partnership, _) in &authorities {
        *members.entry(partnership.clone()).or_default() += 1;
    }
    let rows: Vec<StoredEstimate> = child_populations::table
        .filter(child_populations::partnership_code.eq_any(partnerships))
        .select(StoredEstimate::as_select())
        .load(conn)
        .await?;
    let mut sums: BTreeMap<(String, i16), (usize, PartnershipPopulation)> = BTreeMap::new();
    for StoredEstimate {
        partnership_code: partnership,
        year,
        population_0_17: population,
        approximate,
        source,
        ..
    } in rows
    {
        let (count, sum) = sums.entry((partnership, year)).or_insert((
            0,
            PartnershipPopulation {
                year,
                population_0_17: 0,
                approximate: false,
                source: String::new(),
            },
        ));
        *count += 1;
        sum.population_0_17 += i64::from(population);
        sum.approximate |= approximate;
        if !sum.source.split("; ").any(|known| known == source) {
            if !sum.source.is_empty() {
                sum.source.push_str("; ");
            }
            sum.source.push_str(&source);
        }
    }
    let mut result: BTreeMap<String, Vec<PartnershipPopulation>> = BTreeMap::new();
    for ((partnership, _), (count, sum)) in sums {
        if members.get(&partnership) == Some(&count) {
            result.entry(partnership).or_default().push(sum);
        }
    }
    Ok(result)
}

/// The population to use for `year`: that year's, else the latest before it, else the earliest
/// after it; `None` without any.
#[must_use]
pub fn for_year(
    populations: &[PartnershipPopulation],
    year: i32,
) -> Option<&PartnershipPopulation> {
    populations
        .iter()
        .filter(|population| i32::from(population.year) <= year)
        .max_by_key(|population| population.year)
        .or_else(|| populations.iter().min_by_key(|population| population.year))
}

/// A small area's children as a partnership's hotspot analysis weighs them.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct StoredSmallArea {
    /// The area's code.
    pub code: String,
    /// The year of the estimate.
    pub year: i16,
    /// The resolution-9 cell of its reference point.
    pub cell: i64,
    /// Children aged 0 to 17.
    pub population_0_17: i32,
    /// Whether the figure is an approximation.
    pub approximate: bool,
    /// Where the figure comes from.
    pub source: String,
}

/// The latest figure of every small area that has a reference point in `code`'s coverage in
/// some year, sorted by code (the latest point may lie elsewhere: the caller keeps those in the
/// coverage).
///
/// # Errors
/// [`StoreError`] when the query fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn small_areas_of(
    conn: &mut AsyncPgConnection,
    code: &GssCode,
) -> Result<Vec<StoredSmallArea>, StoreError> {
    let within = small_area_populations::table
        .inner_join(
            partnership_cells::table.on(partnership_cells::cell
                .eq(small_area_populations::cell)
                .and(partnership_cells::resolution.eq(i16::from(atlas_domain::FINEST_RESOLUTION)))
                .and(partnership_cells::partnership_code.eq(code.as_str()))),
        )
        .select(small_area_populations::code)
        .distinct()
        .load::<String>(conn)
        .await?;
    Ok(small_area_populations::table
        .filter(small_area_populations::code.eq_any(&within))
        .select((
            small_area_populations::code,
            small_area_populations::year,
            small_area_populations::cell,
            small_area_populations::population_0_17,
            small_area_populations::approximate,
            small_area_populations::source,
        ))
        .distinct_on(small_area_populations::code)
        .order((
            small_area_populations::code,
            small_area_populations::year.desc(),
        ))
        .load(conn)
        .await?)
}

/// How many postcodes of the directory each resolution-9 cell of `code`'s coverage holds (cells
/// without any left out).
///
/// # Errors
/// [`StoreError`] when the query fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn postcodes_per_cell(
    conn: &mut AsyncPgConnection,
    code: &GssCode,
) -> Result<Vec<(i64, i64)>, StoreError> {
    Ok(postcodes::table
        .inner_join(
            partnership_cells::table.on(partnership_cells::cell
                .eq(postcodes::cell)
                .and(partnership_cells::resolution.eq(i16::from(atlas_domain::FINEST_RESOLUTION)))
                .and(partnership_cells::partnership_code.eq(code.as_str()))),
        )
        .group_by(postcodes::cell)
        .select((postcodes::cell, diesel::dsl::count_star()))
        .load(conn)
        .await?)
}
