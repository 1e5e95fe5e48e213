//! Reading partnerships.

use std::collections::BTreeMap;

use atlas_domain::GssCode;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::StoreError;
use crate::error::{read_back, read_back_all};
use crate::schema::{
    local_authorities, partnership_cells, partnership_comparators, partnership_neighbours,
    partnerships, regional_groups,
};

/// A partnership with the facts every listing shows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Partnership {
    /// GSS code of the partnership.
    pub code: GssCode,
    /// Name.
    pub name: String,
    /// Codes of the local authorities it covers.
    pub local_authorities: Vec<GssCode>,
    /// Codes of neighbouring partnerships, sorted.
    pub neighbours: Vec<GssCode>,
    /// Number of resolution-9 H3 cells in its coverage.
    pub coverage_cells: i32,
}

/// A partnership's row, as listings read it.
#[derive(Queryable, Selectable)]
#[diesel(table_name = partnerships, check_for_backend(diesel::pg::Pg))]
struct StoredPartnership {
    code: String,
    name: String,
    coverage_cells: i32,
}

/// The names of the partnerships among `codes` that exist, by code.
///
/// # Errors
/// [`StoreError::Query`] when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn names(
    conn: &mut AsyncPgConnection,
    codes: &[String],
) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
    Ok(partnerships::table
        .filter(partnerships::code.eq_any(codes))
        .select((partnerships::code, partnerships::name))
        .load::<(String, String)>(conn)
        .await?
        .into_iter()
        .collect())
}

/// Every partnership, sorted by code.
///
/// # Errors
/// [`StoreError::Query`] when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn list(conn: &mut AsyncPgConnection) -> Result<Vec<Partnership>, StoreError> {
    let rows: Vec<StoredPartnership> = partnerships::table
        .select(StoredPartnership::as_select())
        .order(partnerships::code)
        .load(conn)
        .await?;
    let mut authorities = group(
        local_authorities::table
            .select((local_authorities::partnership_code, local_authorities::code))
            .order((local_authorities::partnership_code, local_authorities::code))
            .load(conn)
            .await?,
    );
    let mut neighbours = group(
        partnership_neighbours::table
            .select((
                partnership_neighbours::partnership_code,
                partnership_neighbours::neighbour_code,
            ))
            .order((
                partnership_neighbours::partnership_code,
                partnership_neighbours::neighbour_code,
            ))
            .load(conn)
            .await?,
    );
    rows.into_iter()
        .map(
            |StoredPartnership {
                 code,
                 name,
                 coverage_cells,
             }| {
                Ok(Partnership {
                    local_authorities: read_back_all(
                        authorities.remove(&code).unwrap_or_default(),
                    )?,
                    neighbours: read_back_all(neighbours.remove(&code).unwrap_or_default())?,
                    coverage_cells,
                    code: read_back(code)?,
                    name,
                })
            },
        )
        .collect()
}

/// One partnership, or `None` when no partnership has that code.
///
/// # Errors
/// [`StoreError::Query`] when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn find(
    conn: &mut AsyncPgConnection,
    code: &GssCode,
) -> Result<Option<Partnership>, StoreError> {
    let Some(StoredPartnership {
        name,
        coverage_cells,
        ..
    }) = partnerships::table
        .find(code.as_str())
        .select(StoredPartnership::as_select())
        .first(conn)
        .await
        .optional()?
    else {
        return Ok(None);
    };
    let local_authorities = local_authorities::table
        .filter(local_authorities::partnership_code.eq(code.as_str()))
        .select(local_authorities::code)
        .order(local_authorities::code)
        .load(conn)
        .await?;
    let neighbours = partnership_neighbours::table
        .filter(partnership_neighbours::partnership_code.eq(code.as_str()))
        .select(partnership_neighbours::neighbour_code)
        .order(partnership_neighbours::neighbour_code)
        .load(conn)
        .await?;
    Ok(Some(Partnership {
        code: code.clone(),
        name,
        local_authorities: read_back_all(local_authorities)?,
        neighbours: read_back_all(neighbours)?,
        coverage_cells,
    }))
}

