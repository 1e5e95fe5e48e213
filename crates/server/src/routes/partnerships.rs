//! The partnership reference API.

use actix_web::http::header::{ACCEPT, ContentType};
use actix_web::{HttpRequest, HttpResponse, get, web};
use atlas_domain::GssCode;
use atlas_store::{Database, agreements, partnerships};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::ApiError;
use crate::auth::{Authorized, Deferred};
use crate::guards::{ReadReference, ReadSharing};

/// The media type of GeoJSON (RFC 7946).
const GEO_JSON: &str = "application/geo+json";

/// A safeguarding partnership.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartnershipView {
    /// GSS code of the partnership.
    #[schema(example = "E10000017")]
    pub code: String,
    /// Name.
    #[schema(example = "Lancashire")]
    pub name: String,
    /// GSS codes of the local authorities it covers.
    pub local_authorities: Vec<String>,
    /// GSS codes of neighbouring partnerships (land boundaries touch).
    pub neighbours: Vec<String>,
    /// Number of resolution-9 H3 cells (about 0.1 km² each) whose centres lie in its boundary.
    pub coverage_cells: i32,
    /// The boundary as a GeoJSON geometry, when asked for with `boundary=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub boundary: Option<serde_json::Value>,
}

impl From<partnerships::Partnership> for PartnershipView {
    fn from(partnership: partnerships::Partnership) -> Self {
        Self {
            code: partnership.code.to_string(),
            name: partnership.name,
            local_authorities: partnership
                .local_authorities
                .iter()
                .map(ToString::to_string)
                .collect(),
            neighbours: partnership
                .neighbours
                .iter()
                .map(ToString::to_string)
                .collect(),
            coverage_cells: partnership.coverage_cells,
            boundary: None,
        }
    }
}

/// Every partnership.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartnershipList {
    /// The partnerships, sorted by code.
    pub partnerships: Vec<PartnershipView>,
}

/// Options of a single partnership.
#[derive(Debug, Deserialize, IntoParams)]
pub struct PartnershipQuery {
    /// Include the boundary as GeoJSON (implied by `Accept: application/geo+json`).
    #[serde(default)]
    pub boundary: bool,
}

/// Lists every partnership with its neighbours and coverage size.
#[utoipa::path(
    tag = "partnerships",
    security(("bearer" = [])),
    responses((status = 200, body = PartnershipList), (status = 401, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody))
)]
#[get("/api/v1/partnerships")]
#[tracing::instrument(skip_all)]
pub async fn list(
    authorized: Authorized<ReadReference>,
    database: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = database.connection().await?;
    let partnerships: Vec<PartnershipView> = partnerships::list(&mut conn)
        .await?
        .into_iter()
        .map(PartnershipView::from)
        .collect();
    authorized.returned(partnerships.len());
    Ok(HttpResponse::Ok().json(PartnershipList { partnerships }))
}

/// One partnership. With `boundary=true` the boundary is included; with
/// `Accept: application/geo+json` the answer is a GeoJSON Feature whose properties are the
/// partnership's facts.
#[utoipa::path(
    tag = "partnerships",
    params(("code" = String, Path, description = "GSS code", example = "E10000017"), PartnershipQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = PartnershipView),
        (status = 200, content_type = "application/geo+json", description = "A GeoJSON Feature"),
        (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)
    )
)]
#[get("/api/v1/partnerships/{code}")]
#[tracing::instrument(skip_all)]
pub async fn get(
    authorized: Authorized<ReadReference>,
    request: HttpRequest,
    database: web::Data<Database>,
    code: web::Path<String>,
    query: Deferred<web::Query<PartnershipQuery>>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner()?;
    let code = GssCode::parse(&code).map_err(|err| ApiError::BadRequest(err.to_string()))?;
    let as_feature = request
        .headers()
        .get(ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains(GEO_JSON));
    let mut conn = database.connection().await?;
    let partnership = partnerships::find(&mut conn, &code)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no partnership has the code {code}")))?;
    authorized.returned(1);
    let mut view = PartnershipView::from(partnership);
    if query.boundary || as_feature {
        view.boundary = partnerships::boundary(&mut conn, &code).await?;
    }
    if as_feature {
        let geometry = view.boundary.take();
        let feature = serde_json::json!({
            "type": "Feature",
            "id": view.code,
            "properties": view,
            "geometry": geometry,
        });
        return Ok(HttpResponse::Ok()
            .content_type(ContentType(GEO_JSON.parse().map_err(|_| {
                ApiError::Internal("the GeoJSON media type does not parse".to_owned())
            })?))
            .json(feature));
    }
    Ok(HttpResponse::Ok().json(view))
}

