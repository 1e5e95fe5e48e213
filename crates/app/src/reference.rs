//! Bringing a database's schema and reference geography up to date: migrations, then coverage
//! re-tiled from the stored boundaries where an older tiling made it.

use atlas_domain::Coverage;
use atlas_ingest::reference::{boundary_polygons, cover};
use atlas_store::{StoreError, migrations, reference};
use geo::MultiPolygon;

/// Applies every pending migration, then re-tiles coverage made by an older tiling
/// ([`reference::retile_outdated`]); returns the versions applied.
///
/// # Errors
/// [`StoreError`] when a migration fails (it is rolled back), a stored boundary cannot be
/// tiled, or PostgreSQL fails.
pub async fn migrate(url: &str) -> Result<Vec<String>, StoreError> {
    let applied = migrations::run_pending(url).await?;
    reference::retile_outdated(url, tile).await?;
    Ok(applied)
}

/// The coverage of a partnership's stored boundaries (GeoJSON geometries).
///
/// # Errors
/// A message when a boundary cannot be read or tiled.
pub fn tile(boundaries: &[serde_json::Value]) -> Result<Coverage, String> {
    let mut polygons = MultiPolygon::new(Vec::new());
    for boundary in boundaries {
        polygons.0.extend(boundary_polygons(boundary)?);
    }
    cover(&polygons)
}