/// The partnership's boundary as one GeoJSON geometry: its local authority's Polygon or
/// MultiPolygon, or a MultiPolygon joining the polygons of several authorities.
///
/// # Errors
/// [`StoreError::Query`] when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn boundary(
    conn: &mut AsyncPgConnection,
    code: &GssCode,
) -> Result<Option<serde_json::Value>, StoreError> {
    let mut boundaries: Vec<serde_json::Value> = local_authorities::table
        .filter(local_authorities::partnership_code.eq(code.as_str()))
        .select(local_authorities::boundary)
        .order(local_authorities::code)
        .load(conn)
        .await?;
    if boundaries.len() <= 1 {
        return Ok(boundaries.pop());
    }
    let polygons: Vec<serde_json::Value> = boundaries
        .into_iter()
        .flat_map(|geometry| match geometry["type"].as_str() {
            Some("Polygon") => vec![geometry["coordinates"].clone()],
            _ => geometry["coordinates"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        })
        .collect();
    Ok(Some(
        serde_json::json!({ "type": "MultiPolygon", "coordinates": polygons }),
    ))
}

/// The partnership's coverage version, raised with every rewrite of its coverage; `None` when
/// no partnership has `code`.
///
/// # Errors
/// [`StoreError::Query`] when PostgreSQL fails.
pub async fn coverage_version(
    conn: &mut AsyncPgConnection,
    code: &GssCode,
) -> Result<Option<i64>, StoreError> {
    Ok(partnerships::table
        .find(code.as_str())
        .select(partnerships::coverage_version)
        .first(conn)
        .await
        .optional()?)
}

/// The cells of the partnership's H3 coverage at `resolution` (5 to 9): at 9 those whose centres
/// lie inside its boundary, coarser their parents.
///
/// # Errors
/// [`StoreError::Query`] when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn coverage(
    conn: &mut AsyncPgConnection,
    code: &GssCode,
    resolution: i16,
) -> Result<Vec<i64>, StoreError> {
    Ok(partnership_cells::table
        .filter(partnership_cells::partnership_code.eq(code.as_str()))
        .filter(partnership_cells::resolution.eq(resolution))
        .select(partnership_cells::cell)
        .order(partnership_cells::cell)
        .load(conn)
        .await?)
}

fn group(pairs: Vec<(String, String)>) -> BTreeMap<String, Vec<String>> {
    let mut grouped: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, value) in pairs {
        grouped.entry(key).or_default().push(value);
    }
    grouped
}

/// A partnership's comparator group, sorted (empty when none was imported).
///
/// # Errors
/// [`StoreError::Query`] when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn comparators(
    conn: &mut AsyncPgConnection,
    code: &GssCode,
) -> Result<Vec<String>, StoreError> {
    Ok(partnership_comparators::table
        .filter(partnership_comparators::partnership_code.eq(code.as_str()))
        .select(partnership_comparators::comparator_code)
        .order(partnership_comparators::comparator_code)
        .load(conn)
        .await?)
}

