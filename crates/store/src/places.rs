//! Place names (towns and villages with a point), imported as reference data: what names hot
//! spot areas, cells and release rows, and labels the map.

use diesel::prelude::*;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};

use atlas_domain::{GssCode, Place};

use crate::StoreError;
use crate::schema::places;

/// Places inserted per statement (seven parameters each, under PostgreSQL's 65,535).
const CHUNK: usize = 5_000;

/// A row of `places`.
#[derive(Queryable, Selectable)]
#[diesel(table_name = places, check_for_backend(diesel::pg::Pg))]
struct PlaceRow {
    name: String,
    lat: f64,
    lon: f64,
    population: i64,
    authority_code: String,
    source: String,
}

/// Places as read back, with where they come from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gazetteer {
    /// The places.
    pub places: Vec<Place>,
    /// Their sources' attributions, sorted, each once.
    pub sources: Vec<String>,
}

/// Replaces every stored place with `places`, attributed to `source`, in one transaction;
/// returns how many are stored.
///
/// # Errors
/// [`StoreError::Invalid`] for a blank source or a population beyond PostgreSQL's `bigint`;
/// [`StoreError::Query`].
pub async fn replace(
    conn: &mut AsyncPgConnection,
    places: &[Place],
    source: &str,
) -> Result<usize, StoreError> {
    let source = source.trim();
    if source.is_empty() || source.chars().count() > 300 {
        return Err(StoreError::Invalid(
            "a place table's source (its attribution) has 1 to 300 characters".to_owned(),
        ));
    }
    let rows = places
        .iter()
        .map(|place| {
            let population = i64::try_from(place.population).map_err(|_| {
                StoreError::Invalid(format!("{}'s population is too large", place.name))
            })?;
            Ok((
                places::name.eq(&place.name),
                places::lat.eq(place.lat),
                places::lon.eq(place.lon),
                places::population.eq(population),
                places::authority_code.eq(place.authority.as_str()),
                places::source.eq(source),
            ))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    conn.transaction::<_, StoreError, _>(async |conn| {
        diesel::delete(places::table).execute(conn).await?;
        for chunk in rows.chunks(CHUNK) {
            diesel::insert_into(places::table)
                .values(chunk)
                .execute(conn)
                .await?;
        }
        Ok(rows.len())
    })
    .await
}

/// The places within the local authorities `authorities`; every place when none of them has
/// one (a partnership of one small authority is then named from its neighbours' places).
///
/// # Errors
/// [`StoreError::Query`].
pub async fn within(
    conn: &mut AsyncPgConnection,
    authorities: &[String],
) -> Result<Gazetteer, StoreError> {
    let mut rows: Vec<PlaceRow> = places::table
        .filter(places::authority_code.eq_any(authorities))
        .select(PlaceRow::as_select())
        .load(conn)
        .await?;
    if rows.is_empty() {
        rows = places::table
            .select(PlaceRow::as_select())
            .load(conn)
            .await?;
    }
    let mut sources: Vec<String> = rows.iter().map(|row| row.source.clone()).collect();
    sources.sort();
    sources.dedup();
    let places = rows
        .into_iter()
        .filter_map(|row| {
            Some(Place {
                name: row.name,
                lat: row.lat,
                lon: row.lon,
                population: u64::try_from(row.population).ok()?,
                authority: GssCode::parse(&row.authority_code).ok()?,
            })
        })
        .collect();
    Ok(Gazetteer { places, sources })
}