/// A partnership that shares some of its outputs with the caller's partnership.
#[derive(Debug, Serialize, ToSchema)]
pub struct SharingPartnership {
    /// GSS code of the partnership that shares.
    #[schema(example = "E10000017")]
    pub code: String,
    /// Its name.
    pub name: String,
    /// What its agreements in force today share: `releases`, `regional_hotspots`.
    pub scopes: Vec<String>,
}

/// The partnerships sharing with the caller's partnership today.
#[derive(Debug, Serialize, ToSchema)]
pub struct SharingList {
    /// The caller's partnership.
    pub partnership: String,
    /// Who shares with it, by code.
    pub sharing: Vec<SharingPartnership>,
}

/// The partnerships whose agreements in force today share outputs with the caller's
/// partnership, and what they share (the partner page starts here): for its partnership
/// analysts and partner viewers.
#[utoipa::path(
    tag = "partnerships",
    security(("bearer" = [])),
    responses((status = 200, body = SharingList), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody))
)]
#[get("/api/v1/sharing")]
#[tracing::instrument(skip_all)]
pub async fn sharing(
    authorized: Authorized<ReadSharing>,
    database: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    let recipient = authorized.target().clone();
    let mut conn = database.connection().await?;
    let today = chrono::Utc::now().date_naive();
    let sharers = agreements::sharing_with(&mut conn, &recipient, today).await?;
    let codes: Vec<String> = sharers.keys().map(ToString::to_string).collect();
    let names = partnerships::names(&mut conn, &codes).await?;
    let sharing: Vec<SharingPartnership> = sharers
        .into_iter()
        .map(|(code, scopes)| SharingPartnership {
            name: names.get(code.as_str()).cloned().unwrap_or_default(),
            code: code.to_string(),
            scopes: scopes.iter().map(ToString::to_string).collect(),
        })
        .collect();
    authorized.returned(sharing.len());
    Ok(HttpResponse::Ok().json(SharingList {
        partnership: recipient.to_string(),
        sharing,
    }))
}

/// The named places of a partnership, for labelling maps.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlaceList {
    /// The towns and villages within the partnership's local authorities (every place known
    /// when none of them has one), most populous first; none when no places are imported.
    pub places: Vec<atlas_domain::Place>,
    /// Where the names come from, as a map must show it (absent when no place is known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribution: Option<String>,
}

/// The towns and villages of a partnership (as imported with `atlas reference import --places`),
/// most populous first, for a map's place labels: public reference data.
#[utoipa::path(
    tag = "partnerships",
    params(("code" = String, Path, description = "GSS code", example = "E10000017")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = PlaceList),
        (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)
    )
)]
#[get("/api/v1/partnerships/{code}/places")]
#[tracing::instrument(skip_all)]
pub async fn places(
    authorized: Authorized<ReadReference>,
    analyses: web::Data<atlas_app::Analyses>,
    code: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let code = GssCode::parse(&code).map_err(|err| ApiError::BadRequest(err.to_string()))?;
    let names = analyses.place_names(&code).await?;
    let attribution = names.attribution().map(ToOwned::to_owned);
    let places = names.into_places();
    authorized.returned(places.len());
    Ok(HttpResponse::Ok().json(PlaceList {
        places,
        attribution,
    }))
}