/// Replaces the comparator groups of the partnerships named first in `pairs` with the pairs
/// given, in one transaction; returns how many pairs are stored for them.
///
/// # Errors
/// [`StoreError::Invalid`] naming codes that are not partnerships (nothing changes then).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn replace_comparators(
    conn: &mut AsyncPgConnection,
    pairs: &[(GssCode, GssCode)],
) -> Result<usize, StoreError> {
    use diesel_async::AsyncConnection as _;
    conn.transaction::<_, StoreError, _>(async |conn| {
        check_known(
            conn,
            pairs
                .iter()
                .flat_map(|(code, other)| [code.as_str(), other.as_str()])
                .collect(),
        )
        .await?;
        let owners: Vec<&str> = pairs.iter().map(|(code, _)| code.as_str()).collect();
        diesel::delete(
            partnership_comparators::table
                .filter(partnership_comparators::partnership_code.eq_any(&owners)),
        )
        .execute(conn)
        .await?;
        let rows: Vec<_> = pairs
            .iter()
            .map(|(code, other)| {
                (
                    partnership_comparators::partnership_code.eq(code.as_str()),
                    partnership_comparators::comparator_code.eq(other.as_str()),
                )
            })
            .collect();
        Ok(diesel::insert_into(partnership_comparators::table)
            .values(&rows)
            .execute(conn)
            .await?)
    })
    .await
}

/// Checks that every code in `named` is a partnership.
///
/// # Errors
/// [`StoreError::Invalid`] naming those that are not.
async fn check_known(
    conn: &mut AsyncPgConnection,
    named: std::collections::BTreeSet<&str>,
) -> Result<(), StoreError> {
    let known: Vec<String> = partnerships::table
        .filter(partnerships::code.eq_any(&named))
        .select(partnerships::code)
        .load(conn)
        .await?;
    let unknown: Vec<&str> = named
        .iter()
        .filter(|code| !known.iter().any(|known| known == *code))
        .copied()
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "not partnerships Atlas knows: {}",
            unknown.join(", ")
        )))
    }
}

/// The most members a regional group may have (every partnership of a large region).
pub const MAX_GROUP: usize = 200;

/// Every regional group: its name and its members, sorted.
///
/// # Errors
/// [`StoreError::Query`] when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn regional_groups(
    conn: &mut AsyncPgConnection,
) -> Result<BTreeMap<String, Vec<String>>, StoreError> {
    let pairs: Vec<(String, String)> = regional_groups::table
        .select((regional_groups::name, regional_groups::partnership_code))
        .order((regional_groups::name, regional_groups::partnership_code))
        .load(conn)
        .await?;
    Ok(group(pairs))
}

/// Replaces the regional groups named in `members` (group name, member) with the members
/// given, in one transaction; returns how many groups are stored for them.
///
/// # Errors
/// [`StoreError::Invalid`] naming codes that are not partnerships, or a group of fewer than two
/// (nothing changes then).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn replace_regional_groups(
    conn: &mut AsyncPgConnection,
    members: &[(String, GssCode)],
) -> Result<usize, StoreError> {
    use diesel_async::AsyncConnection as _;
    let groups = group(
        members
            .iter()
            .map(|(name, code)| (name.clone(), code.to_string()))
            .collect(),
    );
    if let Some((name, members)) = groups
        .iter()
        .find(|(_, members)| !(2..=MAX_GROUP).contains(&members.len()))
    {
        return Err(StoreError::Invalid(format!(
            "the regional group `{name}` has {} members; a group has 2 to {MAX_GROUP}",
            members.len()
        )));
    }
    if let Some((name, _)) = members
        .iter()
        .find(|(name, _)| name.trim() != name || name.trim().is_empty())
    {
        return Err(StoreError::Invalid(format!(
            "the regional group name `{name}` is blank or has spaces at its ends"
        )));
    }
    conn.transaction::<_, StoreError, _>(async |conn| {
        check_known(
            conn,
            members.iter().map(|(_, code)| code.as_str()).collect(),
        )
        .await?;
        let names: Vec<&String> = groups.keys().collect();
        diesel::delete(regional_groups::table.filter(regional_groups::name.eq_any(&names)))
            .execute(conn)
            .await?;
        let rows: Vec<_> = members
            .iter()
            .map(|(name, code)| {
                (
                    regional_groups::name.eq(name),
                    regional_groups::partnership_code.eq(code.as_str()),
                )
            })
            .collect();
        diesel::insert_into(regional_groups::table)
            .values(&rows)
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        Ok(groups.len())
    })
    .await
}
